"""One vs two Rasa processes, in one run, behind the cluster's nginx: `make bench-cluster`.

    python -m bench.cluster                      # 1, 8 and 32 clients, 600 messages per level and target
    python -m bench.cluster --levels 32 --no-doc

Starts the topology of `make run-cluster` (tools/cluster.py) on free ports with a database
and Redis key prefix of its own (dropped at the end): nginx, two Rasa replicas on
PostgreSQL + Redis, two action servers, the progress stand-in (example applications
imported), the web app. The clients talk to nginx's public port on the widget's channel
(/webhooks/web/webhook; REST is not exposed), each client its own sender repeating
bench/turns.py's nine-turn conversation.

"two" is the cluster as it runs; "one" is the same cluster with rasa-2 stopped (nginx then
sends everything to rasa-1). Per level the order is two, one, one, two (one restart of
rasa-2 in the middle of the run), so a noisy neighbour hits both alike. While the 32-client
levels run, the CPU time of every process on the machine is sampled from /proc and grouped
(rasa-1, rasa-2, action servers, nginx, PostgreSQL, Redis, the benchmark's own client
threads, …): that says what limits the second replica on a 2-core machine.

Writes its section of docs/performance.md (between the bench-cluster markers).
"""
import argparse
import datetime
import os
import pathlib
import re
import secrets
import subprocess
import sys
import time
import uuid
from typing import Dict, List

from bench.turns import (
    CONVERSATION, Level, Target, check_conversation, commit, machine, merge, rss_mb, _Log,
)
from core import defaults
from tools.cluster import ClusterSettings, build_cluster, check_nginx, free_ports, prepare_store
from tools.stack import VENV_BIN, Stack

ROOT = defaults.ROOT
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench-cluster:start -->", "<!-- bench-cluster:end -->"
WEB_PATH = "/webhooks/web/webhook"
CLK = os.sysconf("SC_CLK_TCK")


# --- CPU time of every process, grouped ----------------------------------------------------
def _processes() -> Dict[int, tuple]:
    """pid -> (parent pid, command name, CPU ticks user+system)."""
    table = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        table[int(entry.name)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
    return table


def _group_of(pid: int, table, roots: Dict[int, str]) -> str:
    seen = set()
    current = pid
    while current in table and current not in seen:
        if current in roots:
            return roots[current]
        seen.add(current)
        current = table[current][0]
    name = table[pid][1] if pid in table else ""
    if name.startswith("postgres"):
        return "PostgreSQL"
    if name.startswith("redis"):
        return "Redis"
    return "other"


class CpuMeter:
    """CPU seconds per group between start() and stop(), accumulated over several windows."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.seconds: Dict[str, float] = {}
        self.wall = 0.0
        self.turns = 0

    def _roots(self) -> Dict[int, str]:
        roots = {process.pid: name for name, process in self.stack.processes.items()}
        roots[os.getpid()] = "benchmark clients"
        return roots

    def start(self):
        self._before, self._started = _processes(), time.perf_counter()

    def stop(self):
        after, roots = _processes(), self._roots()
        self.wall += time.perf_counter() - self._started
        for pid, (_, _, ticks) in after.items():
            used = ticks - (self._before.get(pid, (0, "", 0))[2])
            if used > 0:
                group = _group_of(pid, after, roots)
                group = re.sub(r"^actions-\d+$", "action servers", group)
                group = re.sub(r"^web-\d+$", "web", group)
                self.seconds[group] = self.seconds.get(group, 0.0) + used / CLK

    def shares(self) -> Dict[str, float]:
        """% of one core per group (200 % = both cores of this machine)."""
        return {group: 100 * seconds / self.wall for group, seconds in
                sorted(self.seconds.items(), key=lambda item: -item[1])} if self.wall else {}


# --- the cluster ---------------------------------------------------------------------------
def start_cluster(model: pathlib.Path, state_dir: pathlib.Path, run: str):
    ports = free_ports(10)
    settings = ClusterSettings(
        state_dir=state_dir, model_path=model, public_port=ports[0],
        rasa_ports=(ports[1], ports[2]), actions_ports=(ports[3], ports[4]),
        actions_upstream_port=ports[5], rasa_internal_port=ports[6],
        progress_port=ports[7], web_port=ports[8], web_ports=(ports[8], ports[9]),
        lock_prefix=f"bench{run}")
    problem = check_nginx(settings)
    if problem:
        raise SystemExit(problem)
    environ = dict(os.environ)
    for name in ("RASA_AUTH_TOKEN", "PROGRESS_API_KEY", "PROGRESS_AGENCY_KEY",
                 "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET"):
        environ[name] = secrets.token_urlsafe(24)
    for name in ("WECHAT_TOKEN", "WECHAT_STATE_REDIS_URL", "PROGRESS_SERVICE_URL",
                 "CONVERSATION_CODES_DATABASE_URL", "WIDGET_SERVER_URL", "WEB_PUBLIC_URL",
                 "AGENT_DATABASE_URL", "WEB_STATE_REDIS_URL"):
        environ.pop(name, None)
    environ.setdefault("DB_LOGIN_DB", "postgres")
    environ["DB_NAME"] = f"bench_{run}"
    environ["PROGRESS_DATABASE_URL"] = f"sqlite:///{state_dir / 'progress.db'}"
    environ["AGENT_DB"] = str(state_dir / "agents.db")
    # every Redis key of this run under bench<run>: (dropped at the end)
    environ["WECHAT_STATE_PREFIX"] = f"bench{run}:wechat"
    environ["WEB_STATE_REDIS_PREFIX"] = f"bench{run}:web"
    subprocess.run([str(VENV_BIN / "python"), "-m", "progress_service.importer",
                    str(ROOT / "progress_service" / "example_export.csv")],
                   cwd=ROOT, env={**environ, "PYTHONPATH": str(ROOT)}, check=True, stdout=subprocess.DEVNULL)
    services, env = build_cluster(settings, environ)
    log = _Log(state_dir / "cluster.log")
    prepare_store(services, env, log=log)
    return Stack(services, output=log, environ=env), settings, env


def drop_cluster_data(env: Dict[str, str], run: str) -> None:
    import psycopg2
    import redis

    connection = psycopg2.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), user=env["DB_USER"],
                                  password=env["DB_PASSWORD"] or None, dbname=env["DB_LOGIN_DB"])
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')
    finally:
        connection.close()
    client = redis.Redis(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]),
                         password=env["REDIS_PASSWORD"] or None, db=int(env["REDIS_DB"] or 0))
    try:
        keys = list(client.scan_iter(match=f"bench{run}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def upstream_counts(settings: ClusterSettings, since: int) -> Dict[str, int]:
    """Turns per replica in nginx's access log from line `since` on."""
    lines = (settings.state_dir / "nginx" / "access.log").read_text(encoding="utf-8").splitlines()[since:]
    counts: Dict[str, int] = {}
    for line in lines:
        if WEB_PATH in line:
            match = re.search(r"upstream=(\S+)", line)
            port = match.group(1).rsplit(":", 1)[-1] if match else "-"
            name = {str(p): f"rasa-{i + 1}" for i, p in enumerate(settings.rasa_ports)}.get(port, port)
            counts[name] = counts.get(name, 0) + 1
    return counts


def log_length(settings: ClusterSettings) -> int:
    path = settings.state_dir / "nginx" / "access.log"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def measure(stack: Stack, settings: ClusterSettings, levels: List[int], messages: int):
    public = settings.public_port
    two, one = Target("two", public, WEB_PATH), Target("one", public, WEB_PATH)
    per_round = lambda clients: max(clients, messages // 2)  # noqa: E731
    runs: Dict[int, Dict[str, List[Level]]] = {c: {"one": [], "two": []} for c in levels}
    cpu = {"one": CpuMeter(stack), "two": CpuMeter(stack)}
    spread: Dict[str, int] = {}
    top = max(levels)

    def run(target: Target, clients: int):
        since = log_length(settings)
        if clients == top:
            cpu[target.name].start()
        level = target.run(clients, per_round(clients))
        if clients == top:
            cpu[target.name].stop()
            cpu[target.name].turns += len(level.latencies)
        if target.name == "two":
            for name, count in upstream_counts(settings, since).items():
                spread[name] = spread.get(name, 0) + count
        runs[clients][target.name].append(level)
        print(f"{clients:>3} clients, {target.name}: p50 {level.percentile(.5):.0f} ms "
              f"p99 {level.percentile(.99):.0f} ms {level.throughput:.1f} msg/s, {level.errors} errors", flush=True)

    two.run(2, len(CONVERSATION) * 2)  # warm-up through nginx, both replicas
    for clients in levels:
        run(two, clients)
    print("stopping rasa-2 …", flush=True)
    stack.stop_service("rasa-2")
    one.run(1, len(CONVERSATION))  # nginx notices the stopped replica
    for clients in levels:
        run(one, clients)
        run(one, clients)
    print("starting rasa-2 again …", flush=True)
    started = time.monotonic()
    if not stack.start_service("rasa-2"):
        raise RuntimeError("rasa-2 did not start again; see the cluster log")
    restart = time.monotonic() - started
    Target("rasa-2", settings.rasa_ports[1], WEB_PATH).run(1, len(CONVERSATION))  # warm it
    time.sleep(6)  # past nginx's fail_timeout: rasa-2 is back in the rotation
    for clients in levels:
        run(two, clients)
    results = {c: {name: merge(parts) for name, parts in row.items()} for c, row in runs.items()}
    return results, cpu, spread, restart


def report(results, cpu, spread, info: Dict[str, str], replies: List[str], top: int) -> str:
    lines = [
        START,
        f"Measured {info['date']} at commit {info['commit']} on {info['machine']}.",
        f"{info['messages']} messages per level and target in 2 rounds (two, one, one, two), through "
        "nginx on the web channel; PostgreSQL tracker store, Redis lock store, two action servers. "
        f"Load average (1 min) {info['load_before']} before the run, {info.get('load_after', '?')} after it.",
        "",
        "| clients | one Rasa p50 / p95 / p99 (ms) | two Rasa p50 / p95 / p99 (ms) | one msg/s | two msg/s "
        "| throughput two / one | errors one / two |",
        "|---:|---|---|---:|---:|---:|---|",
    ]
    for clients, row in results.items():
        a, b = row["one"], row["two"]
        lines.append(
            f"| {clients} | {a.percentile(.5):.0f} / {a.percentile(.95):.0f} / {a.percentile(.99):.0f} "
            f"| {b.percentile(.5):.0f} / {b.percentile(.95):.0f} / {b.percentile(.99):.0f} "
            f"| {a.throughput:.1f} | {b.throughput:.1f} | {b.throughput / a.throughput:.2f}× "
            f"| {a.errors} / {b.errors} |")
    lines += ["", "Turns per replica in the \"two\" runs (nginx's access log): "
              + ", ".join(f"{name} {count}" for name, count in sorted(spread.items())) + ".", "",
              f"CPU at {top} clients, % of one core (the machine has {os.cpu_count()}; "
              f"{100 * (os.cpu_count() or 1)} % is all of it):", "",
              "| process | one Rasa | two Rasa |", "|---|---:|---:|"]
    one, two = cpu["one"].shares(), cpu["two"].shares()
    for group in sorted(set(one) | set(two), key=lambda g: -(two.get(g, 0) + one.get(g, 0))):
        if max(one.get(group, 0), two.get(group, 0)) >= 0.5:
            lines.append(f"| {group} | {one.get(group, 0):.0f} | {two.get(group, 0):.0f} |")
    lines.append(f"| **total** | {sum(one.values()):.0f} | {sum(two.values()):.0f} |")
    ours = ("rasa-1", "rasa-2", "action servers", "nginx", "web", "progress", "PostgreSQL", "Redis")

    def per_turn(meter: CpuMeter, groups) -> float:
        return 1000 * sum(meter.seconds.get(g, 0.0) for g in groups) / meter.turns if meter.turns else float("nan")

    lines += ["", "CPU time per turn (ms), from the same windows:", "",
              "| | one Rasa | two Rasa |", "|---|---:|---:|",
              f"| Rasa processes | {per_turn(cpu['one'], ours[:2]):.0f} | {per_turn(cpu['two'], ours[:2]):.0f} |",
              f"| the whole cluster with PostgreSQL and Redis | {per_turn(cpu['one'], ours):.0f} "
              f"| {per_turn(cpu['two'], ours):.0f} |"]
    cores = os.cpu_count() or 1
    costs = [per_turn(cpu["one"], ours[:2]), per_turn(cpu["one"], ours),
             per_turn(cpu["two"], ours[:2]) / 2, per_turn(cpu["two"], ours)]  # per replica for two
    if all(cost == cost and cost > 0 for cost in costs):  # not NaN, not zero
        one_ceiling = min(1000 / costs[0], 1000 * cores / costs[1])
        two_ceiling = min(2 * 1000 / (2 * costs[2]), 1000 * cores / costs[3])
        lines += ["", f"What these costs allow on {cores} otherwise idle cores (a Rasa process is one "
                  f"event loop: at most one core): one Rasa {one_ceiling:.0f} msg/s, two Rasa "
                  f"{two_ceiling:.0f} msg/s, {two_ceiling / one_ceiling:.2f}×."]
    lines += ["", f"Start to ready (both replicas, in parallel): {info['start']} s; rasa-2 restarted in "
              f"{info['restart']} s. RSS after the run (MB): {info['rss']}.", "",
              "The conversation each client repeats, with the replies through nginx (first 40 characters):", ""]
    lines += [f"{i + 1}. {text} → {reply or '(no reply)'}" for i, (text, reply) in enumerate(zip(CONVERSATION, replies))]
    lines.append(END)
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## One vs two Rasa processes (`make bench-cluster`)\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--messages", type=int, default=600, help="per level and target (two rounds)")
    parser.add_argument("--model", default=str(defaults.STATE_DIR / "models" / "assistant.tar.gz"))
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    run = uuid.uuid4().hex[:8]
    state_dir = defaults.STATE_DIR / "bench" / f"cluster-{run}"
    state_dir.mkdir(parents=True)
    info = {"date": datetime.date.today().isoformat(), "commit": commit(), "machine": machine(),
            "messages": str(args.messages), "load_before": "%.1f" % os.getloadavg()[0]}
    stack, settings, env = start_cluster(pathlib.Path(args.model), state_dir, run)
    try:
        started = time.monotonic()
        stack.start()
        if not stack.wait_healthy():
            raise RuntimeError(f"the cluster did not start; see {state_dir / 'cluster.log'}")
        info["start"] = f"{time.monotonic() - started:.0f}"
        replies = check_conversation(Target("two", settings.public_port, WEB_PATH))
        results, cpu, spread, restart = measure(stack, settings, levels, args.messages)
        info["restart"] = f"{restart:.0f}"
        info["load_after"] = "%.1f" % os.getloadavg()[0]
        info["rss"] = ", ".join(f"{name} {rss_mb(p.pid):.0f}" for name, p in stack.processes.items())
    finally:
        stack.stop()
        drop_cluster_data(env, run)
    section = report(results, cpu, spread, info, replies, max(levels))
    print(section)
    if not args.no_doc:
        write_doc(section)
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
