"""What each input channel can show, decided in code from the channel's name.

Every action sends through actions/reply.py, which reads the profile here: buttons
(web widget, Rasa REST and socket.io), numbered lines (WeChat turns buttons into
"1. …" lines itself), mini-program links (WeChat only), the hand-over marker (WeChat only) and a length limit
per message.
"""
import dataclasses
import re
from typing import Dict, List, Optional, Sequence

from assistant.knowledge import MAX_CHARS, pack, visible_length

# Replies are read on a phone, often by older people at a large font size: one message
# should fit SOFT_CHARS visible characters where possible and never exceed HARD_CHARS
# (a longer text goes out as two messages). make validate-knowledge enforces both rules
# below on every reply the bot can render (the soft limit as a list to work through).
SOFT_CHARS = 120
HARD_CHARS = MAX_CHARS
# A hedge such as "以实际界面为准" / "以南充市医保部门最新官方指引为准".
HEDGE = re.compile(r"以[^。；，！？\n]{0,24}为准")


def reply_problems(messages: Sequence[str], hotline: str) -> List[str]:
    """Breaches of the reading rules in one reply (the messages of one turn): a message
    over HARD_CHARS, the hedge or the hotline more than once."""
    problems = []
    for message in messages:
        if visible_length(message) > HARD_CHARS:
            problems.append(f"a message has {visible_length(message)} characters (max {HARD_CHARS})")
    text = "\n".join(messages)
    hedges = HEDGE.findall(text)
    if len(hedges) > 1:
        problems.append(f"{len(hedges)} hedges in one reply: {'; '.join(hedges)}")
    if hotline and text.count(hotline) > 1:
        problems.append(f"the hotline {text.count(hotline)} times in one reply")
    return problems


def long_messages(messages: Sequence[str]) -> List[int]:
    """Lengths of the messages over SOFT_CHARS."""
    return [visible_length(m) for m in messages if visible_length(m) > SOFT_CHARS]


@dataclasses.dataclass(frozen=True)
class ChannelProfile:
    name: str
    buttons: bool = True           # buttons are sent as buttons (the channel shows them)
    numbered_lines: bool = False   # the channel shows buttons as numbered lines to type back
    miniprogram_links: bool = False
    # the turn that answers "找人工" also carries {"handover": "human"} (custom); the channel
    # decides what it means (WeChat: transfer to 客服 when WECHAT_TRANSFER_TO_KF is on)
    handover_marker: bool = False
    max_chars: int = MAX_CHARS     # visible characters per message; longer texts are split


@dataclasses.dataclass
class Message:
    text: str
    buttons: List[Dict[str, str]] = dataclasses.field(default_factory=list)


PROFILES = {
    "web": ChannelProfile("web"),              # the help widget (channels/web.py)
    "socketio": ChannelProfile("socketio"),
    "rest": ChannelProfile("rest"),
    "callback": ChannelProfile("callback"),
    "wechat": ChannelProfile("wechat", numbered_lines=True, miniprogram_links=True,
                             handover_marker=True),
}
# No channel recorded (tests, messages injected through the HTTP API): keep the buttons.
UNKNOWN_SOURCE = ChannelProfile("unknown")
# Any other channel: no buttons; their titles are written out for the user to type.
PLAIN_TEXT = ChannelProfile("plain", buttons=False)


def profile_for(input_channel: Optional[str]) -> ChannelProfile:
    if not input_channel:
        return UNKNOWN_SOURCE
    return PROFILES.get(input_channel.lower(), PLAIN_TEXT)


def fit(text: str, profile: ChannelProfile) -> List[str]:
    """The text as one or more messages within the profile's length limit (split at lines)."""
    return pack(text.split("\n"), profile.max_chars) or [""]
