"""The REST and socket.io channels keep Rasa's names (same URLs) and mask ID numbers."""
import asyncio

from rasa.core.channels.channel import UserMessage

from channels.masked import MaskedRestInput, MaskedSocketIOInput, masking


def test_channels_keep_rasas_names_so_urls_do_not_change():
    assert MaskedRestInput.name() == "rest"
    assert MaskedSocketIOInput.name() == "socketio"


def test_handler_only_sees_masked_text():
    seen = []

    async def handler(message):
        seen.append(message.text)

    wrapped = masking(handler)
    asyncio.run(wrapped(UserMessage("身份证 51130219800101123X 查进度", sender_id="s")))
    asyncio.run(wrapped(UserMessage("后四位123X", sender_id="s")))
    assert seen == ["身份证 **************123X 查进度", "后四位123X"]


def test_rest_channel_masks_before_rasa_keeps_the_text_for_its_logs():
    class FakeRequest:
        json = {"sender": "s", "message": "511302198001011234"}

    assert MaskedRestInput()._extract_message(FakeRequest()) == "**************1234"
