"""What each input channel can show, decided in code from the channel's name.

Every action sends through actions/reply.py, which reads the profile here: buttons
(web widget, Rasa REST and socket.io), numbered lines (WeChat turns buttons into
"1. …" lines itself), mini-program links (WeChat only) and a length limit per message.
"""
import dataclasses
from typing import Dict, List, Optional

from assistant.knowledge import MAX_CHARS, pack


@dataclasses.dataclass(frozen=True)
class ChannelProfile:
    name: str
    buttons: bool = True           # buttons are sent as buttons (the channel shows them)
    numbered_lines: bool = False   # the channel shows buttons as numbered lines to type back
    miniprogram_links: bool = False
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
    "wechat": ChannelProfile("wechat", numbered_lines=True, miniprogram_links=True),
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
