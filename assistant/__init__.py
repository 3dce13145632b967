"""Shared code of the 南充门诊慢特病 assistant that is not an action: NLU components and tooling."""
