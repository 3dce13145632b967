"""bench/calibrate.py replays the FallbackClassifier's decision on DIET's ranking; the
thresholds in config.yml are chosen from that replay, so it must decide as Rasa does."""
import dataclasses
import random

import pytest

from bench import calibrate

THRESHOLDS = [0.3, 0.55, 0.7]
AMBIGUITIES = [0.0, 0.08, 0.15]


def _diet_message(ranking):
    from rasa.shared.nlu.training_data.message import Message

    entries = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    return Message(data={"text": "随便问问", "intent": dict(entries[0]), "intent_ranking": [dict(e) for e in entries]})


def _random_ranking(rng):
    names = rng.sample(["ask_channel", "ask_materials", "ask_process", "affirm", "deny", "greet"], 4)
    weights = sorted((rng.random() ** rng.choice([1, 2, 4]) for _ in names), reverse=True)
    total = sum(weights)
    return tuple((name, round(weight / total, 4)) for name, weight in zip(names, weights))


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("ambiguity", AMBIGUITIES)
def test_replay_decides_as_the_fallback_classifier(threshold, ambiguity):
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier

    classifier = FallbackClassifier({"threshold": threshold, "ambiguity_threshold": ambiguity})
    rng = random.Random(f"{threshold}-{ambiguity}")
    rankings = [_random_ranking(rng) for _ in range(300)]
    # the edges: exactly at the threshold, exactly at the ambiguity difference
    rankings += [(("ask_channel", threshold), ("ask_process", threshold - ambiguity)),
                 (("ask_channel", 0.9), ("ask_process", 0.9 - ambiguity)),
                 (("ask_channel", 1.0),)]
    for ranking in rankings:
        message = _diet_message(ranking)
        classifier.process([message])
        fired = message.data["intent"]["name"] == calibrate.FALLBACK
        assert calibrate.falls_back(ranking, threshold, ambiguity) is fired, ranking
        # and what parse_message returns then gives DIET's ranking back
        result = {"intent": message.data["intent"], "intent_ranking": message.data["intent_ranking"]}
        assert calibrate.classifier_ranking(result) == (ranking, False)


def test_the_content_guard_falls_back_at_every_threshold():
    from assistant.nlu.content_guard import ContentFreeMessageGuard
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": "？？？", "intent": {"name": "affirm", "confidence": 0.9},
                            "intent_ranking": [{"name": "affirm", "confidence": 0.9}]})
    ContentFreeMessageGuard().process([message])
    ranking, guarded = calibrate.classifier_ranking(message.data)
    assert guarded and ranking == ()
    parsed = calibrate.Parsed("？？？", "not_understood", ranking, guarded)
    assert calibrate.outcome(parsed, 0.0, 0.0) == "clarified_wrong"


def test_outcomes_and_tally():
    confident_right = calibrate.Parsed("a", "ask_channel", (("ask_channel", 0.9), ("ask_process", 0.05)))
    confident_wrong = calibrate.Parsed("b", "ask_process", (("ask_channel", 0.8), ("ask_process", 0.1)))
    close_right = calibrate.Parsed("c", "ask_channel", (("ask_channel", 0.5), ("ask_process", 0.45)))
    close_wrong = calibrate.Parsed("d", "ask_process", (("ask_channel", 0.5), ("ask_process", 0.45)))
    items = [confident_right, confident_wrong, close_right, close_wrong]
    assert [calibrate.outcome(item, 0.55, 0.1) for item in items] == [
        "right", "wrong", "clarified_right", "clarified_wrong"]
    counts = calibrate.tally(items, 0.55, 0.1, guesses=lambda ranking: [n for n, _ in ranking][:2])
    assert (counts.right, counts.wrong, counts.clarified_right, counts.clarified_wrong, counts.offered) == (1, 1, 1, 1, 1)
    # below every threshold nothing is clarified
    counts = calibrate.tally(items, 0.0, 0.0)
    assert (counts.right, counts.wrong, counts.clarified_right, counts.clarified_wrong) == (2, 2, 0, 0)


def test_choice_prefers_the_goals_then_right_answers():
    def tally(right, wrong, clarified_right, clarified_wrong):
        return calibrate.Tally(100, right, wrong, clarified_right, clarified_wrong)

    grid = {
        (0.3, 0.0): tally(95, 5, 0, 0),   # most right, but 5 % wrong
        (0.5, 0.0): tally(93, 2, 3, 2),   # meets both goals
        (0.6, 0.0): tally(90, 1, 3, 6),   # meets both goals, fewer right
        (0.8, 0.0): tally(80, 0, 15, 5),
    }
    choice = calibrate.choose(grid)
    assert choice.point == (0.5, 0.0) and choice.feasible and choice.feasible_points == 2


def test_without_a_point_that_meets_the_goals_the_goals_set_the_exchange_rate():
    def tally(right, wrong, clarified_right, clarified_wrong):
        return calibrate.Tally(100, right, wrong, clarified_right, clarified_wrong)

    grid = {
        (0.3, 0.0): tally(84, 14, 1, 1),   # 7.0 + 0.33
        (0.6, 0.0): tally(78, 7, 7, 8),    # 3.5 + 2.33 = 5.83: the lowest
        (0.7, 0.0): tally(72, 6, 13, 9),   # 3.0 + 4.33: one wrong answer less for six needless questions
    }
    choice = calibrate.choose(grid)
    assert choice.point == (0.6, 0.0) and not choice.feasible
    assert grid[(0.6, 0.0)].cost == pytest.approx(7 / 2 + 7 / 3)


def test_points_that_decide_alike_keep_the_configured_values():
    same = calibrate.Tally(100, 78, 7, 7, 8)
    grid = {(0.6, a): dataclasses.replace(same) for a in (0.0, 0.04, 0.08, 0.12)}
    assert calibrate.choose(grid, current=(0.55, 0.08)).point == (0.6, 0.08)
    assert calibrate.choose(grid).point == (0.6, 0.0)


def test_config_thresholds_are_read_from_the_fallback_classifier(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n- name: DIETClassifier\n- name: FallbackClassifier\n"
                      "  threshold: 0.6\n  ambiguity_threshold: 0.04\n", encoding="utf-8")
    assert calibrate.config_thresholds(config) == (0.6, 0.04)
    assert calibrate.config_thresholds() == calibrate.config_thresholds(calibrate.CONFIG)
