"""The privacy notice (PIPL): one text in knowledge/, naming the retention period the
deployment configures, served inside widget.js; make validate-knowledge guards it.
No stack needed (the browser and WeChat tests show it to people)."""
import json
import pathlib
import re
import shutil

import pytest
import yaml

from assistant.content import privacy_notice, texts
from assistant.knowledge import visible_length
from channels.config import ConversationStoreSettings
from core import retention
from tools.validate_knowledge import validate_all
from web.app import NOTICE_MARKER, widget_script
from web.config import STATIC_DIR, WebConfig
from wechat_channel.config import ConfigError, WeChatSettings

ROOT = pathlib.Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"


def test_the_notice_says_what_is_stored_for_how_long_and_who_sees_it_in_few_words():
    for days in (30, 7, 365):
        notice = privacy_notice(days)
        assert f"{days}天" in notice
        assert "病名" in notice and "申请编号" in notice  # what may be in the conversation
        assert "运营单位" in notice and "删除" in notice  # who keeps it, and that it ends
        assert visible_length(notice) <= 120, notice
    assert "{" not in privacy_notice(7.5) and "7.5天" in privacy_notice(7.5)


@pytest.mark.parametrize("value, days", [(None, 30), ("", 30), ("45", 45), (" 7 ", 7), ("7.5", 7.5)])
def test_every_process_reads_the_same_period(value, days):
    """The tracker store deletes after the period the notice names: the web app, the WeChat
    channel and the tracker store's settings read CONVERSATION_RETENTION_DAYS alike."""
    environ = {} if value is None else {"CONVERSATION_RETENTION_DAYS": value}
    assert retention.retention_days(environ) == days
    assert WebConfig.from_env(environ).retention_days == days
    assert WeChatSettings.from_env({"WECHAT_TOKEN": "abc123", **environ}).retention_days == days
    assert ConversationStoreSettings.from_env(environ).retention_days == days


@pytest.mark.parametrize("bad", ["0", "-1", "thirty", "0.5"])
def test_a_bad_period_stops_the_process_at_start_up(bad):
    environ = {"CONVERSATION_RETENTION_DAYS": bad}
    with pytest.raises(ValueError):
        WebConfig.from_env(environ)
    with pytest.raises(ConfigError):
        WeChatSettings.from_env({"WECHAT_TOKEN": "abc123", **environ})


def test_the_served_widget_carries_the_notice_as_a_plain_string():
    source = (STATIC_DIR / "widget.js").read_bytes()
    assert source.count(NOTICE_MARKER) == 1
    served = widget_script(45).decode("utf-8")
    literal = re.search(r"var PRIVACY_NOTICE = (.*);", served).group(1)
    assert literal.isascii()  # JSON escapes only: nothing in the text can end the literal
    assert json.loads(literal) == privacy_notice(45)
    assert NOTICE_MARKER.decode() not in served
    assert served.replace(literal, NOTICE_MARKER.decode()) == source.decode("utf-8")


def test_served_as_a_plain_file_the_widget_has_no_notice():
    assert re.search(r"var PRIVACY_NOTICE = /\*PRIVACY_NOTICE\*/null;", (STATIC_DIR / "widget.js").read_text())


@pytest.fixture()
def editable(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def errors(directory):
    return [p for p in validate_all(directory, ROOT / "domain", root=directory.parent) if p.startswith("ERROR")]


def _set_text(path, key, value):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document[key] = value
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_shipped_knowledge_passes(editable):
    assert errors(editable) == []


def test_a_notice_with_its_own_number_of_days_fails_validation(editable):
    _set_text(editable / "channel_texts.yml", "privacy_notice",
              "隐私提示：这段对话由本服务的运营单位保存30天，到期自动删除。里面可能有病名、申请编号。")
    found = errors(editable)
    assert any("privacy_notice must name the retention period" in e for e in found), found
    assert any("“30天” is not in the sources" in e for e in found), found


def test_a_missing_notice_fails_validation(editable):
    path = editable / "channel_texts.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    del document["privacy_notice"]
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert any("'privacy_notice' missing" in e for e in errors(editable))


def test_a_wechat_welcome_without_the_notice_fails_validation(editable):
    path = editable / "wechat_menu.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["welcome"]["text"] = document["welcome"]["text"].replace("{privacy_notice}\n", "")
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert any("must carry {privacy_notice}" in e for e in errors(editable))


def test_the_notice_is_one_text_of_the_channel_texts():
    assert "privacy_notice" in texts("channel_texts")
