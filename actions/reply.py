"""The one way actions send a reply: content in, messages fitted to the input channel out.

Content is an Answer (assistant.knowledge), guide Replies, Messages or plain strings.
Buttons go out as buttons where the channel shows them (web, REST, socket.io, WeChat,
which numbers them itself); elsewhere their titles are written under the text
(knowledge/channel_texts.yml: plain_buttons) so the user can type one back.

A knowledge answer may be rated (issue 19, core/feedback.py): `send(..., feedback=True)`
marks its last message with {"feedback": "offer"} where the channel has a rating widget
(the web widget: 👍/👎 under the answer), and adds a numbered "有帮助吗？" question where the
channel numbers buttons (WeChat), at most once per conversation session.
"""
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.content import texts
from assistant.knowledge import MAX_CHARS, Answer
from assistant.presentation import ChannelProfile, fit, profile_for
from core.feedback import NEGATIVE_PAYLOAD, OFFER, OFFER_KEY, POSITIVE_PAYLOAD, offered_this_session


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


# How each channel offers a rating (core/feedback.py): the widget draws 👍/👎 under the
# marked message; WeChat gets a numbered question after the answer, once per session.
# Other channels (REST, socket.io, plain text) are not asked.
RATING_WIDGET, RATING_QUESTION = "widget", "numbered_question"
FEEDBACK_STYLES = {"web": RATING_WIDGET, "wechat": RATING_QUESTION}


def feedback_question() -> dict:
    """WeChat's "有帮助吗？" with its two numbered lines (knowledge/channel_texts.yml)."""
    wording = texts("channel_texts")
    return {"text": wording.render("feedback_ask"),
            "buttons": [{"title": wording.render("feedback_up"), "payload": POSITIVE_PAYLOAD},
                        {"title": wording.render("feedback_down"), "payload": NEGATIVE_PAYLOAD}]}


_TAG = re.compile(r"<[^>]+>")


def numbered_length(messages: Sequence[Dict[str, Any]]) -> int:
    """The characters (whitespace included) of one turn's messages as a channel that
    numbers buttons shows them in one reply: texts, then "1. title" lines, blank lines
    between (wechat_channel/messages.py: render_bot_messages)."""
    parts, count = [], 0
    for message in messages:
        text = _TAG.sub("", message.get("text") or "").strip()
        if text:
            parts.append(text)
        lines = []
        for button in message.get("buttons") or []:
            count += 1
            lines.append(f"{count}. {button.get('title') or ''}")
        if lines:
            parts.append("\n".join(lines))
    return len("\n\n".join(parts))


def send(dispatcher: CollectingDispatcher, tracker: Optional[Tracker], content: Any,
         channel_profile: Optional[ChannelProfile] = None, handover: bool = False,
         feedback: bool = False) -> None:
    """`handover`: the reply answers a request for a person; where the channel knows the
    marker (WeChat), it goes out too, after the text, which stays the fallback.
    `feedback`: the reply is a knowledge answer the person may rate (see the top)."""
    chosen = channel_profile or (profile(tracker) if tracker is not None else profile_for(None))
    style = FEEDBACK_STYLES.get(chosen.name) if feedback else None
    parts = _parts(content)
    first = len(dispatcher.messages)
    for index, (text, buttons) in enumerate(parts):
        if buttons and not chosen.buttons:
            titles = "；".join(f"“{b['title']}”" for b in buttons)
            text += "\n" + texts("channel_texts").render("plain_buttons", titles=titles)
            buttons = []
        pieces = fit(text, chosen)
        for piece in pieces[:-1]:
            dispatcher.utter_message(text=piece)
        marker = {OFFER_KEY: OFFER} if style == RATING_WIDGET and index == len(parts) - 1 else {}
        if buttons:
            dispatcher.utter_message(text=pieces[-1], buttons=buttons, **marker)
        else:
            dispatcher.utter_message(text=pieces[-1], **marker)
    if style == RATING_QUESTION and tracker is not None and not offered_this_session(tracker.events or []):
        # once per session, and only when the reply stays short enough with it: else a
        # later, shorter answer of the session asks
        question = feedback_question()
        if numbered_length([*dispatcher.messages[first:], question]) <= MAX_CHARS:
            dispatcher.utter_message(**question, **{OFFER_KEY: OFFER})
    if handover and chosen.handover_marker:
        dispatcher.utter_message(json_message=dict(HANDOVER))
