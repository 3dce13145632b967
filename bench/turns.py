"""What a turn costs: our stack against a bare Rasa anchor, in one run.

    make bench                       # full: 1, 8 and 32 clients, 200 messages each, trains both
    python -m bench.turns --quick    # what the guard in `make test` runs (fewer messages)

Both targets get the same conversations through Rasa's REST channel (an FAQ, a disease
question, a guided walk, a progress lookup with its ID check, a thank-you), each client
its own sender, several clients at once. The levels are interleaved (ours, anchor,
anchor, ours, …) so that a noisy neighbour on these shared machines hits both alike;
only the same-run ratios are goals, absolute times vary ±20 % from run to run.

Writes the measured section of docs/performance.md (between the bench markers; the
hand-written parts of the file stay).
"""
import argparse
import dataclasses
import datetime
import http.client
import json
import math
import os
import pathlib
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Dict, List, Optional

from bench import anchor
from core import defaults
from tools.stack import Service, Stack, StackSettings, build_services

ROOT = defaults.ROOT
VENV_BIN = pathlib.Path(sys.executable).parent
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

# The first row of progress_service/example_export.csv (imported into the bench stack).
APPLICATION_NO, ID_SUFFIX = "NC2025000101", "1234"
CONVERSATION = [
    "门诊慢特病要准备哪些材料",
    "高血压能申请不",
    "我想在小程序上申请",
    "下一步",
    "下一步",
    "查一下我的申请进度",
    APPLICATION_NO,
    ID_SUFFIX,
    "谢谢",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Level:
    target: str
    clients: int
    latencies: List[float]
    errors: int
    seconds: float

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


class Target:
    """A running Rasa server reached on its REST channel (or, `path` the web channel's
    /webhooks/web/webhook, on the widget's channel: bench/cluster.py, through nginx)."""

    def __init__(self, name: str, port: int, path: str = "/webhooks/rest/webhook"):
        self.name, self.port, self.path = name, port, path

    def new_sender(self, client: int) -> str:
        if self.path == "/webhooks/web/webhook":  # the widget's form: web-<hex uuid>
            return f"web-{uuid.uuid4().hex}"
        return f"bench-{client}-{uuid.uuid4().hex[:10]}"

    def conversation(self, client: int, count: int, errors: list, latencies: list) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        sender = None
        for turn in range(count):
            step = turn % len(CONVERSATION)
            if step == 0:
                sender = self.new_sender(client)
            body = json.dumps({"sender": sender, "message": CONVERSATION[step]}).encode()
            started = time.perf_counter()
            try:
                connection.request("POST", self.path, body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and bool(json.loads(payload or b"[]"))
            except (OSError, http.client.HTTPException, ValueError):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(CONVERSATION[step])
        connection.close()

    def run(self, clients: int, messages: int) -> Level:
        per_client = max(1, math.ceil(messages / clients))
        latencies: List[float] = []
        errors: List[str] = []
        threads = [threading.Thread(target=self.conversation, args=(i, per_client, errors, latencies))
                   for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return Level(self.name, clients, latencies, len(errors), time.perf_counter() - started)


def merge(levels: List[Level]) -> Level:
    first = levels[0]
    return Level(first.target, first.clients, [x for level in levels for x in level.latencies],
                 sum(level.errors for level in levels), sum(level.seconds for level in levels))


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    total, todo, seen = 0, [pid], set()
    children: Dict[int, List[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            for line in pathlib.Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total / 1024


class _Log:
    def __init__(self, path: pathlib.Path):
        self.handle = path.open("a", encoding="utf-8")

    def write(self, text):
        self.handle.write(text)

    def flush(self):
        self.handle.flush()


def start_ours(model: pathlib.Path, state_dir: pathlib.Path, endpoints: Optional[pathlib.Path]):
    """The whole stack as `make run` starts it, on free ports, with the example applications."""
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = StackSettings(state_dir=state_dir, model_path=model)
    for name in settings.port_fields():
        setattr(settings, name, free_port())
    text = (endpoints or ROOT / "endpoints.yml").read_text(encoding="utf-8")
    text = text.replace("http://localhost:5055/webhook", f"http://127.0.0.1:{settings.actions_port}/webhook")
    text = text.replace("db: .state/rasa-tracker.db", f"db: {state_dir / 'rasa-tracker.db'}")
    settings.endpoints = state_dir / "endpoints.yml"
    settings.endpoints.write_text(text, encoding="utf-8")
    environ = dict(os.environ)
    for name in ("RASA_AUTH_TOKEN", "PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY",
                 "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET"):
        environ[name] = secrets.token_urlsafe(24)
    environ["PROGRESS_DATABASE_URL"] = f"sqlite:///{state_dir / 'progress.db'}"
    environ["AGENT_DB"] = str(state_dir / "agents.db")
    subprocess.run([str(VENV_BIN / "python"), "-m", "progress_service.importer",
                    str(ROOT / "progress_service" / "example_export.csv")],
                   cwd=ROOT, env={**environ, "PYTHONPATH": str(ROOT)}, check=True,
                   stdout=subprocess.DEVNULL)
    stack = Stack(build_services(settings, environ), output=_Log(state_dir / "stack.log"), environ=environ)
    return stack, settings


def start_anchor(model: pathlib.Path, state_dir: pathlib.Path):
    port = free_port()
    service = Service(name="anchor", command=anchor.serve_command(model, port),
                      health_url=f"http://127.0.0.1:{port}/", public_urls=[])
    return Stack([service], output=_Log(state_dir / "anchor.log")), port


def timed_start(stack: Stack) -> float:
    started = time.monotonic()
    stack.start()
    if not stack.wait_healthy():
        stack.stop()
        raise RuntimeError("a benchmark target did not start; see .state/bench/*.log")
    return time.monotonic() - started


def check_conversation(target: Target) -> List[str]:
    """One conversation, sequentially; the replies, so a broken flow shows in the report."""
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    sender = target.new_sender(0)
    replies = []
    for text in CONVERSATION:
        connection.request("POST", target.path,
                           json.dumps({"sender": sender, "message": text}).encode(),
                           {"Content-Type": "application/json"})
        messages = json.loads(connection.getresponse().read() or b"[]")
        replies.append(" / ".join((m.get("text") or "").replace("\n", " ")[:40] for m in messages))
    connection.close()
    return replies


def measure(ours: Target, bare: Target, levels: List[int], messages: int, rounds: int = 2) -> Dict[int, Dict[str, Level]]:
    results: Dict[int, Dict[str, Level]] = {}
    for target in (ours, bare):  # warm-up: first turns load lazily built parts
        target.run(1, len(CONVERSATION))
    for clients in levels:
        runs: Dict[str, List[Level]] = {ours.name: [], bare.name: []}
        for round_no in range(rounds):
            order = (ours, bare) if round_no % 2 == 0 else (bare, ours)
            for target in order:
                runs[target.name].append(target.run(clients, max(clients, messages // rounds)))
        results[clients] = {name: merge(parts) for name, parts in runs.items()}
        row = results[clients]
        print(f"{clients:>3} clients: ours p50 {row['ours'].percentile(.5):.0f} ms "
              f"p99 {row['ours'].percentile(.99):.0f} ms {row['ours'].throughput:.1f} msg/s | "
              f"anchor p50 {row['anchor'].percentile(.5):.0f} ms p99 {row['anchor'].percentile(.99):.0f} ms "
              f"{row['anchor'].throughput:.1f} msg/s", flush=True)
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(results, info: Dict[str, str], replies: List[str]) -> str:
    lines = [
        START,
        f"Measured {info['date']} at commit {info['commit']} on {info['machine']}.",
        f"{info['messages']} messages per level and target, interleaved in {info['rounds']} rounds; "
        "one Rasa process each.",
        "",
        "| clients | ours p50 / p95 / p99 (ms) | anchor p50 / p95 / p99 (ms) | ours msg/s | anchor msg/s "
        "| p50 ratio | throughput ratio | errors ours / anchor |",
        "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for clients, row in results.items():
        ours, bare = row["ours"], row["anchor"]
        lines.append(
            f"| {clients} | {ours.percentile(.5):.0f} / {ours.percentile(.95):.0f} / {ours.percentile(.99):.0f} "
            f"| {bare.percentile(.5):.0f} / {bare.percentile(.95):.0f} / {bare.percentile(.99):.0f} "
            f"| {ours.throughput:.1f} | {bare.throughput:.1f} "
            f"| {ours.percentile(.5) / bare.percentile(.5):.2f}× | {ours.throughput / bare.throughput:.2f}× "
            f"| {ours.errors} / {bare.errors} |")
    lines += ["", "| | ours | anchor |", "|---|---|---|"]
    for key, label in (("start", "start to ready (s)"), ("train", "training (s)"), ("rss", "RSS after the run (MB)")):
        lines.append(f"| {label} | {info.get(key + '_ours', '–')} | {info.get(key + '_anchor', '–')} |")
    lines += ["", "The conversation each client repeats, with our replies (first 40 characters):", ""]
    lines += [f"{i + 1}. {text} → {reply or '(no reply)'}" for i, (text, reply) in enumerate(zip(CONVERSATION, replies))]
    lines.append(END)
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


def train_ours(state_dir: pathlib.Path) -> tuple:
    """A cold training, as on a clean clone: an empty Rasa cache of this run's own (the
    project's .rasa/ cache would restore every component and time nothing)."""
    started = time.monotonic()
    environ = {**os.environ, "RASA_CACHE_DIRECTORY": str(state_dir / "rasa-cache")}
    subprocess.run([str(VENV_BIN / "rasa"), "train", "--domain", "domain", "--data", "data",
                    "--config", "config.yml", "--out", str(state_dir / "models"),
                    "--fixed-model-name", "ours", "--quiet"], cwd=ROOT, check=True, env=environ)
    return state_dir / "models" / "ours.tar.gz", time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--messages", type=int, default=200, help="per level and target")
    parser.add_argument("--train", action="store_true",
                        help="train both models in this run (measures training time; ~15 min)")
    parser.add_argument("--model", default=str(defaults.STATE_DIR / "models" / "assistant.tar.gz"))
    parser.add_argument("--anchor-epochs", type=int, default=None,
                        help="DIET epochs of the anchor (prediction cost does not depend on it)")
    parser.add_argument("--anchor-model", default=None, help="a trained anchor to use as it is")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    state_dir = defaults.STATE_DIR / "bench" / f"run-{uuid.uuid4().hex[:6]}"
    state_dir.mkdir(parents=True)
    info = {"date": datetime.date.today().isoformat(), "commit": commit(), "machine": machine(),
            "messages": str(args.messages), "rounds": "2"}

    model = pathlib.Path(args.model)
    if args.train:
        print("training our model …", flush=True)
        model, seconds = train_ours(state_dir)
        info["train_ours"] = f"{seconds:.0f}"
    print("anchor model …", flush=True)
    if args.anchor_model:
        anchor_model, seconds = pathlib.Path(args.anchor_model), None
    else:
        anchor_model, seconds = anchor.train(args.anchor_epochs, force=args.train)
    if seconds is not None and args.anchor_epochs is None:
        info["train_anchor"] = f"{seconds:.0f}"

    ours_stack, settings = start_ours(model, state_dir / "ours", None)
    anchor_stack, anchor_port = start_anchor(anchor_model, state_dir)
    try:
        info["start_ours"] = f"{timed_start(ours_stack):.0f}"
        info["start_anchor"] = f"{timed_start(anchor_stack):.0f}"
        ours, bare = Target("ours", settings.rasa_port), Target("anchor", anchor_port)
        replies = check_conversation(ours)
        results = measure(ours, bare, levels, args.messages)
        info["rss_ours"] = ", ".join(f"{name} {rss_mb(p.pid):.0f}" for name, p in ours_stack.processes.items())
        info["rss_anchor"] = f"rasa {rss_mb(anchor_stack.processes['anchor'].pid):.0f}"
    finally:
        anchor_stack.stop()
        ours_stack.stop()
    section = report(results, info, replies)
    print(section)
    if not args.no_doc:
        write_doc(section)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
