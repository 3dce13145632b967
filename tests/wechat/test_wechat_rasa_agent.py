"""Smoke test with the real trained Rasa agent behind the channel (no stand-in bot)."""
from wechat_fakes import ChannelServer, event_xml, text_xml

OPENID = "oRealAgentUser00000000000001"


def test_real_agent_answers_through_the_channel(fake_wechat, trained_model):
    """`trained_model` (tests/conftest.py) skips without a model, and fails under CI=true."""
    from rasa.core.agent import Agent
    from rasa.core.tracker_store import InMemoryTrackerStore
    from rasa.shared.core.domain import Domain

    from wechat_channel.config import WeChatSettings
    from channels.wechat import WeChatInput

    settings = WeChatSettings.from_mapping({
        "token": "testtoken123", "appid": "wx0123456789abcdef", "appsecret": "s3cret",
        "aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "mode": "safe",
        "api_base": fake_wechat.api_base})
    agent = Agent.load(str(trained_model), tracker_store=InMemoryTrackerStore(Domain.empty()))
    with ChannelServer(WeChatInput(settings), agent) as server:
        fake_wechat.channel_url = server.webhook_url
        welcome = fake_wechat.push(event_xml(OPENID, "subscribe"), mode="safe")
        assert "1. " in welcome.content
        reply = fake_wechat.push(text_xml(OPENID, "你是机器人吗"), mode="safe")
        assert reply.status == 200 and reply.content, reply
        # the domain's answer to bot_challenge, not a channel fallback
        assert "12393" in reply.content and "系统有点忙" not in reply.content
        tracker = server.run(agent.tracker_store.retrieve(OPENID))
        assert tracker.latest_message.text == "你是机器人吗"
        assert tracker.get_latest_input_channel() == "wechat"
