"""Send an Answer from assistant.knowledge to the user, fitted to the input channel.

Buttons render on the web (socketio, rest) and in WeChat (the wechat channel turns
them into numbered lines itself). Other channels get the button titles as plain text
lines the user can type back, since a tap is not possible there.
"""
from typing import Optional

from rasa_sdk.executor import CollectingDispatcher

from assistant.knowledge import Answer

# every channel this project serves (web = the help widget, web/rasa_channel.py)
BUTTON_CHANNELS = {"web", "socketio", "rest", "wechat", "callback"}


def renders_buttons(channel: Optional[str]) -> bool:
    # None: no channel recorded (tests, API-injected messages) -> keep the buttons.
    return channel is None or channel in BUTTON_CHANNELS


def send(dispatcher: CollectingDispatcher, answer: Answer, channel: Optional[str]) -> None:
    messages = list(answer.messages) or [""]
    buttons = answer.buttons
    if buttons and not renders_buttons(channel):
        messages[-1] += "\n您可以接着问：" + "；".join(f"“{b['title']}”" for b in buttons)
        buttons = []
    for message in messages[:-1]:
        dispatcher.utter_message(text=message)
    if buttons:
        dispatcher.utter_message(text=messages[-1], buttons=buttons)
    else:
        dispatcher.utter_message(text=messages[-1])
