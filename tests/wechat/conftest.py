import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from wechat_fakes import APPID, APPSECRET, AES_KEY, TOKEN, ChannelServer, FakeWeChat, StubAgent  # noqa: E402


@pytest.fixture
def fake_wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture
def channel_for(fake_wechat):
    """channel_for(mode=..., delay=..., **settings) -> (server, agent); the fake points at it."""
    from wechat_channel.config import WeChatSettings
    from channels.wechat import WeChatInput

    servers = []

    def start(mode: str = "safe", delay: float = 0.0, **overrides):
        credentials = {"token": TOKEN, "appid": APPID, "appsecret": APPSECRET,
                       "aes_key": AES_KEY, "mode": mode, "api_base": fake_wechat.api_base}
        credentials.update({k: v for k, v in overrides.items() if k in
                            ("appsecret", "passive_only", "reply_deadline", "menu", "appid")})
        extra = {k: v for k, v in overrides.items() if k not in credentials}
        credentials = {k: v for k, v in credentials.items() if v is not None}
        settings = WeChatSettings.from_mapping(credentials, **extra)
        agent = StubAgent(delay=delay)
        server = ChannelServer(WeChatInput(settings), agent).__enter__()
        servers.append(server)
        fake_wechat.channel_url = server.webhook_url
        return server, agent

    yield start
    for server in servers:
        server.__exit__(None, None, None)
