"""Content governance (issue 20): make validate-knowledge fails when a flag does not tell
the truth. One rule a test, each on a small violating edit of a copy of knowledge/, and the
shipped knowledge passing every rule (docs/knowledge.md, "Content governance")."""
import pathlib
import shutil

import pytest
import yaml

from assistant.knowledge import KnowledgeBase
from assistant.knowledge_checks import (
    area_code_note, check_governance, check_reply_governance, flagged_entries, source_confirmed,
)
from assistant.contacts import contact_context
from tools.validate_knowledge import for_outside_nanchong, rendered_replies, validate_all

ROOT = pathlib.Path(__file__).resolve().parents[2]
KNOWLEDGE = ROOT / "knowledge"


@pytest.fixture()
def editable(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def edit(directory: pathlib.Path, name: str, change) -> None:
    path = directory / name
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")


def errors(directory: pathlib.Path):
    return [p for p in validate_all(directory, ROOT / "domain", root=directory.parent) if p.startswith("ERROR")]


def governance_errors(directory: pathlib.Path):
    """Only what the governance rules report (another rule may fail on a shared edit)."""
    return [p for p in errors(directory) if any(word in p for word in (
        "verified:", "status", "cites no document", "hedges", "外地拨打请加区号", "fact "))]


def test_verified_true_needs_a_source_whose_status_is_confirmed(editable):
    def claim_verified(document):
        document["topics"]["eligibility"]["verified"] = True  # rests on the guide alone
    edit(editable, "topics.yml", claim_verified)

    def claim_disease(document):
        next(d for d in document["diseases"] if d["name"] == "冠心病")["verified"] = True
    edit(editable, "diseases.yml", claim_disease)

    def forget_status(document):
        del document["sources"]["advice"]["status"]
    edit(editable, "sources.yml", forget_status)
    found = governance_errors(editable)
    assert any("topics.yml.topics.eligibility: verified: true, but its source 'guide' is not confirmed" in e
               for e in found), found
    assert any("diseases.yml.diseases[冠心病]: verified: true" in e for e in found), found
    assert any("sources.yml: advice needs status" in e for e in found), found


def test_the_same_fact_carries_the_same_flag_wherever_it_appears(editable):
    def restate(document):
        # a verified topic (confirmed source) repeating a guide-only specific
        document["topics"]["human"]["answer"] += "\n申请表可以在人社通下载。"
        document["topics"]["human"]["facts"] = ["no_such_fact"]
    edit(editable, "topics.yml", restate)

    def understate(document):
        # the national list is confirmed: 糖尿病 cannot be unverified while 高血压 is verified
        next(d for d in document["diseases"] if d["name"] == "糖尿病")["verified"] = False
    edit(editable, "diseases.yml", understate)
    found = governance_errors(editable)
    assert any("topics.yml.topics.human: verified: true, but it states the unconfirmed fact(s) form_download"
               in e for e in found), found
    assert any("topics.yml.topics.human: fact 'no_such_fact' is not in sources.yml facts" in e for e in found), found
    assert any("diseases.yml.diseases[糖尿病]: verified: false, but its source" in e for e in found), found


def test_a_fact_is_one_id_with_one_source_and_its_flag_is_that_sources_status():
    kb = KnowledgeBase.load(KNOWLEDGE)
    facts = kb.documents["sources.yml"]["facts"]
    assert not source_confirmed(kb, facts["hotline_routing"]["source"])  # FACTS.md 2026-12
    assert not source_confirmed(kb, facts["app_and_miniprogram_names"]["source"])
    assert source_confirmed(kb, facts["national_cross_province"]["source"])
    # the same claim in two files: both unverified
    assert kb.contacts["hotline_local"]["source"] == "hotline_routing"
    assert kb.contacts["hotline_local"]["verified"] is False
    assert "hotline_routing" in kb.topics["other_place"]["facts"] and not kb.topics["other_place"]["verified"]


def test_every_disease_cites_a_document_or_fails(editable):
    def add(document):
        document["diseases"].append({"name": "测试病", "aliases": [], "category": "门诊慢特病",
                                     "criteria": None, "extra_materials": [], "source": "advice",
                                     "verified": False})
        document["diseases"].append({"name": "无来源病", "aliases": [], "category": "门诊慢特病",
                                     "criteria": None, "extra_materials": [], "verified": False})
    edit(editable, "diseases.yml", add)
    found = errors(editable)
    assert any("diseases.yml: 测试病 cites no document" in e for e in found), found
    assert any("无来源病" in e and ("cites no document" in e or "is not an id" in e) for e in found), found


def test_a_single_source_specific_is_said_with_exactly_one_hedge(editable):
    kb = KnowledgeBase.load(KNOWLEDGE)
    assert check_reply_governance(kb, "x", ["在「四川医保」APP里查进度（以实际界面为准）。"], "12393") == []
    assert "0 hedges" in check_reply_governance(kb, "x", ["在「四川医保」APP里查进度。"], "12393")[0]
    assert "2 hedges" in check_reply_governance(
        kb, "x", ["在「四川医保」APP里查（以实际界面为准）。", "以官方规定为准。"], "12393")[0]

    def unhedge(document):
        document["no_match"] = "没查到这条申请。您可以在“四川医保”APP或小程序里查进度，或拨打 {hotline}。"
    edit(editable, "progress_replies.yml", unhedge)
    found = governance_errors(editable)
    assert any("progress_replies.yml no_match: states app_and_miniprogram_names" in e and "0 hedges" in e
               for e in found), found


def test_the_hotline_for_someone_outside_nanchong_comes_with_the_area_code(editable):
    kb = KnowledgeBase.load(KNOWLEDGE)
    note = area_code_note(kb)
    assert note == "外地拨打请加区号 0817（未核实）"  # the area code from contacts.yml hotline_local
    assert check_reply_governance(kb, "x", ["人在外地？可拨打 12393。"], "12393")
    assert check_reply_governance(kb, "x", ["可拨打 12393。"], "12393", outside_nanchong=True)
    assert check_reply_governance(kb, "x", [f"以官方指引为准，可拨打 12393；{note}。"], "12393",
                                  outside_nanchong=True) == []

    def drop_note(document):
        document["caveat_outside"] = document["caveat"]  # other_place would give 12393 alone
    edit(editable, "topics.yml", drop_note)

    def goodbye(document):
        document["utter_goodbye"] = "好的，再见！人在外地也可以拨打 {hotline}。"
    edit(editable, "responses.yml", goodbye)
    found = governance_errors(editable)
    assert any("topics.yml other_place: gives 12393 to someone who may be outside" in e for e in found), found
    assert any("responses.yml utter_goodbye: gives 12393" in e for e in found), found


def test_the_shipped_knowledge_passes_every_governance_rule():
    kb = KnowledgeBase.load(KNOWLEDGE)
    steps = yaml.safe_load((KNOWLEDGE / "guide_steps.yml").read_text(encoding="utf-8"))
    assert check_governance(kb, {"guide_steps.yml": steps}) == []
    hotline = contact_context(KNOWLEDGE)["hotline"]
    for label, messages in rendered_replies(kb, KNOWLEDGE):
        assert check_reply_governance(kb, label, messages, hotline, for_outside_nanchong(kb, label)) == []
    # nothing that rests on the guide alone is verified (FACTS.md 2026-12)
    documents = {**kb.documents, "guide_steps.yml": steps}
    for name, document in documents.items():
        for where, entry in flagged_entries(document, name):
            if entry["source"] == "guide":
                assert entry["verified"] is False, where
    # the 异地 answer: the hotline once, with the area code marked unverified
    other_place = "\n".join(kb.answer_topic("other_place").messages)
    assert other_place.count(hotline) == 1 and area_code_note(kb) in other_place
