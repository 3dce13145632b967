"""A fast guard on what a turn costs: our stack against the bare Rasa anchor, same run.

The full measurement is `make bench` (bench/turns.py, docs/performance.md). This guard
only catches a bad regression: the ratio of the median turn, measured interleaved in one
test so machine noise hits both, must stay under a generous multiple of the goal (1.5×).
The anchor is trained with one DIET epoch: prediction costs the same however long it trained.
"""
import pytest

from bench import anchor, turns

pytestmark = pytest.mark.xdist_group("shared_stack")

GOAL = 1.5
GUARD = 2.5  # goal plus margin for two pytest workers sharing two cores


@pytest.fixture(scope="module")
def anchor_target(tmp_path_factory):
    model, _ = anchor.train(epochs=1)
    stack, port = turns.start_anchor(model, tmp_path_factory.mktemp("anchor"))
    turns.timed_start(stack)
    yield turns.Target("anchor", port)
    stack.stop()


def test_a_turn_costs_at_most_a_small_multiple_of_a_bare_rasa_turn(running_stack, anchor_target):
    ours = turns.Target("ours", running_stack.settings.rasa_port)
    row = turns.measure(ours, anchor_target, [1], messages=72)[1]
    assert row["ours"].errors == 0 and row["anchor"].errors == 0
    ratio = row["ours"].percentile(.5) / row["anchor"].percentile(.5)
    assert ratio <= GUARD, (
        f"median turn {row['ours'].percentile(.5):.0f} ms vs anchor {row['anchor'].percentile(.5):.0f} ms: "
        f"{ratio:.2f}× (goal {GOAL}×, guard {GUARD}×); run `make bench` and see docs/performance.md")
