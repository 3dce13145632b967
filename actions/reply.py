"""The one way actions send a reply: content in, messages fitted to the input channel out.

Content is an Answer (assistant.knowledge), guide Replies, Messages or plain strings.
Buttons go out as buttons where the channel shows them (web, REST, socket.io, WeChat,
which numbers them itself); elsewhere their titles are written under the text
(knowledge/channel_texts.yml: plain_buttons) so the user can type one back.
"""
from typing import Any, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.content import texts
from assistant.knowledge import Answer
from assistant.presentation import ChannelProfile, fit, profile_for


def profile(tracker: Tracker) -> ChannelProfile:
    return profile_for(tracker.get_latest_input_channel())


def _parts(content: Any) -> List[Tuple[str, list]]:
    if isinstance(content, Answer):
        messages = list(content.messages) or [""]
        return [(text, []) for text in messages[:-1]] + [(messages[-1], list(content.buttons))]
    if isinstance(content, str):
        return [(content, [])]
    if hasattr(content, "text"):
        return [(content.text, list(getattr(content, "buttons", None) or []))]
    parts: List[Tuple[str, list]] = []
    for item in content:  # a sequence of any of the above
        parts += _parts(item)
    return parts


# The marker a channel recognises on the turn that asks for a person (wechat_channel's
# messages.HANDOVER_KEY / HANDOVER_HUMAN; written here too: actions do not import the channel).
HANDOVER = {"handover": "human"}


def send(dispatcher: CollectingDispatcher, tracker: Optional[Tracker], content: Any,
         channel_profile: Optional[ChannelProfile] = None, handover: bool = False) -> None:
    """`handover`: the reply answers a request for a person; where the channel knows the
    marker (WeChat), it goes out too, after the text, which stays the fallback."""
    chosen = channel_profile or (profile(tracker) if tracker is not None else profile_for(None))
    for text, buttons in _parts(content):
        if buttons and not chosen.buttons:
            titles = "；".join(f"“{b['title']}”" for b in buttons)
            text += "\n" + texts("channel_texts").render("plain_buttons", titles=titles)
            buttons = []
        pieces = fit(text, chosen)
        for piece in pieces[:-1]:
            dispatcher.utter_message(text=piece)
        if buttons:
            dispatcher.utter_message(text=pieces[-1], buttons=buttons)
        else:
            dispatcher.utter_message(text=pieces[-1])
    if handover and chosen.handover_marker:
        dispatcher.utter_message(json_message=dict(HANDOVER))
