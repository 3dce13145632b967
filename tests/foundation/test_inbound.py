"""What every channel does with a message on the way in (core/inbound.py, channels/inbound.py),
without a model: no typed "/" command, ID numbers masked, text capped, offered buttons
still work, the client's metadata never kept."""
import asyncio

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.nlu.normalizer import ChineseTextNormalizer
from channels import inbound
from channels.masked import parse_rest_body
from channels.web import parse_request
from core.inbound import MAX_TEXT_CHARS, OfferedPayloads, incoming_text, typed_text, offered_in_events

WEB_SENDER = "web-0f9c1d2e-aaaa"


@pytest.mark.parametrize("typed, seen", [
    ("／restart", "restart"),
    ("/restart", "restart"),
    ("  ／ ／ask_materials{\"disease\": \"高血压\"}", "ask_materials{\"disease\": \"高血压\"}"),
    ("\u3000/stop", "stop"),
    ("∕restart", "restart"),
    ("／", "?"),
    ("//", "?"),
    ("要带什么材料/证件", "要带什么材料/证件"),  # a slash inside is just text
])
def test_typed_text_never_starts_with_a_slash(typed, seen):
    assert typed_text(typed) == seen


def test_typed_text_is_masked_before_it_is_cut():
    text = "要" * (MAX_TEXT_CHARS - 10) + "5113 0219 8001 0112 34"
    seen = typed_text(text)
    assert len(seen) == MAX_TEXT_CHARS and "0219" not in seen and "5113" not in seen
    assert len(typed_text("材料" * 100000)) == MAX_TEXT_CHARS


def test_the_cut_never_leaves_an_id_number():
    """30 digits are no ID number, but cut at the limit they can leave exactly one."""
    text = "我" * (MAX_TEXT_CHARS - 18) + "511302198001011234" + "138001380001"
    seen = typed_text(text)
    assert "51130219800101" not in seen and seen.endswith("1234")


def test_only_a_payload_the_conversation_was_offered_passes_unchanged():
    offered = ['/inform_guide_channel{"guide_channel":"app"}', "/guide_next"]
    assert incoming_text(" /guide_next ", offered) == "/guide_next"
    assert incoming_text(offered[0], offered) == offered[0]
    assert incoming_text("/restart", offered) == "restart"
    assert incoming_text("／guide_next", offered) == "guide_next"  # typed full-width: text


def test_offered_payloads_are_the_latest_turns_bounded_and_expire():
    now = [0.0]
    memory = OfferedPayloads(max_conversations=2, ttl_seconds=10, clock=lambda: now[0])
    memory.remember("a", ["/x", "/y", "不是命令", None])
    assert memory.offered("a") == {"/x", "/y"}
    memory.remember("a", ["/z"])
    assert memory.offered("a") == {"/z"}
    memory.remember("b", ["/b"])
    memory.remember("c", ["/c"])
    assert memory.offered("a") == frozenset()  # least recently used, forgotten
    now[0] = 11
    assert memory.offered("c") == frozenset()


def normalised(text: str) -> str:
    message = Message(data={TEXT: text})
    ChineseTextNormalizer._normalize(message)
    return message.get(TEXT)


def test_the_normaliser_never_turns_a_full_width_slash_into_a_command():
    assert normalised("／restart") == "restart"
    assert normalised(" ／ask_materials") == "ask_materials"
    assert normalised("/guide_next") == "/guide_next"  # a real payload keeps its slash


def test_handle_remembers_the_buttons_and_replaces_the_metadata():
    seen = []

    async def bot(message: UserMessage):
        seen.append((message.text, message.metadata))
        await message.output_channel.send_response(message.sender_id, {
            "text": "选一个", "buttons": [{"title": "下一步", "payload": "/guide_next"}]})

    async def say(text):
        message = UserMessage(text, CollectingOutputChannel(), "handle-test", input_channel="rest",
                              metadata={"client": "chosen-by-the-client", "x": 1})
        await inbound.handle(bot, message, {"client": "server"})
        return message.output_channel.messages

    replies = asyncio.run(say("/guide_next"))  # not offered yet: typed text
    assert replies[0]["buttons"][0]["payload"] == "/guide_next"
    asyncio.run(say("/guide_next"))  # offered now
    asyncio.run(say("身份证511302198001011234"))
    assert seen == [("guide_next", {"client": "server"}), ("/guide_next", {"client": "server"}),
                    ("身份证**************1234", {"client": "server"})]


@pytest.mark.parametrize("body", [None, [], {"message": 5}, {"sender": 5, "message": "你好"},
                                  {"sender": "", "message": "你好"}, {"sender": "x" * 129, "message": "你好"}])
def test_a_bad_rest_body_is_refused_with_a_reason(body):
    parsed, reason = parse_rest_body(body)
    assert parsed is None and reason


def test_the_web_channel_drops_the_clients_metadata():
    parsed, _ = parse_request({"sender": WEB_SENDER, "message": "你好", "metadata": {"client": "me", "a": 1}})
    assert parsed["metadata"] is None


def test_the_buttons_on_offer_are_those_after_the_last_user_message():
    events = [
        {"event": "user", "text": "怎么申请"},
        {"event": "bot", "text": "推荐小程序", "data": {"buttons": [
            {"title": "用小程序办", "payload": "/start_guide{\"guide_channel\": \"miniprogram\"}"},
            {"title": "链接", "payload": "https://example.org"}]}},
        {"event": "action", "name": "action_listen"},
    ]
    assert offered_in_events(events) == {"/start_guide{\"guide_channel\": \"miniprogram\"}"}
    later = events + [{"event": "user", "text": "要带什么材料"}, {"event": "bot", "text": "材料", "data": {}}]
    assert offered_in_events(later) == frozenset()  # an old set is no longer on offer
    assert offered_in_events([{"event": "bot", "data": {"buttons": ["not a dict", None]}}]) == frozenset()
