"""Where the Rasa process spends a turn: a py-spy sampling profile under load.

    make profile                     # 20 s at 8 clients
    python -m bench.profile --seconds 30 --clients 32

Starts the stack as bench/turns.py does, keeps the clients talking, samples the Rasa
process with py-spy (`py-spy record --format raw`, idle threads left out) and prints the
functions with the largest inclusive share of the samples, plus a few named buckets
(JSON-schema validation, policies, tracker store, NLU, action-server call). The raw
collapsed stacks stay in .state/bench/profile.txt for flame-graph tools.
"""
import argparse
import collections
import pathlib
import subprocess
import sys
import threading
import uuid
from typing import Dict

from bench import turns
from core import defaults

VENV_BIN = pathlib.Path(sys.executable).parent
BUCKETS = {
    "JSON-schema validation (jsonschema)": ("jsonschema/",),
    "TEDPolicy": ("ted_policy.py",),
    "RulePolicy / Memoization": ("rule_policy.py", "memoization.py"),
    "tracker store (fetch/save)": ("tracker_store.py",),
    "NLU (parse_message)": ("processor.py:parse_message", "processor.py:_parse_message_with_graph"),
    "action server round trip": ("action.py:run",),
    "event replay (tracker from events)": ("trackers.py:from_events", "trackers.py:replay_events"),
}


def load(target: turns.Target, clients: int, stop: threading.Event) -> None:
    def client(number):
        while not stop.is_set():
            target.conversation(number, len(turns.CONVERSATION), [], [])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()


def summarise(raw: str, top: int = 25) -> str:
    inclusive: Dict[str, int] = collections.Counter()
    buckets: Dict[str, int] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        names = set()
        for frame in frames:
            # "function (path/file.py:line)" -> "file.py:function"
            function, _, where = frame.partition(" (")
            file = where.rsplit("/", 1)[-1].split(":", 1)[0]
            names.add(f"{file}:{function.strip()}")
        for name in names:
            inclusive[name] += samples
        haystack = stack + ";" + ";".join(names)
        for bucket, needles in BUCKETS.items():
            if any(needle in haystack for needle in needles):
                buckets[bucket] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples (idle threads excluded)", "", "named buckets (inclusive):"]
    lines += [f"  {share * 100 / total:5.1f} %  {bucket}" for bucket, share in
              sorted(buckets.items(), key=lambda kv: -kv[1])]
    lines += ["", f"top {top} functions (inclusive):"]
    lines += [f"  {count * 100 / total:5.1f} %  {name}" for name, count in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--model", default=str(defaults.STATE_DIR / "models" / "assistant.tar.gz"))
    args = parser.parse_args(argv)
    state_dir = defaults.STATE_DIR / "bench" / f"profile-{uuid.uuid4().hex[:6]}"
    stack, settings = turns.start_ours(pathlib.Path(args.model), state_dir, None)
    turns.timed_start(stack)
    stop = threading.Event()
    out = defaults.STATE_DIR / "bench" / "profile.txt"
    try:
        target = turns.Target("ours", settings.rasa_port)
        target.run(1, len(turns.CONVERSATION))  # warm-up
        load(target, args.clients, stop)
        subprocess.run([str(VENV_BIN / "py-spy"), "record", "--pid", str(stack.processes["rasa"].pid),
                        "--duration", str(args.seconds), "--format", "raw", "--output", str(out),
                        "--nonblocking"], check=True, stdout=subprocess.DEVNULL)
    finally:
        stop.set()
        stack.stop()
    print(summarise(out.read_text(encoding="utf-8")))
    print(f"\nraw collapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
