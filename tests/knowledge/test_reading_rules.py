"""The rules every reply follows (assistant/presentation.py) and the validator that applies
them to every text in knowledge/ (tools/validate_knowledge.py): each can fail."""
import pathlib
import shutil

import yaml

from assistant.presentation import HARD_CHARS, reply_problems
from tools.validate_knowledge import check_hotline_written_once, main as validate_knowledge

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_a_message_over_the_hard_limit_is_a_problem():
    assert reply_problems(["好" * HARD_CHARS], "12393") == []
    assert reply_problems(["好" * (HARD_CHARS + 1)], "12393")


def test_the_hedge_or_the_hotline_twice_in_one_reply_is_a_problem():
    assert reply_problems(["以官方规定为准。", "以实际界面为准。"], "12393")
    assert reply_problems(["请拨打 12393。", "或拨打12393"], "12393")
    assert reply_problems(["以官方规定为准，可拨打 12393。"], "12393") == []


def test_a_hotline_that_differs_from_contacts_is_found_anywhere(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "page.html").write_text("<p>热线 12345</p>", encoding="utf-8")
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "topics.yml").write_text("answer: 请拨打 12393\nsource: hotline_12393\n",
                                                         encoding="utf-8")
    problems = check_hotline_written_once(tmp_path, "12393")
    assert any("web/page.html:1" in p and "12345" in p for p in problems)
    assert any("knowledge/topics.yml:1" in p and "{hotline}" in p for p in problems)
    assert not any("topics.yml:2" in p for p in problems)  # a source id is not a number


def test_the_shipped_tree_passes_and_a_too_long_reply_fails(tmp_path, capsys):
    assert validate_knowledge([]) == 0
    edited = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", edited)
    path = edited / "progress_replies.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["stopped"] = "好" * (HARD_CHARS + 5)
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert validate_knowledge(["--knowledge", str(edited)]) == 1
    assert "progress_replies.yml stopped" in capsys.readouterr().out
