"""The progress service over HTTP, as the bot, the agency and the hotline use it."""
import time

import pytest
import sqlalchemy as sa

from progress_helpers import EXAMPLE_CSV, run_import
from progress_service import db
from core.agent_tokens import issue_agent_token

NUMBER = "NC2025000104"  # need_more, suffix 1357, 王芳
PATH = f"/api/v1/applications/{NUMBER}"


@pytest.fixture
def service(database_url, start_service, service_secrets):
    done = run_import(EXAMPLE_CSV, database_url, service_secrets)
    assert done.returncode == 0, done.stderr
    return start_service(database_url, PROGRESS_LOCKOUT_WINDOW_SECONDS=4)


def public(service, suffix, sender="sender-a"):
    return {"X-API-Key": service.secrets["PROGRESS_API_KEY"], "X-Id-Last4": suffix, "X-Sender": sender}


def test_lookup_needs_the_api_key(service):
    status, body, _ = service.request("GET", PATH, {"X-Id-Last4": "1357"})
    assert status == 401
    status, _, _ = service.request("GET", PATH, {"X-Id-Last4": "1357", "X-API-Key": "wrong"})
    assert status == 401


def test_public_lookup_returns_status_history_note_and_masked_name(service):
    status, body, _ = service.request("GET", "/api/v1/applications/nc-2025-000104", public(service, "1357"))
    assert status == 200
    assert body["status"] == "need_more" and body["status_label"] == "需补充材料"
    assert "诊断证明书" in body["note"]
    assert body["applicant_name_masked"] == "王*"
    assert "applicant_name" not in body
    assert [h["status"] for h in body["history"]] == ["submitted", "need_more"]
    assert body["status_updated_at"].startswith("2025-03-09T16:40")


def test_approved_lookup_has_validity_dates(service):
    status, body, _ = service.request("GET", "/api/v1/applications/NC2025000105", public(service, "8642"))
    assert status == 200 and (body["valid_from"], body["valid_until"]) == ("2025-03-05", "2026-03-04")


def test_wrong_suffix_and_unknown_number_get_the_same_answer(service):
    wrong = service.request("GET", PATH, public(service, "0000", "s1"))
    unknown = service.request("GET", "/api/v1/applications/NC2099999999", public(service, "1357", "s2"))
    assert wrong[0] == unknown[0] == 404
    assert wrong[1] == unknown[1]


def test_five_failures_for_one_number_from_one_identity_lock_that_pair_until_the_window_passes(service):
    for _ in range(5):
        status, _, _ = service.request("GET", PATH, public(service, "0000", "guesser"))
        assert status == 404
    # even the right suffix is refused for this identity now …
    status, body, headers = service.request("GET", PATH, public(service, "1357", "guesser"))
    assert status == 429 and body["error"] == "locked"
    assert 1 <= body["retry_after"] <= 5 and headers["Retry-After"] == str(body["retry_after"])
    retry_after = body["retry_after"]
    # … but not for the owner: a stranger's failures never lock the number for everyone
    status, body, _ = service.request("GET", PATH, public(service, "1357", "owner"))
    assert status == 200 and body["status"] == "need_more"
    time.sleep(retry_after + 0.2)
    status, body, _ = service.request("GET", PATH, public(service, "1357", "guesser"))
    assert status == 200 and body["status"] == "need_more"


def test_failures_from_one_identity_over_many_numbers_lock_that_identity_only(service):
    for number in range(15):  # PROGRESS_LOCKOUT_IDENTITY_MAX_FAILURES: 3 x 5
        status, _, _ = service.request(
            "GET", f"/api/v1/applications/NC20990000{number:02d}", public(service, "1111", "guesser"))
        assert status == 404
    status, _, _ = service.request("GET", PATH, public(service, "1357", "guesser"))
    assert status == 429
    status, _, _ = service.request("GET", PATH, public(service, "1357", "someone-else"))
    assert status == 200


def test_agent_lookup_skips_the_suffix_returns_full_history_and_is_audited(service, database_url):
    token = issue_agent_token("坐席李", service.secrets["PROGRESS_AGENT_SECRET"])
    headers = {"X-API-Key": service.secrets["PROGRESS_API_KEY"], "X-Agent-Token": token}
    status, body, _ = service.request("GET", PATH, headers)
    assert status == 200 and body["mode"] == "agent"
    assert body["applicant_name"] == "王芳"
    assert body["history"][-1]["note"].startswith("请补充")
    status, body, _ = service.request("GET", "/api/v1/applications/NC2099999999", headers)
    assert status == 404 and body["error"] == "not_found"
    status, _, _ = service.request("GET", PATH, {**headers, "X-Agent-Token": token + "0"})
    assert status == 401
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(db.agent_audit).order_by(db.agent_audit.c.id)).mappings().all()
    engine.dispose()
    assert [(r["agent"], r["outcome"], r["application_no_masked"]) for r in rows] == [
        ("坐席李", "found", "NC********04"), ("坐席李", "not_found", "NC********99")]
    assert all(r["at"] is not None for r in rows)


def test_agency_pushes_a_status_update_that_appends_to_history(service):
    path = f"{PATH}/status"
    update = {"status": "approved", "status_updated_at": "2025-03-20 09:00",
              "valid_from": "2025-03-20", "valid_until": "2026-03-19"}
    status, _, _ = service.request("POST", path, {"X-API-Key": service.secrets["PROGRESS_API_KEY"]}, update)
    assert status == 401  # the bot's read key cannot write
    agency = {"X-API-Key": service.secrets["PROGRESS_AGENCY_KEY"]}
    status, body, _ = service.request("POST", path, agency, {"status": "maybe"})
    assert status == 400 and "未知状态" in body["message"]
    status, body, _ = service.request("POST", path, agency, update)
    assert status == 200 and body == {"result": "updated", "status_changed": True}
    status, body, _ = service.request("GET", PATH, public(service, "1357"))
    assert body["status"] == "approved" and body["note"] == ""
    assert [h["status"] for h in body["history"]] == ["submitted", "need_more", "approved"]
    status, body, _ = service.request("POST", "/api/v1/applications/NC2025009999/status", agency,
                                      {"status": "submitted"})
    assert status == 404


def test_openapi_document_lists_every_route(service):
    status, body, _ = service.request("GET", "/openapi.json")
    assert status == 200 and body["openapi"].startswith("3.")
    assert set(body["paths"]) == {"/health", "/ready", "/openapi.json", "/api/v1/applications/{application_no}",
                                  "/api/v1/applications/{application_no}/status"}


def test_log_holds_no_numbers_names_or_suffixes(service):
    service.request("GET", PATH, public(service, "1357"))
    service.request("GET", PATH, public(service, "0000"))
    token = issue_agent_token("坐席李", service.secrets["PROGRESS_AGENT_SECRET"])
    service.request("GET", PATH, {"X-API-Key": service.secrets["PROGRESS_API_KEY"], "X-Agent-Token": token})
    log = service.log()
    assert "NC********04" in log  # requests are logged, masked
    for secret in (NUMBER, "2025000104", "王芳", "1357"):
        assert secret not in log


@pytest.mark.parametrize("field,limit", [("applicant_name", 100), ("disease", 200), ("channel", 50)])
def test_over_long_pushed_values_get_400_not_500(service, field, limit):
    agency = {"X-API-Key": service.secrets["PROGRESS_AGENCY_KEY"]}
    update = {"status": "accepted", "status_updated_at": "2025-03-20 09:00", field: "长" * (limit + 1)}
    status, body, _ = service.request("POST", f"{PATH}/status", agency, update)
    assert status == 400 and field in body["message"] and f"最多{limit}个字符" in body["message"]
    update[field] = "长" * limit
    status, body, _ = service.request("POST", f"{PATH}/status", agency, update)
    assert status == 200, body
