"""Calibrate the FallbackClassifier's two thresholds on the held-out NLU test sets.

    python -m bench.calibrate          # prints the grid and the choice (no training)
    make bench-nlu                     # the same, written into docs/nlu-benchmark.md

Loads the trained model (.state/models/assistant.tar.gz; it never trains), parses
tests/nlu/hard_set.yml and tests/nlu/test_set.yml once, and replays the FallbackClassifier's
decision on the intent classifiers' own ranking (DIET averaged with the TF-IDF
classifier, config.yml) for every point of a grid of `threshold` x
`ambiguity_threshold`. Each utterance ends in exactly one of four outcomes:

    right            answered directly, top intent right
    wrong            answered directly, top intent wrong (the costly one: a wrong answer)
    clarified_right  "您是想问…？" although the top intent was right (a needless question)
    clarified_wrong  "您是想问…？" and the top intent was wrong (the question saved a wrong answer)

The decision is rasa/nlu/classifiers/fallback_classifier.py's `_should_fallback`:
nlu_fallback when the top confidence < threshold OR top1 - top2 < ambiguity_threshold.
What parse_message returns: when the FallbackClassifier fires it *inserts*
{"name": "nlu_fallback", "confidence": threshold} at the head of intent_ranking and leaves
the classifiers' ranking behind it; when it does not fire, intent_ranking is that ranking.
So the classifiers' confidences are the ranking without that head entry, whatever thresholds the model
was trained with (the FallbackClassifier is not trainable: its thresholds change no
confidence). The ContentFreeMessageGuard after it replaces the ranking by a lone
nlu_fallback (confidence 1.0) for messages without any letter or character ("？？？"); those
fall back at every threshold. `replay_check` proves the replay against the model's own
decisions at the thresholds it was built with.

The choice, on the HARD set (issue 14's goals): wrong <= 2 % and clarified_right <= 3 %,
then the most `right`; ties -> fewer wrong, then fewer needless questions. When no grid
point meets both goals (the top intent is wrong too often for any threshold to hide it),
the point with the lowest wrong / 2 % + clarified_right / 3 % (the goals' own exchange
rate: a wrong answer weighs 1.5 needless questions), then the most `right`; the report says
so. Points that decide alike on the set go to the one closest to config.yml's values.
"""
import argparse
import asyncio
import dataclasses
import logging
import os
import pathlib
import re
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONPATH", str(ROOT))

from assistant.content import get_knowledge  # noqa: E402

MODEL = ROOT / ".state" / "models" / "assistant.tar.gz"
CONFIG = ROOT / "config.yml"
SETS = {
    "hard": ROOT / "tests" / "nlu" / "hard_set.yml",
    "in-house": ROOT / "tests" / "nlu" / "test_set.yml",
    # written blind (from the intents' meaning only) and not used to choose the pipeline or the
    # data: reported, never used to choose thresholds either
    "fresh": ROOT / "tests" / "nlu" / "fresh_set.yml",
    # written blind by another procedure (2026-12-03, fifth session); its misses are never
    # written out (docs/nlu-benchmark.md shows its scores only), so that it stays unread
    "blind": ROOT / "tests" / "nlu" / "blind_set.yml",
}
FALLBACK = "nlu_fallback"

THRESHOLDS = tuple(round(0.30 + 0.05 * step, 2) for step in range(11))   # 0.30 … 0.80
AMBIGUITIES = tuple(round(0.02 * step, 2) for step in range(11))         # 0.00 … 0.20
GOAL_WRONG = 0.02
GOAL_CLARIFIED_RIGHT = 0.03

OUTCOMES = ("right", "wrong", "clarified_right", "clarified_wrong")

Ranking = Tuple[Tuple[str, float], ...]


@dataclasses.dataclass(frozen=True)
class Parsed:
    """One test utterance as the model saw it."""
    text: str
    gold: str
    ranking: Ranking          # the intent classifiers' ranking (DIET + TF-IDF), best first
    guarded: bool = False     # ContentFreeMessageGuard fired: nothing to classify
    final: Optional[str] = None   # the model's own final intent (with its built-in thresholds)

    @property
    def top(self) -> Optional[str]:
        return self.ranking[0][0] if self.ranking else None


# --- the decision ---------------------------------------------------------------------

def classifier_ranking(result: Dict[str, Any]) -> Tuple[Ranking, bool]:
    """(the classifiers' ranking, guarded) from a parse_message result of our pipeline."""
    ranking = [(str(entry.get("name")), float(entry.get("confidence") or 0.0))
               for entry in result.get("intent_ranking") or []]
    intent = (result.get("intent") or {}).get("name")
    if intent == FALLBACK and ranking and ranking[0][0] == FALLBACK:
        ranking = ranking[1:]   # the entry FallbackClassifier / the guard put in front
        if not ranking:
            return (), True     # the guard replaced the whole ranking
    return tuple(ranking), False


def falls_back(ranking: Ranking, threshold: float, ambiguity_threshold: float) -> bool:
    """FallbackClassifier._should_fallback on a classifier ranking (best first)."""
    if not ranking:
        return True
    if ranking[0][1] < threshold:
        return True
    if len(ranking) >= 2 and ranking[0][1] - ranking[1][1] < ambiguity_threshold:
        return True
    return False


def outcome(parsed: Parsed, threshold: float, ambiguity_threshold: float) -> str:
    right = parsed.top == parsed.gold
    if parsed.guarded or falls_back(parsed.ranking, threshold, ambiguity_threshold):
        return "clarified_right" if right else "clarified_wrong"
    return "right" if right else "wrong"


@dataclasses.dataclass
class Tally:
    total: int
    right: int = 0
    wrong: int = 0
    clarified_right: int = 0
    clarified_wrong: int = 0
    offered: int = 0   # clarified_wrong where the right intent is among the two guesses

    def share(self, name: str) -> float:
        return getattr(self, name) / self.total if self.total else 0.0

    @property
    def meets_goals(self) -> bool:
        # a count comparison, so that 2 % of 561 is not lost to float rounding
        return (self.wrong <= GOAL_WRONG * self.total + 1e-9
                and self.clarified_right <= GOAL_CLARIFIED_RIGHT * self.total + 1e-9)

    @property
    def cost(self) -> float:
        """Wrong answers and needless questions, each as a multiple of its goal: the goals'
        own exchange rate (2 % : 3 %), one wrong answer weighs 1.5 needless questions."""
        return self.share("wrong") / GOAL_WRONG + self.share("clarified_right") / GOAL_CLARIFIED_RIGHT


def tally(parsed: Sequence[Parsed], threshold: float, ambiguity_threshold: float,
          guesses=None) -> Tally:
    """Counts of the four outcomes. `guesses(ranking)` -> the (up to two) intents the
    clarification offers; when given, `offered` counts clarified_wrong with the right one
    among them."""
    result = Tally(total=len(parsed))
    for item in parsed:
        name = outcome(item, threshold, ambiguity_threshold)
        setattr(result, name, getattr(result, name) + 1)
        if name == "clarified_wrong" and guesses is not None and item.gold in guesses(item.ranking):
            result.offered += 1
    return result


Grid = Dict[Tuple[float, float], Tally]


def grid(parsed: Sequence[Parsed], thresholds: Iterable[float] = THRESHOLDS,
         ambiguities: Iterable[float] = AMBIGUITIES, guesses=None) -> Grid:
    ambiguities = tuple(ambiguities)
    return {(threshold, ambiguity): tally(parsed, threshold, ambiguity, guesses)
            for threshold in thresholds for ambiguity in ambiguities}


@dataclasses.dataclass
class Choice:
    point: Tuple[float, float]
    feasible: bool
    feasible_points: int


def choose(results: Grid, current: Optional[Tuple[float, float]] = None) -> Choice:
    """The thresholds for the goals (see the module docstring). Points that decide alike
    go to the one closest to `current` (config.yml's): change only what the data asks for."""
    def closeness(point):
        if current is None:
            return 0.0
        return abs(point[0] - current[0]) / 0.05 + abs(point[1] - current[1]) / 0.02

    feasible = [point for point, counts in results.items() if counts.meets_goals]
    if feasible:
        def key(point):
            counts = results[point]
            return (-counts.right, counts.wrong, counts.clarified_right, closeness(point), point)

        return Choice(min(feasible, key=key), True, len(feasible))

    def fallback_key(point):
        counts = results[point]
        return (round(counts.cost, 9), -counts.right, counts.wrong, closeness(point), point)

    return Choice(min(results, key=fallback_key), False, 0)


# --- the model and the sets ------------------------------------------------------------

def config_component(name: str, config_path: pathlib.Path = CONFIG) -> Dict[str, Any]:
    """The settings of config.yml's pipeline component `name` (the last part of its
    dotted name is enough: "TfidfIntentClassifier")."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    for component in config.get("pipeline") or []:
        if str(component.get("name", "")).split(".")[-1] == name:
            return component
    raise ValueError(f"{config_path} has no {name}")


def config_thresholds(config_path: pathlib.Path = CONFIG) -> Tuple[float, float]:
    """(threshold, ambiguity_threshold) of config.yml's FallbackClassifier."""
    from rasa.core.constants import DEFAULT_NLU_FALLBACK_AMBIGUITY_THRESHOLD, DEFAULT_NLU_FALLBACK_THRESHOLD

    component = config_component("FallbackClassifier", config_path)
    return (float(component.get("threshold", DEFAULT_NLU_FALLBACK_THRESHOLD)),
            float(component.get("ambiguity_threshold", DEFAULT_NLU_FALLBACK_AMBIGUITY_THRESHOLD)))


def model_thresholds(agent) -> Optional[Tuple[float, float]]:
    """The FallbackClassifier thresholds the loaded model was built with."""
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    for node in agent.processor.model_metadata.predict_schema.nodes.values():
        if node.uses is FallbackClassifier:
            config = {**FallbackClassifier.get_default_config(), **node.config}
            return float(config["threshold"]), float(config["ambiguity_threshold"])
    return None


ENTITY = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)|\[([^\]]+)\]\{[^}]+\}")


def read_examples(paths: Iterable[pathlib.Path]) -> List[Tuple[str, str]]:
    """(text, intent) pairs from Rasa YAML NLU files, entity markup removed."""
    examples = []
    for path in paths:
        document = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8")) or {}
        for block in document.get("nlu") or []:
            if "intent" not in block:
                continue
            for line in str(block.get("examples", "")).splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = ENTITY.sub(lambda m: m.group(1) or m.group(2), line[2:].strip())
                    examples.append((text, block["intent"]))
    return examples


def parse(agent, examples: Sequence[Tuple[str, str]]) -> List[Parsed]:
    async def run():
        parsed = []
        for text, gold in examples:
            result = await agent.parse_message(text)
            ranking, guarded = classifier_ranking(result)
            parsed.append(Parsed(text, gold, ranking, guarded, (result.get("intent") or {}).get("name")))
        return parsed

    return asyncio.run(run())


def replay_check(parsed: Sequence[Parsed], thresholds: Tuple[float, float]) -> List[Parsed]:
    """Utterances where the replayed decision at the model's own thresholds differs from
    the model's final intent (should be none)."""
    mismatches = []
    for item in parsed:
        fell_back = item.guarded or falls_back(item.ranking, *thresholds)
        replayed = FALLBACK if fell_back else item.top
        if replayed != item.final:
            mismatches.append(item)
    return mismatches


def clarification_guesses():
    """ranking -> the intents "您是想问…？" offers (actions/fallback.py: the two best
    guesses that have a title in knowledge/intents.yml), or None without knowledge/."""
    try:
        kb = get_knowledge()
    except Exception:  # noqa: BLE001 - the table then leaves that column out
        return None

    def guesses(ranking: Ranking) -> List[str]:
        return [name for name, _ in ranking if kb.title_for_intent(name)][:2]

    return guesses


@dataclasses.dataclass
class Calibration:
    parsed: Dict[str, List[Parsed]]
    grids: Dict[str, Grid]
    choice: Choice
    config: Tuple[float, float]
    model: Optional[Tuple[float, float]]
    mismatches: int
    offered: bool


def calibrate(agent, sets: Dict[str, Sequence[Tuple[str, str]]]) -> Calibration:
    """Parse every set with the loaded model and compute the grid and the choice."""
    built_with = model_thresholds(agent)
    guesses = clarification_guesses()
    parsed = {name: parse(agent, examples) for name, examples in sets.items()}
    mismatches = sum(len(replay_check(items, built_with)) for items in parsed.values()) if built_with else 0
    grids = {name: grid(items, guesses=guesses) for name, items in parsed.items()}
    config = config_thresholds()
    return Calibration(parsed, grids, choose(grids["hard"], config), config, built_with,
                       mismatches, guesses is not None)


# --- report ----------------------------------------------------------------------------

def _pct(value: float) -> str:
    return f"{value:.1%}"


def _row(point, counts: Dict[str, Tally], offered: bool, mark: str = "") -> str:
    cells = [f"{point[0]:.2f}", f"{point[1]:.2f}"]
    for name in ("hard", "in-house"):
        tally_ = counts[name]
        cells += [_pct(tally_.share(o)) for o in OUTCOMES]
        if offered:
            cells.append(_pct(tally_.offered / tally_.clarified_wrong) if tally_.clarified_wrong else "–")
        if name == "hard":
            cells.append(f"{tally_.cost:.2f}")
    return "| " + " | ".join(cells) + f" | {mark} |"


def _header(offered: bool) -> List[str]:
    per_set = ["right", "wrong", "clarified, top right", "clarified, top wrong"]
    if offered:
        per_set.append("right one offered")
    head = (["threshold", "ambiguity"] + [f"hard: {c}" for c in per_set] + ["hard: wrong/2% + needless/3%"]
            + [f"in-house: {c}" for c in per_set] + [""])
    return ["| " + " | ".join(head) + " |", "|" + "---:|" * (len(head) - 1) + "---|"]


def _same_decisions(cal: "Calibration", threshold: float) -> bool:
    """True when no ambiguity threshold of the grid changes a decision at `threshold`."""
    return all(len({outcome(item, threshold, a) for a in AMBIGUITIES}) == 1
               for items in cal.parsed.values() for item in items)


def markdown_section(cal: Calibration) -> str:
    """The calibration part of docs/nlu-benchmark.md."""
    hard = cal.grids["hard"]
    chosen = cal.choice.point
    config = cal.config
    sizes = {name: len(items) for name, items in cal.parsed.items()}
    guesses = clarification_guesses() if cal.offered else None

    def at(name, point):
        # off the grid (config.yml or the model between grid points): counted on demand
        grid_ = cal.grids[name]
        return grid_[point] if point in grid_ else tally(cal.parsed[name], *point, guesses)

    def counts(point):
        return {"hard": at("hard", point), "in-house": at("in-house", point)}

    def marks(point):
        labels = []
        if point == chosen:
            labels.append("**chosen**")
        if point == config:
            labels.append("config.yml")
        if cal.model and point == cal.model and cal.model != config:
            labels.append("model in .state")
        if at("hard", point).meets_goals:
            labels.append("meets goals")
        return ", ".join(labels)

    top_accuracy = {name: sum(item.top == item.gold for item in items) / len(items)
                    for name, items in cal.parsed.items()}
    lines = [
        "## Calibrated clarification (FallbackClassifier)",
        "",
        "`bench/calibrate.py` replays the FallbackClassifier's decision (nlu_fallback when the "
        "top confidence < `threshold` or top1 − top2 < `ambiguity_threshold`) on the intent "
        "classifiers' own ranking from the trained model (DIET averaged with the TF-IDF classifier), "
        "for every point of the grid "
        f"threshold {THRESHOLDS[0]:.2f}–{THRESHOLDS[-1]:.2f} (step 0.05) × ambiguity "
        f"{AMBIGUITIES[0]:.2f}–{AMBIGUITIES[-1]:.2f} (step 0.02). Outcomes per utterance, adding up to "
        "100 %: *right* – answered directly with the right intent; *wrong* – answered directly with a "
        "wrong intent; *clarified, top right* – \"您是想问…？\" although the top intent was right (a "
        "needless question); *clarified, top wrong* – the question instead of a wrong answer. Messages "
        "the content guard stops (\"？？？\") fall back at every threshold.",
        "",
        f"- Goals (issue 14), on the hard set ({sizes['hard']} utterances): wrong ≤ {GOAL_WRONG:.0%}, "
        f"clarified while right ≤ {GOAL_CLARIFIED_RIGHT:.0%}; among the points that meet both, the most "
        "*right*. When none does: the lowest *wrong/2% + needless/3%* (each outcome as a multiple of "
        "its goal, so the goals' own ratio is the exchange rate: one wrong answer weighs as much as 1.5 "
        "needless questions), then the most *right*. Points that decide alike go to the one closest to "
        f"config.yml's. The in-house set ({sizes['in-house']}) is shown as a check, not used to choose.",
    ]
    if cal.offered:
        lines.append("- *right one offered*: the share of *clarified, top wrong* whose "
                     "\"您是想问A，还是B？\" offers the right intent as A or B (actions/fallback.py: the "
                     "two best intents that have a title) – one tap away instead of a wrong answer.")
    if cal.model is not None:
        check = ("reproduces the model's own decision on every utterance of both sets"
                 if cal.mismatches == 0 else f"DIFFERS from the model's own decision on {cal.mismatches} utterances")
        lines.append(f"- Replay check: at the thresholds the model was built with "
                     f"({cal.model[0]:.2f} / {cal.model[1]:.2f}) the replay {check}.")
    chosen_hard = hard[chosen]
    if cal.choice.feasible:
        reason = (f"{cal.choice.feasible_points} of {len(hard)} grid points meet both goals on the hard set; "
                  f"this one answers the most right ({_pct(chosen_hard.share('right'))}) with "
                  f"{_pct(chosen_hard.share('wrong'))} wrong and {_pct(chosen_hard.share('clarified_right'))} "
                  "needless questions.")
    else:
        lowest_wrong = min(counts_.share("wrong") for counts_ in hard.values())
        reason = (f"no grid point meets both goals on the hard set. Its top-intent accuracy "
                  f"({_pct(top_accuracy['hard'])}) is the limit: a threshold only turns answers into "
                  "questions, wrong and right ones alike, and the fewest wrong answers anywhere on the grid are "
                  f"{_pct(lowest_wrong)}. This point has the lowest "
                  f"wrong/2% + needless/3% ({chosen_hard.cost:.2f}): {_pct(chosen_hard.share('right'))} right, "
                  f"{_pct(chosen_hard.share('wrong'))} wrong, {_pct(chosen_hard.share('clarified_right'))} "
                  "needless questions.")
    lines.append(f"- **Choice: threshold {chosen[0]:.2f}, ambiguity_threshold {chosen[1]:.2f}** – {reason}")
    after = chosen_hard
    if chosen == config:
        lines.append("- config.yml has these values.")
    baseline, label = ((config, "config.yml's") if chosen != config else
                       (cal.model, "the thresholds the model in .state was built with,") if cal.model not in (None, chosen)
                       else (None, ""))
    if baseline is not None:
        before = at("hard", baseline)
        lines.append(
            f"- Against {label} {baseline[0]:.2f} / {baseline[1]:.2f}, on the hard set: "
            f"{after.wrong - before.wrong:+d} wrong answers, {after.clarified_right - before.clarified_right:+d} "
            f"needless questions, {after.right - before.right:+d} right answers; on the in-house set "
            f"{at('in-house', chosen).wrong - at('in-house', baseline).wrong:+d} wrong, "
            f"{at('in-house', chosen).clarified_right - at('in-house', baseline).clarified_right:+d} needless, "
            f"{at('in-house', chosen).right - at('in-house', baseline).right:+d} right.")
    for point in [(t, chosen[1]) for t in THRESHOLDS if abs(t - chosen[0]) < 0.051 and t != chosen[0]]:
        other = hard[point]
        lines.append(
            f"- One step to threshold {point[0]:.2f} (hard set): {other.wrong - after.wrong:+d} wrong, "
            f"{other.clarified_right - after.clarified_right:+d} needless, {other.right - after.right:+d} right "
            f"(score {other.cost:.2f}).")
    if _same_decisions(cal, chosen[0]):
        why = (f"the classifiers' confidences add up to at most 1, so a top intent at or above {chosen[0]:.2f} leads the second by "
               f"at least {2 * chosen[0] - 1:.2f}" if 2 * chosen[0] - 1 >= AMBIGUITIES[-1] - 1e-9
               else "on these sets")
        lines.append(f"- At threshold {chosen[0]:.2f} no ambiguity threshold up to {AMBIGUITIES[-1]:.2f} changes "
                     f"a decision ({why}); config.yml's value is kept.")
    if cal.model is not None and cal.model != config:
        lines.append(f"- The model in `.state/models` was built with {cal.model[0]:.2f} / {cal.model[1]:.2f}; "
                     "config.yml differs, `make train` rebuilds it. The classifiers' confidences, and so these tables, "
                     "stay the same: the FallbackClassifier is not trained.")
    lines.append("- Chosen on the hard set and reported on it: the private real-style set is the "
                 "independent check.")

    # through the chosen point: along the threshold, then along the ambiguity threshold
    lines += ["", f"### Through the choice: ambiguity {chosen[1]:.2f}, threshold varied", ""]
    lines += _header(cal.offered)
    lines += [_row((t, chosen[1]), counts((t, chosen[1])), cal.offered, marks((t, chosen[1]))) for t in THRESHOLDS]
    lines += ["", f"### Through the choice: threshold {chosen[0]:.2f}, ambiguity varied", ""]
    lines += _header(cal.offered)
    lines += [_row((chosen[0], a), counts((chosen[0], a)), cal.offered, marks((chosen[0], a))) for a in AMBIGUITIES]
    extra = [point for point in dict.fromkeys([config, cal.model])
             if point is not None and point not in hard]
    if extra:
        lines += ["", "Off the grid:", ""] + _header(cal.offered)
        lines += [_row(point, counts(point), cal.offered, marks(point)) for point in extra]
    lines += ["", "<details><summary>The whole grid</summary>", ""]
    lines += _header(cal.offered)
    lines += [_row(point, counts(point), cal.offered, marks(point)) for point in sorted(hard)]
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def quiet_rasa() -> None:
    """Rasa's structlog prints every parse at debug level on stdout otherwise."""
    from rasa.utils.log_utils import configure_structlog

    logging.basicConfig(level=logging.WARNING)
    configure_structlog(logging.WARNING)


def load_agent(model_path: pathlib.Path = MODEL):
    from rasa.core.agent import Agent

    if not model_path.is_file():
        raise SystemExit(f"{model_path} is missing: `make train` first")
    return Agent.load(str(model_path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(MODEL))
    args = parser.parse_args(argv)
    quiet_rasa()
    sets = {name: read_examples([path]) for name, path in SETS.items()}
    cal = calibrate(load_agent(pathlib.Path(args.model)), sets)
    print(markdown_section(cal))
    return 0 if cal.mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
