"""Helpers of the hostile-input suite (tests/foundation/test_hostile_inputs.py): seeded
generators of hostile inputs (hypothesis, derandomized), a raw HTTP sender that can send
anything (bad methods, paths, headers, bodies), and scanners that look for full ID numbers
(core.privacy's one rule) in the tracker store, the stack log and the databases.
"""
import base64
import collections
import concurrent.futures
import json
import os
import random
import re
import socket
import sqlite3
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from core.privacy import ID_PREFIXES, mask_id_card_numbers

# make test: 500 per channel; make test-hostile: HOSTILE_EXAMPLES=2000
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "500"))
WORKERS = int(os.environ.get("HOSTILE_WORKERS", "8"))


# --- what is sent --------------------------------------------------------------------

class Case:
    """One HTTP request, sent as raw bytes: anything a client can put on the wire."""

    __slots__ = ("kind", "method", "target", "headers", "body", "may_reset", "content_length")

    def __init__(self, kind: str, method="POST", target="/", headers=(), body=b"",
                 may_reset: bool = False, content_length: bool = True):
        self.kind = kind
        self.method = method
        self.target = target
        self.headers = list(headers)
        self.body = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        # an oversized body (the server may close while we send) or a request line that is
        # not HTTP (sanic's parser closes the connection without an answer)
        self.may_reset = may_reset or not valid_request_line(method, target)
        self.content_length = content_length

    def __repr__(self):
        return f"Case({self.kind}, {self.method!r} {str(self.target)[:80]!r}, body={self.body[:120]!r})"


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(r"[\x21-\x7e]+")


def valid_request_line(method, target) -> bool:
    """RFC 9112: the method a token, the target visible ASCII in origin form ("/…"),
    absolute form ("http://…") or "*"."""
    method, target = _bytes(method).decode("latin-1"), _bytes(target).decode("latin-1")
    return bool(_TOKEN.fullmatch(method) and _TARGET.fullmatch(target)
                and (target.startswith(("/", "http://", "https://")) or target == "*"))


def _bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def send_raw(port: int, case: Case, timeout: float = 60.0) -> Tuple[Optional[int], float]:
    """(status or None when the server answered nothing, seconds). One connection per
    request, `Connection: close`, the response read to its end."""
    head = [_bytes(case.method) + b" " + _bytes(case.target) + b" HTTP/1.1",
            b"Host: 127.0.0.1:" + str(port).encode(), b"Connection: close"]
    names = {_bytes(name).lower() for name, _ in case.headers}
    for name, value in case.headers:
        head.append(_bytes(name) + b": " + _bytes(value))
    if case.content_length and b"content-length" not in names and b"transfer-encoding" not in names:
        head.append(b"Content-Length: " + str(len(case.body)).encode())
    data = b"\r\n".join(head) + b"\r\n\r\n" + case.body
    started = time.monotonic()
    chunks: List[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early (413); its answer may still be readable
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if len(chunks) == 1 and not chunk.startswith(b"HTTP/"):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    raw = b"".join(chunks)
    # the final status: after any interim 1xx (Expect: 100-continue)
    statuses = [int(code) for code in re.findall(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3})", raw)]
    final = next((code for code in statuses if code >= 200), statuses[-1] if statuses else None)
    return final, time.monotonic() - started


class Outcome:
    """Every request of one channel: status histogram, the cases that got >= 500 or no answer."""

    def __init__(self, channel: str):
        self.channel = channel
        self.statuses: "collections.Counter[str]" = collections.Counter()
        self.kinds: "collections.Counter[str]" = collections.Counter()
        self.server_errors: List[str] = []
        self.no_answer: List[str] = []
        self.seconds = 0.0
        self.count = 0

    def record(self, case_repr: str, kind: str, status, may_reset: bool = False) -> None:
        """`status`: an HTTP status, None (the connection closed without an answer) or a
        word for what is not HTTP (socket.io events: "replied", "no_reply", ...)."""
        self.count += 1
        self.kinds[kind] += 1
        self.statuses["closed" if status is None else str(status)] += 1
        if isinstance(status, int) and status >= 500:
            self.server_errors.append(f"{status} {case_repr}")
        elif status is None and not may_reset:
            self.no_answer.append(case_repr)
        elif isinstance(status, str) and status.startswith("error"):
            self.no_answer.append(f"{status} {case_repr}")

    def summary(self) -> Dict[str, Any]:
        return {"channel": self.channel, "count": self.count, "seconds": round(self.seconds, 1),
                "statuses": dict(sorted(self.statuses.items())), "kinds": dict(sorted(self.kinds.items())),
                "server_errors": self.server_errors[:20], "no_answer": self.no_answer[:20]}

    def line(self) -> str:
        return (f"{self.channel}: {self.count} requests in {self.seconds:.1f}s, statuses "
                + ", ".join(f"{k}×{v}" for k, v in sorted(self.statuses.items())))


def run_cases(channel: str, port: int, cases: Sequence[Case], workers: int = WORKERS,
              timeout: float = 60.0) -> Outcome:
    outcome = Outcome(channel)
    started = time.monotonic()

    def one(case: Case):
        try:
            status, _ = send_raw(port, case, timeout)
        except OSError as error:  # could not connect at all: the process is gone
            status = f"error:{type(error).__name__}"
        return case, status

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for case, status in pool.map(one, cases):
            outcome.record(repr(case), case.kind, status, case.may_reset)
    outcome.seconds = time.monotonic() - started
    return outcome


def collect(strategy, count: int) -> list:
    """`count` examples of `strategy`, the same ones on every run (derandomized hypothesis,
    generation only: nothing is shrunk, nothing is stored)."""
    drawn: list = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(example):
        drawn.append(example)

    draw()
    return drawn


# --- hostile text ----------------------------------------------------------------------

SNIPPETS = [
    # SQL-ish, template-ish, markup, format strings
    "'; DROP TABLE events; --", "1' OR '1'='1", "\" OR 1=1 --", "admin'--", "'); DELETE FROM progress_applications;--",
    "{{7*7}}", "${7*7}", "#{7*7}", "<%= 7*7 %>", "{hotline}", "{privacy_notice}", "{0.__class__.__mro__}",
    "%s%s%s%n", "%(password)s", "${jndi:ldap://x/a}", "{{config.items()}}", "{% for x in y %}",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "]]>", "<![CDATA[x]]>", "&lt;&#x0;",
    "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>", "\\u0000", "\\\\", "null", "undefined", "NaN", "true",
    # typed commands, any width, hidden behind spaces and invisible characters
    "/restart", "／restart", " /restart", "\u200b/restart", "//restart", "/", "／／",
    '/ask_materials{"disease": "高血压"}', '／ask_materials{"disease":"高血压"}', "/session_start",
    '/inform{"application_no": "NC2025000101", "id_last4": "1234"}', "/action_check_progress",
    '/greet{"x": [1, {"y": null}]}', "/nlu_fallback", "\u2044restart", "\u2215stop",
    # right-to-left, emoji, zero-width, combining marks
    "\u202eabc\u202c", "\u2067مرحبا\u2069", "שלום", "\u200f\u200e", "😀👨‍👩‍👧‍👦🏳️‍🌈", "🤬" * 20,
    "\u200b\u200c\u200d\u2060\ufeff", "a\u0301\u0301\u0301\u0301", "Z̴̡̛̖͉a̷l̵g̸o̴", "\u3000\u3000",
    # the domain: questions, application numbers, suffixes, phone numbers
    "怎么申请", "高血压能办吗", "查进度", "帮我查NC2025000104的进度", "NC2025000101", "nc-2025000102",
    "ＮＣ２０２５０００１０３", "NC202500010419800101", "1357", "123X", "13800138000", "12393",
    "我的身份证是", "后四位", "上一步", "第99999步", "第-1步", "退出", "重新开始",
]

CONTROL = st.characters(whitelist_categories=("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co"))
SEPARATORS = [" ", "\u00a0", "\u3000", "-", "－", "—", "\u200b", ".", "·", "_", "/", "|", "、", " - "]
FULL_WIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


ID_LABELS = ["", "身份证", "身份证号：", "ID:", "ID ", "ID-", "sfz", "SFZH", "idcard=", "Ｉｄ", *sorted(ID_PREFIXES)]
ID_BEFORE = ["", "我的", "帮我查NC2025000101，", "号码 ", "😀", "\u202e", "证件号", "身份证 "]
ID_AFTER = ["", " 谢谢", "，手机13800138000", "，后四位1234", "\u200b", "。查进度", " 查进度"]


def disguised_id(seed: int) -> str:
    """An ID number (18 or 15 digits) as people type it: 6-8-4 groups, a separator of any
    kind between some or all digits, full-width digits and X, latin labels, in a sentence
    (core.privacy must find every one). All choices from `seed`: one draw per example."""
    rng = random.Random(seed)
    digits = "".join(rng.choice("0123456789") for _ in range(17)) + rng.choice("0123456789Xx")
    if rng.random() < 0.25:
        digits = digits[:15]
    style = rng.choice(["groups", "some", "every", "plain"])
    if style == "groups":  # 6-8-4 as printed on the card
        sep = rng.choice(SEPARATORS)
        text = sep.join([digits[:6], digits[6:14], digits[14:]])
    elif style == "some":
        text = "".join(c + (rng.choice(SEPARATORS) if i < len(digits) - 1 and rng.random() < 0.2 else "")
                       for i, c in enumerate(digits))
    elif style == "every":
        text = rng.choice(["\u00a0", "\u200b", " ", "-"]).join(digits)
    else:
        text = digits
    if rng.random() < 0.4:  # full width, some or all of it
        share = rng.random()
        text = "".join(c.translate(FULL_WIDTH) if rng.random() < share else c for c in text)
    return rng.choice(ID_BEFORE) + rng.choice(ID_LABELS) + text + rng.choice(ID_AFTER)


def id_numbers_in_disguise():
    return st.integers(0, 2**32).map(disguised_id)


application_numbers = st.tuples(
    st.sampled_from(["NC", "nc", "ＮＣ", "NC-", "MT", ""]),
    st.text("0123456789", min_size=4, max_size=22),
).map("".join)

huge_text = st.tuples(st.sampled_from(["好", "a", "1", "😀", "\u200b", "/", " ", "5113021980", "NC20250001"]),
                      st.integers(400, 6000)).map(lambda pair: pair[0] * pair[1])

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(CONTROL, max_size=20),
    st.sampled_from(SNIPPETS),
    id_numbers_in_disguise(),
    application_numbers,
    st.just(""),
    st.sampled_from([" ", "\n", "\t\r\n", "\u3000", "\x00", "\ufffd"]),
    huge_text,
    st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8), id_numbers_in_disguise(),
                       application_numbers), min_size=2, max_size=5).map(" ".join),
)

# JSON values of every type, some of them deep or huge; one draw per example (a seed)
JSON_KEYS = ["", "message", "sender", "q", "code", "status", "note", "session_id", "metadata", "username",
             "password", "id_last4", "__proto__", "constructor", "$where", "text", "身份证"]


def _random_string(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(SNIPPETS)
    if roll < 0.4:
        return disguised_id(rng.getrandbits(32))
    if roll < 0.5:
        return rng.choice(["", " ", "\x00", "\u202e", "a" * rng.randint(0, 3000)])
    planes = [(0x20, 0x7e), (0x80, 0x2fff), (0x3000, 0x9fff), (0xe000, 0xffff), (0x10000, 0x10ffff)]
    return "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(1, 30)))


def random_json(seed: int, depth: int = 0):
    rng = random.Random(seed)
    roll = rng.random()
    if depth < 3 and roll < 0.2:
        return [random_json(rng.getrandbits(32), depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.4:
        return {rng.choice(JSON_KEYS + [_random_string(rng)]): random_json(rng.getrandbits(32), depth + 1)
                for _ in range(rng.randint(0, 4))}
    return rng.choice([
        None, True, False, 0, -1, 2**31, 2**63, -2**64, 10**30, 1e308, -0.0, 0.1, 1e-320,
        _random_string(rng), _random_string(rng), _random_string(rng),
        [[[[[]]]]], {"": {"": {}}},
    ])


json_values = st.integers(0, 2**32).map(random_json)


# raw bodies that are not what anyone expects
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"}", b"null", b"[]", b"\"text\"", b"1e999", b"-0", b"9" * 5000,
                     b"\xef\xbb\xbf{\"sender\": \"x\", \"message\": \"hi\"}", b"\xff\xfe{\x00}\x00",
                     b"{\"message\": \"\\ud800\"}", b"{\"sender\": \"\\udfff\", \"message\": \"x\"}",
                     b"{\"message\": \"a\", \"message\": 1}", b"{'sender': 'x'}", b"\x00" * 100,
                     b"sender=x&message=hi", b"<xml><a>1</a></xml>", b"[" * 100000, b"{\"a\":" * 50000,
                     b"{\"sender\": \"x\", \"message\": " + b"[" * 5000 + b"]" * 5000 + b"}"]),
    st.integers(1, 20000).map(lambda n: b"[" * n),
)

bad_headers = st.sampled_from([
    [("Content-Type", "text/plain")], [("Content-Type", "multipart/form-data; boundary=x")],
    [("Content-Type", "application/x-www-form-urlencoded")], [("Content-Type", "application/json; charset=gbk")],
    [("Content-Type", b"application/json; charset=\xff\xfe")], [("Content-Type", "")],
    [("X-Forwarded-For", "999.999.999.999, ::1, garbage")], [("X-Real-IP", "'; DROP TABLE x")],
    [("X-Forwarded-For", b"\xff\xfe\xfd")], [("Forwarded", "for=\"[::1]\";proto=https")],
    [("Accept", "*/*" * 200)], [("X-Big", "a" * 7000)], [("Cookie", b"session=\xff\xfe; a=\x01")],
    [("Authorization", "Bearer ' OR 1=1")], [("Expect", "100-continue")],
    [("Content-Encoding", "gzip")], [("Accept-Encoding", "br, gzip, zstd, *")],
    [("Origin", "null")], [("User-Agent", "😀" * 30)], [("X-Unicode", "身份证511302198001011234")],
    [],
])

BAD_METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO", "PO ST",
               "GET\x00", "POST" * 40, "\u00e9T"]


def bad_paths(base: str) -> List[str]:
    return [base + "/", base + "/../../etc/passwd", base + "%00", base + "/%2e%2e/", base + "?" + "a=b&" * 500,
            base + "/" + "a" * 3000, base.upper(), base + ";x", base + "/\u4e2d", "/" + "%" * 20, "//" + base,
            base.replace("/", "%2F"), base + "#frag", "*", "http://evil.example" + base, base + "\t",
            "/webhooks/" + "x" * 200 + "/webhook", "/webhooks/rest/webhook/extra", "/webhooks//webhook",
            "/../../../etc/passwd", "/%c0%ae%c0%ae/", "/webhooks/%ff%fe/webhook"]


# --- looking for ID numbers -----------------------------------------------------------

_HEX_TOKEN = re.compile(r"[0-9a-f]{32,}")


def has_id_number(text: str) -> bool:
    """A full ID number by core.privacy's rule, in whatever disguise (the detector the
    channels mask with: masking changes the text exactly when it holds one). Long hex
    strings (hashes, tokens, UUIDs) are not text anyone typed and are skipped."""
    if not isinstance(text, str) or not any(c.isdigit() for c in text):
        return False
    if _HEX_TOKEN.fullmatch(text) and any(c in "abcdef" for c in text):
        return False
    return mask_id_card_numbers(text) != text


def strings_in(value) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


def tracker_findings(db_path) -> Tuple[int, List[str]]:
    """(events read, findings): every event's text, slot value, entities and parse data."""
    findings, count = [], 0
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        for sender, data in db.execute("SELECT sender_id, data FROM events"):
            count += 1
            event = json.loads(data)
            parse = event.get("parse_data") or {}
            fields = [event.get("text"), event.get("value"), event.get("entities"),
                      parse.get("text"), parse.get("entities"), event.get("data")]
            for text in strings_in(fields):
                if has_id_number(text):
                    findings.append(f"{sender} {event.get('event')}: {text[:200]!r}")
    return count, findings


# The socket.io client's cache buster (`t=<time.time()>`, 10 + up to 7 digits with a dot)
# appears in Rasa's log of a closing websocket; it is a clock reading, not a typed number.
_CLIENT_CLOCK = re.compile(r"([?&]t=)[0-9]+\.[0-9]+")


def log_findings(path, ignore: Sequence[str] = ()) -> Tuple[int, List[str]]:
    """Every line of the stack log; lines holding one of `ignore` (the sentinels of the
    known-bug reproducers, each asserted by its own strict xfail test) are skipped."""
    findings, count = [], 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            count += 1
            if any(sentinel in line for sentinel in ignore):
                continue
            if has_id_number(_CLIENT_CLOCK.sub(r"\1<clock>", line)):
                findings.append(line.rstrip()[:300])
    return count, findings


def database_findings(db_path) -> Tuple[int, List[str]]:
    """Every text value of every table of an SQLite database."""
    findings, count = [], 0
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str):
                        count += 1
                        if has_id_number(value):
                            findings.append(f"{table}: {value[:200]!r}")
    return count, findings


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def new_id() -> str:
    return uuid.uuid4().hex
