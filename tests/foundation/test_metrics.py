"""Prometheus metrics (docs/deploy.md, "Metrics") and the global failure-rate alarm
(docs/security.md, issue 16): counters move with a conversation, the alarm fires after a
burst of wrong suffixes, and nginx routes neither /metrics nor any readiness route.
"""
import asyncio
import logging
import re
import secrets
import socket
import sys
import uuid

import pytest
from prometheus_client import REGISTRY

from core import metrics
from tests.foundation.ops_support import (
    StubHttp, free_port, get_json, metric, start_process, wait_for,
)
from tests.support import skip_or_fail
from tests.wechat.wechat_fakes import APPID, APPSECRET, FakeWeChat, Recorder
from tools.cluster import ClusterSettings, build_cluster, check_nginx, nginx_service, render_nginx
from tools.stack import Stack
from wechat_channel.api_client import WeChatApiClient
from wechat_channel.delivery import InFlight


# --- the alarm's logic, on a clock of our own --------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_alarm_rises_past_the_threshold_and_falls_when_the_window_calms(caplog):
    clock = Clock()
    alarm = metrics.FailureAlarm(threshold_per_minute=2, window_seconds=120, clock=clock,
                                 log=logging.getLogger("tests.alarm"))
    with caplog.at_level(logging.WARNING, logger="tests.alarm"):
        raised = [alarm.record_failure() for _ in range(3)]  # 3 in 2 minutes: 1.5 a minute
        assert raised == [False, False, False] and alarm.rate() == 1.5
        assert alarm.record_failure() is True  # the 4th: 2 a minute
        assert alarm.record_failure() is True
        clock.now += 60
        assert alarm.record_failure() is True
    warnings = [r.getMessage() for r in caplog.records if "failure-rate alarm" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once per window
    assert "4 failed ID-suffix checks" in warnings[0] and "NC" not in warnings[0]
    clock.now += 121  # the window is over: calm again
    assert alarm.check() is False and alarm.rate() == 0
    with caplog.at_level(logging.WARNING, logger="tests.alarm"):
        for _ in range(4):
            alarm.record_failure()
    assert len([r for r in caplog.records if "failure-rate alarm" in r.getMessage()]) == 2


def test_a_zero_threshold_switches_the_alarm_off():
    alarm = metrics.FailureAlarm(threshold_per_minute=0, window_seconds=60, clock=Clock())
    assert not any(alarm.record_failure() for _ in range(50))


def test_no_port_no_endpoint_and_loopback_by_default():
    assert metrics.serve("TEST_METRICS_PORT_UNSET", environ={}) is None
    assert metrics.serve("X", environ={"X": "not-a-port"}) is None
    port = free_port()
    assert metrics.serve("X", environ={"X": str(port)}) == port
    assert metric(port, "progress_failure_alarm") in (0.0, 1.0)  # it answers, on loopback
    with pytest.raises(OSError):  # and on loopback only
        socket.create_connection((_outside_address(), port), timeout=2).close()


def _outside_address() -> str:
    """An address of this machine that is not loopback (skip when there is none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    return address


# --- the progress service's alarm, through its HTTP API --------------------------------
def test_a_burst_of_wrong_suffixes_raises_the_alarm(tmp_path):
    port, metrics_port = free_port(), free_port()
    api_key = secrets.token_urlsafe(16)
    env = {"PROGRESS_HOST": "127.0.0.1", "PROGRESS_PORT": str(port),
           "PROGRESS_DATABASE_URL": f"sqlite:///{tmp_path / 'progress.db'}",
           "PROGRESS_API_KEY": api_key,
           **{name: secrets.token_urlsafe(16) for name in (
               "PROGRESS_AGENCY_KEY", "PROGRESS_ID_HASH_KEY", "PROGRESS_AGENT_SECRET")},
           "PROGRESS_METRICS_PORT": str(metrics_port),
           "PROGRESS_ALARM_FAILURES_PER_MINUTE": "3", "PROGRESS_ALARM_WINDOW_MINUTES": "2"}
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "progress.log"
    stack = start_process("progress", [sys.executable, "-m", "progress_service.app"], env,
                          f"{base}/health", log)
    try:
        assert metric(metrics_port, "progress_failure_alarm") == 0
        # a spray: other numbers, other senders, so no lockout stops it (6 a minute over 2)
        for index in range(12):
            status, _ = get_json(f"{base}/api/v1/applications/NC20259{index:05d}", {
                "X-API-Key": api_key, "X-Id-Last4": "0000", "X-Sender": f"spray-{index}"})
            assert status == 404
        assert metric(metrics_port, "progress_suffix_failures_total") == 12
        assert metric(metrics_port, "progress_failure_alarm") == 1
        assert metric(metrics_port, "progress_suffix_failures_per_minute") == 6
        assert metric(metrics_port, "progress_request_seconds_count", status="4xx") >= 12
        text = wait_for(lambda: "failure-rate alarm" in log.read_text(encoding="utf-8")
                        and log.read_text(encoding="utf-8"))
        alarms = [line for line in text.splitlines() if "failure-rate alarm" in line]
        assert len(alarms) == 1 and "NC20259" not in alarms[0] and "spray" not in alarms[0], alarms
    finally:
        stack.stop()


# --- a conversation through the running stack ---------------------------------------------
@pytest.mark.xdist_group("shared_stack")
def test_counters_move_with_a_conversation(running_stack):
    settings = running_stack.settings
    rasa, actions = settings.rasa_metrics_port, settings.actions_metrics_port
    progress, web = settings.progress_metrics_port, settings.web_metrics_port
    before = {
        "turns": metric(rasa, "assistant_turns_total", channel="rest"),
        "turn_time": metric(rasa, "assistant_turn_seconds_count", channel="rest"),
        # gibberish has no guess to offer: the ladder's first rung asks for other words
        "rephrases": metric(actions, "assistant_fallbacks_total", kind="rephrase"),
        "no_match": metric(actions, "assistant_progress_lookups_total", outcome="no_match"),
        "progress": metric(progress, "progress_request_seconds_count"),
        "failures": metric(progress, "progress_suffix_failures_total"),
    }
    sender = f"metrics-{uuid.uuid4().hex[:12]}"
    assert "请换个说法" in running_stack.say_text(sender, "qwerty asdf")
    running_stack.say_text(sender, "高血压能办吗")
    assert "身份证" in running_stack.say_text(sender, "帮我查NC2025000101的进度")
    assert "没查到" in running_stack.say_text(sender, "9999")
    assert metric(rasa, "assistant_turns_total", channel="rest") >= before["turns"] + 4
    assert metric(rasa, "assistant_turn_seconds_count", channel="rest") >= before["turn_time"] + 4
    assert metric(actions, "assistant_fallbacks_total", kind="rephrase") >= before["rephrases"] + 1
    assert metric(actions, "assistant_progress_lookups_total", outcome="no_match") >= before["no_match"] + 1
    assert metric(progress, "progress_request_seconds_count") >= before["progress"] + 1
    assert metric(progress, "progress_suffix_failures_total") >= before["failures"] + 1
    get_json(f"http://127.0.0.1:{settings.web_port}/health")
    assert metric(web, "web_request_seconds_count", route="/health") >= 1


# --- nginx routes none of it ---------------------------------------------------------------
def test_nginx_exposes_neither_metrics_nor_readiness_and_sets_the_request_id(tmp_path):
    upstream = StubHttp()  # stands for every Rasa, action server and web replica: all "up"
    ports = [free_port() for _ in range(4)]
    settings = ClusterSettings(
        state_dir=tmp_path / "cluster", public_port=ports[0], rasa_ports=(upstream.port,),
        actions_ports=(upstream.port,), web_ports=(upstream.port,), actions_upstream_port=ports[1],
        rasa_internal_port=ports[2], progress_port=ports[3])
    problem = check_nginx(settings)
    if problem:
        upstream.stop()
        skip_or_fail(problem)
    config = render_nginx(settings, socketio=False)
    text = config.read_text(encoding="utf-8")
    for port in (*settings.rasa_metrics_ports, *settings.actions_metrics_ports,
                 *settings.web_metrics_ports, settings.progress_metrics_port):
        assert f":{port}" not in text  # no metrics port is ever an upstream
    stack = Stack([nginx_service(settings, config)], output=(tmp_path / "nginx.log").open("w"))
    stack.start()
    try:
        assert stack.wait_healthy()
        public = f"http://127.0.0.1:{settings.public_port}"
        for path in ("/metrics", "/ready", "/health", "/webhooks/web/ready", "/webhooks/health/ready",
                     "/webhooks/rest/webhook", "/status", "/metrics?x=1"):
            status, _ = get_json(public + path)
            assert status == 404, path
        # the channel webhook is routed, and nginx's own id replaces the client's
        upstream.seen.clear()
        status, _ = get_json(public + "/webhooks/web/webhook", {
            "Content-Type": "application/json", "X-Request-Id": "chosen-by-the-client"}, b"{}")
        assert status == 200
        forwarded = upstream.seen[-1][2]
        assert re.fullmatch(r"[0-9a-f]{32}", forwarded.get("X-Request-Id", "")), forwarded
        access = settings.state_dir / "nginx" / "access.log"
        assert wait_for(lambda: "req=" + forwarded["X-Request-Id"] in access.read_text(encoding="utf-8")), \
            access.read_text(encoding="utf-8")[-2000:]
    finally:
        stack.stop()
        upstream.stop()


def test_the_cluster_gives_every_replica_its_own_metrics_port(tmp_path):
    services, _ = build_cluster(ClusterSettings(state_dir=tmp_path), {})
    ports = {}
    for service in services:
        for name, value in service.env.items():
            if name.endswith("_METRICS_PORT"):
                ports.setdefault(value, []).append(service.name)
    assert all(len(names) == 1 for names in ports.values()), ports
    assert {name for names in ports.values() for name in names} == {
        s.name for s in services if s.name != "nginx"}
    parsed = ClusterSettings.from_env({"RASA_METRICS_PORTS": "9200, 9201", "PROGRESS_METRICS_PORT": "9300"})
    assert parsed.rasa_metrics_ports == (9200, 9201) and parsed.progress_metrics_port == 9300


# --- WeChat: API error codes and late deliveries (the fake WeChat speaks the real protocol) --
def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_wechat_api_errors_are_counted_by_call_and_errcode():
    with FakeWeChat() as fake:
        client = WeChatApiClient(fake.api_base, APPID, APPSECRET, timeout=2.0)
        call = "/cgi-bin/message/custom/send"
        before = _sample("assistant_wechat_api_errors_total", call=call, errcode="45015")
        fake.send_errors.append(45015)  # "reply time limit exceeded"

        async def send():
            try:
                return await client.send_text("oUserOpenId0000000000000009", "您好")
            finally:
                await client.close()

        result = asyncio.run(send())
        assert not result.ok
        assert _sample("assistant_wechat_api_errors_total", call=call, errcode="45015") == before + 1


def test_late_deliveries_are_counted():
    recorder = Recorder()
    before = _sample("assistant_wechat_late_deliveries_total", result="ok")

    async def scenario():
        inflight = InFlight()
        await inflight.attempt("late-metric", recorder.work(0.3), 0.05, recorder.on_passive, recorder.on_late)
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert recorder.late == ["答案"]
    assert _sample("assistant_wechat_late_deliveries_total", result="ok") == before + 1
