"""Configuration: WECHAT_* variables -> credentials.yml -> Rasa loads the channel; the menu."""
import pathlib

import pytest
import yaml

from assistant.contacts import contact_context

from wechat_channel.config import ENV_VARS, ConfigError, WeChatSettings
from wechat_channel.menu import MenuError, load_menu, parse_menu

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {
    "WECHAT_TOKEN": "tok3n", "WECHAT_APPID": "wx0123456789abcdef", "WECHAT_APPSECRET": "s3cret",
    "WECHAT_AES_KEY": "A" * 43, "WECHAT_MODE": "safe", "WECHAT_API_BASE": "http://127.0.0.1:9",
}


def _runtime_credentials(tmp_path, environ):
    from tools.stack import StackSettings, runtime_credentials

    settings = StackSettings(state_dir=tmp_path)
    return runtime_credentials(settings, environ)


def test_make_run_credentials_reference_every_set_variable_and_no_secret(tmp_path):
    path = _runtime_credentials(tmp_path, ENV)
    text = path.read_text(encoding="utf-8")
    section = yaml.safe_load(text)["channels.wechat.WeChatInput"]
    assert section == {"token": "${WECHAT_TOKEN}", "appid": "${WECHAT_APPID}",
                       "appsecret": "${WECHAT_APPSECRET}", "aes_key": "${WECHAT_AES_KEY}",
                       "mode": "${WECHAT_MODE}", "api_base": "${WECHAT_API_BASE}"}
    assert "s3cret" not in text and "A" * 43 not in text
    without = yaml.safe_load(_runtime_credentials(tmp_path, {"WECHAT_APPID": "wx1"}).read_text())
    assert "channels.wechat.WeChatInput" not in without  # no token, no channel


def test_rasa_loads_the_channel_from_those_credentials(tmp_path, monkeypatch):
    from rasa.core.run import create_http_input_channels

    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    for var in set(ENV_VARS.values()) - set(ENV):
        monkeypatch.delenv(var, raising=False)
    path = _runtime_credentials(tmp_path, ENV)
    channels = create_http_input_channels(None, str(path))
    wechat = [c for c in channels if c.name() == "wechat"]
    assert len(wechat) == 1 and wechat[0].url_prefix() == "wechat"
    settings = wechat[0].settings
    assert (settings.token, settings.mode, settings.appsecret, settings.api_base) == \
        ("tok3n", "safe", "s3cret", "http://127.0.0.1:9")
    assert (settings.reply_deadline, settings.passive_only) == (4.5, False)  # defaults


def test_settings_from_env_and_defaults():
    settings = WeChatSettings.from_env({"WECHAT_TOKEN": "abc123"})
    assert (settings.mode, settings.api_base, settings.can_send_customer_messages) == \
        ("plain", "https://api.weixin.qq.com", False)
    settings = WeChatSettings.from_env({**ENV, "WECHAT_MODE": "", "WECHAT_PASSIVE_ONLY": "yes",
                                        "WECHAT_API_BASE": "http://fake:1/"})
    assert (settings.mode, settings.passive_only, settings.api_base) == ("safe", True, "http://fake:1")


@pytest.mark.parametrize("bad", [
    {"WECHAT_TOKEN": "x"},  # too short
    {"WECHAT_TOKEN": "has space"},
    {"WECHAT_TOKEN": "abc123", "WECHAT_MODE": "secret"},
    {"WECHAT_TOKEN": "abc123", "WECHAT_MODE": "safe"},  # no key
    {"WECHAT_TOKEN": "abc123", "WECHAT_MODE": "safe", "WECHAT_AES_KEY": "A" * 43},  # no appid
    {"WECHAT_TOKEN": "abc123", "WECHAT_REPLY_DEADLINE": "6"},  # WeChat gives up after 5 s
    {"WECHAT_TOKEN": "abc123", "WECHAT_API_BASE": "ftp://x"},
])
def test_bad_settings_fail_at_start_up(bad):
    with pytest.raises(ConfigError):
        WeChatSettings.from_env(bad)


def test_menu_file_loads_and_every_intent_exists_in_the_domain():
    menu = load_menu(ROOT / "knowledge" / "wechat_menu.yml", placeholders=contact_context())
    assert len(menu.welcome_buttons) >= 2 and menu.clicks
    intents = set()
    for path in (ROOT / "domain").glob("*.yml"):
        intents.update(i if isinstance(i, str) else next(iter(i))
                       for i in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("intents", []))
    used = [e.payload[1:] for e in list(menu.clicks.values()) + menu.welcome_buttons
            if e.payload.startswith("/")]
    assert used and set(used) <= intents, set(used) - intents
    assert "12393" in menu.unknown_click_reply


@pytest.mark.parametrize("data", [
    {},
    {"welcome": {"text": "hi", "buttons": [{"title": "x"}]}},  # neither intent nor text
    {"welcome": {"text": "hi"}, "clicks": {"K": {"title": "x", "intent": "a", "text": "b"}}},
])
def test_bad_menus_are_refused(data):
    with pytest.raises(MenuError):
        parse_menu(data)
