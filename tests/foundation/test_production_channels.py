"""deploy/credentials.production.yml: only the channels whose senders the server binds
(the web channel and WeChat), never Rasa's REST or socket.io channels (issue 16)."""
import pathlib

import yaml

from tools.stack import StackSettings, build_services, runtime_credentials

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "deploy" / "credentials.production.yml"
ALLOWED = {"channels.web.WebInput", "channels.wechat.WeChatInput"}
SPOOFABLE = ("rest", "socketio", "channels.masked.MaskedRestInput", "channels.masked.MaskedSocketIOInput")


def _channels(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def test_the_production_file_has_only_sender_binding_channels():
    channels = _channels(PRODUCTION)
    assert set(channels) == {"channels.web.WebInput"}
    assert not any(name in channels for name in SPOOFABLE)
    assert "${" not in "".join(str(value) for value in channels.values())  # no secrets, no values


def test_rasa_builds_exactly_the_web_channel_from_it():
    from rasa.core.run import create_http_input_channels

    channels = create_http_input_channels(None, str(PRODUCTION))
    assert [channel.name() for channel in channels] == ["web"]


def test_with_wechat_switched_on_the_stack_adds_only_wechat(tmp_path):
    settings = StackSettings(state_dir=tmp_path, credentials=PRODUCTION)
    environ = {"WECHAT_TOKEN": "t", "WECHAT_APPID": "wx0", "WECHAT_MODE": "safe"}
    channels = _channels(runtime_credentials(settings, environ))
    assert set(channels) == ALLOWED
    assert channels["channels.wechat.WeChatInput"]["token"] == "${WECHAT_TOKEN}"


def test_make_run_takes_it_from_rasa_credentials_and_lists_no_rest_url(tmp_path):
    settings = StackSettings.from_env({"RASA_CREDENTIALS": str(PRODUCTION), "STACK_STATE_DIR": str(tmp_path)})
    assert settings.credentials == PRODUCTION
    services = {s.name: s for s in build_services(settings, {}, with_stand_in=False)}
    rasa = services["rasa"]
    used = pathlib.Path(rasa.command[rasa.command.index("--credentials") + 1])
    assert set(_channels(used)) == {"channels.web.WebInput"}
    urls = " ".join(rasa.public_urls)
    assert "/webhooks/web/webhook" in urls
    assert "/webhooks/rest/" not in urls and "socket.io" not in urls


def test_development_keeps_rest_and_socketio():
    channels = _channels(ROOT / "credentials.yml")
    assert {"channels.masked.MaskedRestInput", "channels.masked.MaskedSocketIOInput",
            "channels.web.WebInput"} <= set(channels)
