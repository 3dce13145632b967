"""The CSV import: encodings, validation with line numbers, all-or-nothing, history."""
import pytest
import sqlalchemy as sa

from progress_helpers import CSV_HEADER, EXAMPLE_CSV, run_import, write_csv
from progress_service import db
from progress_service.db import make_engine
from progress_service.importer import ImportRejected, import_file, parse_csv
from progress_service.store import ProgressStore

KEY = "test-id-hash-key"
ROW = "NC2025000201,123X,张三,高血压,四川医保APP,2025-03-01 09:00,{status},{updated},{note},,"


def row(status="accepted", updated="2025-03-02 10:00", note=""):
    return ROW.format(status=status, updated=updated, note=note)


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    yield ProgressStore(engine, KEY)
    engine.dispose()


def statuses(store, number):
    with store.engine.connect() as conn:
        current = conn.execute(sa.select(db.applications.c.status).where(
            db.applications.c.application_no == number)).scalar()
        history = conn.execute(sa.select(db.status_history.c.status).where(
            db.status_history.c.application_no == number).order_by(db.status_history.c.id)).scalars().all()
    return current, history


def test_example_export_imports_all_seven_statuses(store):
    result = import_file(str(EXAMPLE_CSV), store)
    assert result["rows"] == 7 and result["created"] == 7
    with store.engine.connect() as conn:
        found = set(conn.execute(sa.select(db.applications.c.status)).scalars())
    assert found == {"submitted", "accepted", "expert_review", "need_more", "approved",
                     "rejected", "withdrawn"}


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_gbk_and_utf8_files_give_the_same_chinese_text(store, tmp_path, encoding):
    path = write_csv(tmp_path / "export.csv",
                     [row(status="需补充材料", note="请补充血压记录")], encoding=encoding)
    import_file(str(path), store)
    lookup = store.lookup_public("NC2025000201", "123X", "s")
    assert lookup.kind == "found"
    assert lookup.application["note"] == "请补充血压记录"
    assert lookup.application["status"] == "need_more"
    assert lookup.application["applicant_name_masked"] == "张*"


def test_one_bad_row_rejects_the_whole_file_and_keeps_existing_data(store, tmp_path):
    good = write_csv(tmp_path / "good.csv", [row(status="accepted")])
    import_file(str(good), store)
    bad = write_csv(tmp_path / "bad.csv", [
        row(status="approved"),  # line 2: fine, but must not be applied
        "NC2025000202,4567,李四,糖尿病,小程序,2025-03-01 09:00,pending,2025-03-02 10:00,,,",
        "NC2025000203,45678,王五,糖尿病,小程序,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
        "NC2025000204,4567,赵六,糖尿病,小程序,2025-02-30 09:00,accepted,2025-03-02 10:00,,,",
    ])
    with pytest.raises(ImportRejected) as rejected:
        import_file(str(bad), store)
    text = "\n".join(rejected.value.errors)
    assert "第3行" in text and "pending" in text
    assert "第4行" in text and "id_last4" in text
    assert "第5行" in text and "submitted_at" in text
    assert "第2行" not in text
    assert statuses(store, "NC2025000201") == ("accepted", ["submitted", "accepted"])
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.applications)).scalar() == 1


def test_reimport_upserts_and_a_status_change_appends_to_history(store, tmp_path):
    import_file(str(write_csv(tmp_path / "a.csv", [row(status="accepted")])), store)
    result = import_file(str(write_csv(tmp_path / "b.csv", [row(status="accepted")])), store)
    assert result["unchanged"] == 1
    result = import_file(str(write_csv(tmp_path / "c.csv", [
        row(status="expert_review", updated="2025-03-05 09:00")])), store)
    assert result["updated"] == 1 and result["status_changed"] == 1
    assert statuses(store, "NC2025000201") == ("expert_review", ["submitted", "accepted", "expert_review"])


def test_id_suffix_is_stored_only_as_a_keyed_hash(store, tmp_path):
    import_file(str(write_csv(tmp_path / "a.csv", [row()])), store)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(db.applications)).mappings().one()
    assert "123X" not in " ".join(str(value) for value in stored.values())
    assert ProgressStore(store.engine, "another-key").lookup_public(
        "NC2025000201", "123X", "s").kind == "no_match"


def test_wrong_header_and_duplicate_numbers_are_reported():
    with pytest.raises(ImportRejected) as rejected:
        parse_csv("application_no,status\nNC1,accepted\n".encode())
    assert "第1行" in rejected.value.errors[0] and "缺少列" in rejected.value.errors[0]
    data = "\n".join([
        "application_no,id_last4,applicant_name,disease,channel,submitted_at,status,status_updated_at,note,valid_from,valid_until",
        row(), row()]).encode("gbk")
    with pytest.raises(ImportRejected) as rejected:
        parse_csv(data)
    assert any("第3行" in e and "第2行重复" in e for e in rejected.value.errors)


def test_make_import_progress_reports_line_numbers_and_exit_code(tmp_path, database_url):
    secrets_env = {"PROGRESS_ID_HASH_KEY": KEY}
    bad = write_csv(tmp_path / "bad.csv", [
        row(), "NC2025000209,4567,李四,糖尿病,小程序,2025-03-01 09:00,accepted,昨天,,,"],
        encoding="gbk")
    done = run_import(bad, database_url, secrets_env, use_make=True)
    assert done.returncode != 0
    assert "第3行" in done.stderr and "status_updated_at" in done.stderr and "没有写入任何数据" in done.stderr
    assert "第2行" not in done.stderr
    engine = make_engine(database_url)
    with engine.connect() as conn:  # the good row on line 2 was not imported either
        assert conn.execute(sa.select(sa.func.count()).select_from(db.applications)).scalar() == 0
    engine.dispose()
    done = run_import(EXAMPLE_CSV, database_url, secrets_env, use_make=True)
    assert done.returncode == 0, done.stderr
    assert "已导入 7 行" in done.stdout


def test_over_long_values_are_rejected_with_line_numbers_and_nothing_written(tmp_path, database_url):
    # db.py limits: applicant_name 100, disease 200, channel 50, application_no 64.
    too_long = [
        row(),
        f"NC2025000210,4567,{'张' * 101},糖尿病,小程序,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
        f"NC2025000211,4567,李四,{'病' * 201},小程序,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
        f"NC2025000212,4567,李四,糖尿病,{'渠' * 51},2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
        f"NC{'1' * 63},4567,李四,糖尿病,小程序,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
    ]
    done = run_import(write_csv(tmp_path / "long.csv", too_long), database_url, {"PROGRESS_ID_HASH_KEY": KEY})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    for line, field, limit in ((3, "applicant_name", 100), (4, "disease", 200), (5, "channel", 50),
                               (6, "application_no", 64)):
        assert any(f"第{line}行" in e and field in e and f"最多{limit}个字符" in e
                   for e in done.stderr.splitlines()), done.stderr
    assert "第2行" not in done.stderr
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.applications)).scalar() == 0
    engine.dispose()
    # exactly at the limits is fine, also on PostgreSQL
    at_limit = [f"NC{'1' * 62},4567,{'张' * 100},{'病' * 200},{'渠' * 50},2025-03-01 09:00,accepted,2025-03-02 10:00,,,"]
    done = run_import(write_csv(tmp_path / "limit.csv", at_limit), database_url, {"PROGRESS_ID_HASH_KEY": KEY})
    assert done.returncode == 0, done.stderr


def test_missing_hash_key_with_a_non_default_database_exits_2_and_writes_nothing(tmp_path, database_url):
    env = {"PROGRESS_ID_HASH_KEY": "", "PROGRESS_DEV_SECRETS_FILE": str(tmp_path / "secrets.env")}
    done = run_import(EXAMPLE_CSV, database_url, env)
    assert done.returncode == 2
    assert "PROGRESS_ID_HASH_KEY" in done.stderr
    assert not (tmp_path / "secrets.env").exists()  # no development key was generated
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.applications)).scalar() == 0
    engine.dispose()


def test_development_key_is_used_only_for_the_default_sqlite_under_state():
    from core import defaults as config
    from progress_service.importer import is_default_dev_database

    assert is_default_dev_database(f"sqlite:///{config.ROOT / '.state' / 'progress.db'}")
    assert is_default_dev_database(f"sqlite:///{config.ROOT / '.state' / 'sub' / 'x.db'}")
    assert not is_default_dev_database("sqlite:////var/lib/progress/progress.db")
    assert not is_default_dev_database(f"sqlite:///{config.ROOT / '.state' / '..' / 'progress.db'}")
    assert not is_default_dev_database("sqlite://")
    assert not is_default_dev_database("postgresql://postgres@127.0.0.1:5432/prod")


def test_history_is_read_only_after_the_suffix_matched(store, monkeypatch):
    import_file(str(EXAMPLE_CSV), store)
    reads = []
    original = store._load_history
    monkeypatch.setattr(store, "_load_history", lambda conn, number: reads.append(number) or original(conn, number))
    assert store.lookup_public("NC2025000104", "0000", "s").kind == "no_match"
    assert reads == []
    found = store.lookup_public("NC2025000104", "1357", "s")
    assert found.kind == "found" and reads == ["NC2025000104"]
    assert [h["status"] for h in found.application["history"]] == ["submitted", "need_more"]


# Big5 ("繁体") as some offices save it. These rows are valid GBK byte sequences, so a
# GBK reader decodes them without error, into garbage: "高血壓" reads "蔼﹀溃", "糖尿病" "縸Э痜".
BIG5_READ_AS_GBK = [
    "NC2025000201,123X,ABC,高血壓,APP,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
    "NC2025000202,4567,DEF,糖尿病,APP,2025-03-01 09:00,accepted,2025-03-02 10:00,,,",
]


def test_a_big5_file_is_rejected_naming_the_encodings_and_nothing_is_written(tmp_path, database_url):
    secrets_env = {"PROGRESS_ID_HASH_KEY": KEY}
    garbage = write_csv(tmp_path / "big5.csv", BIG5_READ_AS_GBK, encoding="big5")
    garbage.read_bytes().decode("gbk")  # the trap: it does decode as GBK
    undecodable = write_csv(tmp_path / "big5-names.csv", [
        "NC2025000203,123X,張三,高血壓,四川醫保APP,2025-03-01 09:00,accepted,2025-03-02 10:00,,,"],
        encoding="big5")
    for path, says in ((garbage, "像乱码"), (undecodable, "既不是 UTF-8 也不是 GBK")):
        done = run_import(path, database_url, secrets_env)
        assert done.returncode == 1
        assert says in done.stderr and "Big5" in done.stderr and "UTF-8" in done.stderr
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.applications)).scalar() == 0
    engine.dispose()
    # the detected encoding is named when a file is imported
    done = run_import(write_csv(tmp_path / "gbk.csv", [row()], encoding="gbk"), database_url, secrets_env)
    assert done.returncode == 0 and "编码 gbk" in done.stdout


def test_a_gbk_file_with_a_few_rare_name_characters_is_still_gbk():
    data = "\r\n".join([CSV_HEADER, ROW.replace("张三", "王玥").format(status="accepted", updated="2025-03-02 10:00", note=""),
                        "NC2025000202,4567,李堃,高血压,APP,2025-03-01 09:00,accepted,2025-03-02 10:00,,,"]).encode("gbk")
    parsed = parse_csv(data)
    assert parsed.encoding == "gbk" and [r.applicant_name for r in parsed.records] == ["王玥", "李堃"]


@pytest.mark.parametrize("data, reason", [
    ("x".encode("utf-16"), "UTF-16"),
    (b"application_no\x00,status\n", "NUL"),
])
def test_files_that_are_not_csv_text_are_rejected(data, reason):
    with pytest.raises(ImportRejected) as rejected:
        parse_csv(data)
    assert reason in rejected.value.errors[0]


@pytest.mark.parametrize("field, value, code_point", [
    ("applicant_name", "王\u202e芳", "U+202E"),     # right-to-left override
    ("disease", "高血压\u200b", "U+200B"),          # zero-width space
    ("note", "请补充\u2066材料\u2069", "U+2066"),    # bidi isolate
    ("channel", "APP\x07", "U+0007"),               # bell
    ("note", "a\u2028b", "U+2028"),                 # line separator
])
def test_control_and_bidi_characters_are_rejected_with_line_and_code_point(field, value, code_point):
    fields = dict(zip(CSV_HEADER.split(","), row().split(",")))
    fields[field] = value
    with pytest.raises(ImportRejected) as rejected:
        parse_csv("\r\n".join([CSV_HEADER, ",".join(fields.values())]).encode("utf-8"))
    [error] = rejected.value.errors
    assert error.startswith("第2行") and field in error and code_point in error


def test_a_note_may_have_several_lines():
    data = "\r\n".join([CSV_HEADER, row(status="need_more", note='"第一行\n第二行"')]).encode("utf-8")
    assert parse_csv(data).records[0].note == "第一行\n第二行"
