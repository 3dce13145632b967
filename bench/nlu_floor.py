"""Fail when intent accuracy on the held-out NLU test set is below the floor.

    rasa test nlu --nlu tests/nlu/test_set.yml --model M --out DIR
    python bench/nlu_floor.py DIR/intent_report.json --floor 0.95
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="intent_report.json written by `rasa test nlu`")
    parser.add_argument("--floor", type=float, default=0.95)
    args = parser.parse_args(argv)
    with open(args.report, encoding="utf-8") as handle:
        report = json.load(handle)
    accuracy = float(report["accuracy"])
    macro_f1 = float(report["macro avg"]["f1-score"])
    weak = sorted(
        (name, values["f1-score"], values["support"])
        for name, values in report.items()
        if isinstance(values, dict) and "support" in values
        and name not in ("macro avg", "weighted avg", "micro avg") and values["f1-score"] < 0.9
    )
    print(f"NLU test set: intent accuracy {accuracy:.1%}, macro-F1 {macro_f1:.3f} (floor {args.floor:.0%})")
    for name, f1, support in weak:
        print(f"  weak intent {name}: F1 {f1:.2f} on {support} examples")
    if accuracy < args.floor:
        print("FAILED: below the floor. See the errors file next to the report.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
