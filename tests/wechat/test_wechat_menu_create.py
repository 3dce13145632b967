"""`make wechat-menu` (tools/wechat_menu.py): the menu of knowledge/wechat_menu.yml is created
through POST /cgi-bin/menu/create on the fake WeChat, with WeChat's documented body."""
import pathlib

import pytest
import yaml

from tools import wechat_menu
from wechat_channel.menu import MenuError, parse_menu

from wechat_fakes import APPID, APPSECRET

ROOT = pathlib.Path(__file__).resolve().parents[2]
MENU_FILE = ROOT / "knowledge" / "wechat_menu.yml"


def _env(fake, **extra):
    env = {"WECHAT_APPID": APPID, "WECHAT_APPSECRET": APPSECRET, "WECHAT_API_BASE": fake.api_base}
    env.update(extra)
    return env


def test_menu_is_created_with_the_documented_body(fake_wechat, capsys):
    assert wechat_menu.main([], _env(fake_wechat)) == 0
    assert len(fake_wechat.menu_calls) == 1
    call = fake_wechat.menu_calls[0]
    assert call["token"] == "TOKEN-1"
    body = call["body"]
    assert set(body) == {"button"} and 1 <= len(body["button"]) <= 3
    clicks = yaml.safe_load(MENU_FILE.read_text(encoding="utf-8"))["clicks"]
    seen = []
    for button in body["button"]:
        assert len(button["name"].encode("utf-8")) <= 16
        if "sub_button" in button:
            assert set(button) == {"name", "sub_button"} and 1 <= len(button["sub_button"]) <= 5
            leaves = button["sub_button"]
        else:
            leaves = [button]
        for leaf in leaves:
            assert set(leaf) == {"type", "name", "key"} and leaf["type"] == "click"
            assert len(leaf["name"].encode("utf-8")) <= 60
            seen.append(leaf["key"])
    assert seen and set(seen) <= set(clicks)
    assert "ASK_HUMAN" in seen
    assert "menu created" in capsys.readouterr().out


def test_expired_token_is_renewed_once(fake_wechat):
    fake_wechat.menu_errors.append(42001)
    assert wechat_menu.main([], _env(fake_wechat)) == 0
    assert [c["token"] for c in fake_wechat.menu_calls] == ["TOKEN-1", "TOKEN-2"]


def test_wechat_errcode_exits_non_zero(fake_wechat, capsys):
    fake_wechat.menu_errors.append(40018)  # invalid button name size
    assert wechat_menu.main([], _env(fake_wechat)) == 1
    assert "40018" in capsys.readouterr().err


def test_unreachable_wechat_exits_non_zero(capsys):
    env = {"WECHAT_APPID": APPID, "WECHAT_APPSECRET": APPSECRET,
           "WECHAT_API_BASE": "http://127.0.0.1:9"}
    assert wechat_menu.main([], env) == 1


@pytest.mark.parametrize("missing", ["WECHAT_APPID", "WECHAT_APPSECRET"])
def test_missing_settings_are_named(fake_wechat, capsys, missing):
    env = _env(fake_wechat)
    del env[missing]
    assert wechat_menu.main([], env) == 2
    assert missing in capsys.readouterr().err
    assert fake_wechat.menu_calls == [] and fake_wechat.token_calls == 0


def test_wrong_menu_buttons_are_refused():
    data = yaml.safe_load(MENU_FILE.read_text(encoding="utf-8"))
    for bad in ([{"name": "谁能申请", "key": "NO_SUCH_KEY"}],
                [{"name": "这个名字太长了超过十六字节", "key": "APPLY_WHO"}],
                [{"name": "更多", "sub_buttons": [{"name": "x", "key": "APPLY_WHO"}] * 6}],
                [{"name": "a", "key": "APPLY_WHO"}] * 4):
        with pytest.raises(MenuError):
            parse_menu({**data, "buttons": bad})
