"""Normalising, masking and credentials: what the service and the bot both rely on."""
import time

import pytest

from core.agent_tokens import issue_agent_token, verify_agent_token
from core.devsecrets import SECRET_NAMES, ensure_dev_secrets
from core.formats import (
    normalize_application_no, normalize_id_last4, normalize_status, parse_datetime,
)
from core.privacy import mask_application_no, mask_name, mask_text
from progress_service.importer import check_fields


@pytest.mark.parametrize("typed, expected", [
    ("NC2025000123", "NC2025000123"),
    ("ｎｃ２０２５０００１２３", "NC2025000123"),   # full-width, lower case
    ("nc-2025-000123", "NC2025000123"),
    (" NC 2025 0001 23 ", "NC2025000123"),
    ("ＮＣ－２０２５　０００１２３", "NC2025000123"),  # full-width dash and space
])
def test_application_numbers_are_normalised(typed, expected):
    assert normalize_application_no(typed) == expected


@pytest.mark.parametrize("typed, expected", [
    ("1234", "1234"), ("123x", "123X"), ("１２３Ｘ", "123X"), ("12 34", "1234"),
    ("12345", ""), ("12X4", ""), ("abcd", ""), ("", ""),
])
def test_id_suffix_is_three_digits_and_a_digit_or_x(typed, expected):
    assert normalize_id_last4(typed) == expected


def test_status_accepts_code_or_chinese_label():
    assert normalize_status("need_more") == "need_more"
    assert normalize_status("需补充材料") == "need_more"
    assert normalize_status("APPROVED") == "approved"
    assert normalize_status("pending") is None


def test_excel_style_dates_parse():
    assert parse_datetime("2025/3/1 9:05").hour == 9
    assert parse_datetime("2025-03-01T09:05:00+08:00").minute == 5
    assert parse_datetime("2025-13-01") is None


@pytest.mark.parametrize("name, masked", [
    ("张三", "张*"), ("李小明", "李*明"), ("欧阳明华", "欧阳*华"), ("欧阳华", "欧阳*"),
])
def test_names_are_masked(name, masked):
    assert mask_name(name) == masked


def test_numbers_are_masked_for_logs():
    assert mask_application_no("NC2025000123") == "NC********23"
    assert "2025000123" not in mask_text("lookup NC2025000123 failed")


def test_agent_token_names_the_agent_and_cannot_be_forged():
    token = issue_agent_token("王坐席", "s3cret", ttl_seconds=60)
    assert verify_agent_token(token, "s3cret") == "王坐席"
    assert verify_agent_token(token, "other-secret") is None
    head, agent, expiry, signature = token.split(".")
    forged = ".".join([head, agent, str(int(expiry) + 3600), signature])
    assert verify_agent_token(forged, "s3cret") is None
    assert verify_agent_token(token, "s3cret", now=time.time() + 120) is None  # expired


def test_dev_secrets_are_generated_once_and_environment_wins(tmp_path):
    path = tmp_path / "secrets.env"
    first = ensure_dev_secrets(path, environ={})
    assert set(first) == set(SECRET_NAMES) and all(len(v) >= 32 for v in first.values())
    assert ensure_dev_secrets(path, environ={}) == first  # reused: stored hashes stay valid
    overridden = ensure_dev_secrets(path, environ={"PROGRESS_API_KEY": "from-env"})
    assert overridden["PROGRESS_API_KEY"] == "from-env"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _form_tracker(text, requested):
    from rasa_sdk import Tracker

    return Tracker("u1", {"requested_slot": requested, "lookup_attempts": 0},
                   {"text": text, "intent": {"name": "inform_application"}, "entities": []},
                   [], False, None, {"name": "progress_form"}, "progress_form")


@pytest.mark.parametrize("typed", ["511302198001011234", "5113 0219 8001 0112 34", "身份证 511302-19800101-1234"])
def test_a_full_id_typed_for_the_suffix_gives_its_last_4_and_is_not_kept(typed):
    import asyncio

    from actions.progress import ValidateProgressForm

    form = ValidateProgressForm()
    slots = asyncio.run(form.extract_id_last4(None, _form_tracker(typed, "id_last4"), {}))
    assert slots == {"id_last4": "1234"}
    slots = asyncio.run(form.extract_application_no(None, _form_tracker(typed, "application_no"), {}))
    assert "511302" not in slots["application_no"] and "1234" not in slots["application_no"]


@pytest.mark.parametrize("typed", ["11010519491231002X", "110105 19491231 002X", "110105—19491231—002X",
                                   "110105194912310021", "130503670401001", "13812345678", "1234",
                                   "身份证后四位是123X"])
def test_a_personal_number_is_never_taken_for_an_application_number(typed):
    """An ID number (valid check character, any separators), a 15-digit ID, a mobile number
    or an ID suffix typed when the number is asked for is not kept and not looked up."""
    import asyncio

    from actions.progress import NOT_A_NUMBER, ValidateProgressForm

    form = ValidateProgressForm()
    slots = asyncio.run(form.extract_application_no(None, _form_tracker(typed, "application_no"), {}))
    assert slots == {"application_no": NOT_A_NUMBER}


@pytest.mark.parametrize("typed,number", [("编号是 2025-0001-99", "2025000199"), ("nc２０２５ ０００１０４", "NC2025000104"),
                                          ("NC110105194912310021", "NC110105194912310021"), ("12345", "12345")])
def test_what_plausibly_is_a_number_is_taken(typed, number):
    """The real format is unknown: letters and digits go to the service, unless the digits
    have the shape of an ID number, a mobile number or an ID suffix (core.privacy)."""
    import asyncio

    from actions.progress import ValidateProgressForm

    form = ValidateProgressForm()
    slots = asyncio.run(form.extract_application_no(None, _form_tracker(typed, "application_no"), {}))
    assert slots == {"application_no": number}


def test_an_application_number_with_18_digits_is_not_taken_for_an_id_number():
    from core.privacy import mask_id_card_numbers

    assert mask_id_card_numbers("帮我查NC202501010000001234的进度") == "帮我查NC202501010000001234的进度"
    assert mask_id_card_numbers("身份证511302198001011234") == "身份证**************1234"


def test_an_id_number_in_a_note_is_kept_as_its_last_4_only():
    """The agency's free text is shown to the applicant and kept in the history."""
    raw = {"application_no": "NC2025000103", "status": "accepted",
           "status_updated_at": "2025-03-01 14:30", "note": "请本人 110101 19900307 1234 来窗口"}
    record, errors, warnings = check_fields(raw, require_identity=False)
    assert errors == [] and record is not None
    assert "19900307" not in record.note and "1234" in record.note and "来窗口" in record.note
    assert any("身份证号" in warning for warning in warnings)
    plain = dict(raw, note="请补充诊断证明")
    record, _, warnings = check_fields(plain, require_identity=False)
    assert record.note == "请补充诊断证明" and warnings == []
