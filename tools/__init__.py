"""Commands: `make run` (stack.py), `make validate-knowledge`, `make generate` (build_nlu.py)."""
