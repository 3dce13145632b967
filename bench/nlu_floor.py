"""Fail when intent accuracy on a held-out NLU test set is below the floor, or (with
--intent-floor) when any single intent's recall is.

    rasa test nlu --nlu tests/nlu/test_set.yml --model M --out DIR
    python bench/nlu_floor.py DIR/intent_report.json --floor 0.95 --name "in-house set"
"""
import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("report", help="intent_report.json written by `rasa test nlu`")
    parser.add_argument("--floor", type=float, default=0.95)
    parser.add_argument("--intent-floor", type=float, default=0.0,
                        help="minimum recall of every intent (0: not checked)")
    parser.add_argument("--name", default="NLU test set")
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
    recalls = {name: values["recall"] for name, values in report.items()
               if isinstance(values, dict) and "support" in values
               and name not in ("macro avg", "weighted avg", "micro avg")}
    print(f"{args.name}: intent accuracy {accuracy:.1%}, macro-F1 {macro_f1:.3f} (floor {args.floor:.0%}), "
          f"lowest intent recall {min(recalls.values()):.0%}")
    for name, f1, support in weak:
        print(f"  weak intent {name}: F1 {f1:.2f}, recall {recalls[name]:.0%} on {support} examples")
    failed = False
    if accuracy < args.floor:
        print("FAILED: below the floor. See the errors file next to the report.")
        failed = True
    below = sorted(name for name, recall in recalls.items() if recall < args.intent_floor)
    if below:
        print(f"FAILED: intents below {args.intent_floor:.0%} recall: {', '.join(below)}")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
