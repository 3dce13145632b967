"""The WeChat welcome tells a new follower what is stored, for how long (the period the
deployment configures: CONVERSATION_RETENTION_DAYS) and who can see it."""
import pytest
import yaml

from assistant.content import privacy_notice
from wechat_fakes import event_xml

OPENID = "oUserOpenId0000000000000009"


@pytest.mark.parametrize("configured, days", [(None, 30), ("45", 45)])
def test_the_welcome_carries_the_notice_with_the_configured_days(channel_for, fake_wechat, monkeypatch,
                                                                  configured, days):
    if configured is None:
        monkeypatch.delenv("CONVERSATION_RETENTION_DAYS", raising=False)
    else:
        monkeypatch.setenv("CONVERSATION_RETENTION_DAYS", configured)
    _, agent = channel_for(mode="safe")
    welcome = fake_wechat.push(event_xml(OPENID, "subscribe"), mode="safe").content
    notice = privacy_notice(days)
    assert f"保存{days}天" in notice
    assert welcome.startswith("您好，欢迎关注")
    assert welcome.count(notice) == 1
    # said before the numbered questions, so it is read before anything is typed
    assert welcome.index(notice) < welcome.index("1. 谁能申请")
    assert "{" not in welcome
    assert agent.runs == []


def test_rasa_builds_the_channel_with_the_period_from_the_environment(tmp_path, monkeypatch):
    """As `make run` starts it: credentials.yml from tools/stack.py, the period from the
    process environment (it is the deployment's setting, not a WeChat credential)."""
    from rasa.core.run import create_http_input_channels
    from tools.stack import StackSettings, runtime_credentials

    environ = {"WECHAT_TOKEN": "tok3n", "WECHAT_MODE": "plain", "CONVERSATION_RETENTION_DAYS": "14"}
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    path = runtime_credentials(StackSettings(state_dir=tmp_path), environ)
    section = yaml.safe_load(path.read_text(encoding="utf-8"))["channels.wechat.WeChatInput"]
    assert "retention_days" not in section  # not written into credentials
    channel = [c for c in create_http_input_channels(None, str(path)) if c.name() == "wechat"][0]
    assert channel.settings.retention_days == 14
    assert privacy_notice(14) in channel.menu.welcome_text
