"""Import the agency's CSV export: `make import-progress FILE=path.csv`.

The whole file is checked first; one invalid row rejects the file and nothing is
written (errors name the line). Valid files are written in one transaction, upserting
by application number; a changed status appends to the history.
"""
import argparse
import csv
import dataclasses
import io
import os
import pathlib
import sys
from typing import Dict, List, Mapping, Optional, Tuple

from core.devsecrets import ensure_dev_secrets
from core.formats import (
    SANE_APPLICATION_NO, STATUS_LABELS, normalize_application_no, normalize_id_last4,
    normalize_status, parse_date, parse_datetime,
)
from progress_service import db
from progress_service import settings as config
from progress_service.db import make_engine
from progress_service.store import ProgressStore, Record

COLUMNS = [
    "application_no", "id_last4", "applicant_name", "disease", "channel", "submitted_at",
    "status", "status_updated_at", "note", "valid_from", "valid_until",
]


# Longest value each text column holds (progress_service/db.py); longer values are
# rejected here, so PostgreSQL never sees them (it would raise, not truncate).
MAX_LENGTHS = {
    "application_no": db.applications.c.application_no.type.length,
    "applicant_name": db.applications.c.applicant_name.type.length,
    "disease": db.applications.c.disease.type.length,
    "channel": db.applications.c.channel.type.length,
}


class ImportRejected(Exception):
    def __init__(self, errors: List[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclasses.dataclass
class ParsedFile:
    records: List[Record]
    encoding: str
    warnings: List[str]


def decode(data: bytes) -> Tuple[str, str]:
    """UTF-8 (with or without BOM) or GBK, as Excel in China saves it."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK: every GBK file decodes the same way.
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError:
        raise ImportRejected(["文件编码无法识别：请保存为 UTF-8 或 GBK（Excel 的“CSV”）格式"])


def check_fields(raw: Mapping[str, Optional[str]], require_identity: bool
                 ) -> Tuple[Optional[Record], List[str], List[str]]:
    """Validate one record (CSV row or pushed JSON). Returns (record, errors, warnings)."""
    errors: List[str] = []
    warnings: List[str] = []

    def text(name: str) -> str:
        value = raw.get(name)
        return "" if value is None else str(value).strip()

    for field, limit in MAX_LENGTHS.items():
        if len(text(field)) > limit:
            errors.append(f"{field} 太长：最多{limit}个字符，实际{len(text(field))}个")

    number = normalize_application_no(text("application_no"))
    if len(number) > MAX_LENGTHS["application_no"]:
        pass  # already reported above
    elif not SANE_APPLICATION_NO.match(number):
        errors.append("application_no 为空或含有字母数字以外的字符")

    id_last4 = None
    if text("id_last4") or require_identity:
        id_last4 = normalize_id_last4(text("id_last4"))
        if not id_last4:
            errors.append("id_last4 应为身份证号最后4位（3位数字加1位数字或X）")

    name = text("applicant_name") or None
    if require_identity and not name:
        errors.append("applicant_name 为空")

    status = normalize_status(text("status"))
    if status is None:
        errors.append(f"未知状态 “{text('status')}”，可用：" + "、".join(STATUS_LABELS))

    updated = parse_datetime(text("status_updated_at"))
    if updated is None:
        errors.append("status_updated_at 日期时间格式不对（如 2025-03-01 14:30）")

    submitted = None
    if text("submitted_at") or require_identity:
        submitted = parse_datetime(text("submitted_at"))
        if submitted is None:
            errors.append("submitted_at 日期时间格式不对（如 2025-03-01 09:00）")

    dates = {}
    for field in ("valid_from", "valid_until"):
        dates[field] = parse_date(text(field))
        if text(field) and dates[field] is None:
            errors.append(f"{field} 日期格式不对（如 2025-04-01）")
    if dates["valid_from"] and dates["valid_until"] and dates["valid_from"] > dates["valid_until"]:
        errors.append("valid_from 晚于 valid_until")
    if submitted and updated and updated < submitted:
        errors.append("status_updated_at 早于 submitted_at")

    if errors:
        return None, errors, warnings
    record = Record(
        application_no=number, status=status, status_updated_at=updated, id_last4=id_last4,
        applicant_name=name,
        disease=text("disease") if "disease" in raw and raw.get("disease") is not None else None,
        channel=text("channel") if "channel" in raw and raw.get("channel") is not None else None,
        submitted_at=submitted,
        note=text("note") if "note" in raw and raw.get("note") is not None else None,
        valid_from=dates["valid_from"], valid_until=dates["valid_until"],
    )
    return record, [], warnings


def parse_csv(data: bytes) -> ParsedFile:
    """Every row checked; raises ImportRejected listing each bad line."""
    content, encoding = decode(data)
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        raise ImportRejected(["文件是空的"])
    if header != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        detail = []
        if missing:
            detail.append("缺少列：" + ", ".join(missing))
        if extra:
            detail.append("多余列：" + ", ".join(extra))
        if not detail:
            detail.append("列的顺序不对")
        raise ImportRejected(["第1行（表头）应为 " + ",".join(COLUMNS) + "；" + "；".join(detail)])

    errors: List[str] = []
    warnings: List[str] = []
    records: List[Record] = []
    seen: Dict[str, int] = {}
    while True:
        start_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append(f"第{start_line}行：CSV 格式错误（{error}）")
            break
        if not any(cell.strip() for cell in row):
            continue  # blank lines, e.g. at the end of an Excel export
        if len(row) != len(COLUMNS):
            errors.append(f"第{start_line}行：应有{len(COLUMNS)}列，实际{len(row)}列")
            continue
        record, row_errors, row_warnings = check_fields(
            dict(zip(COLUMNS, row)), require_identity=True)
        errors += [f"第{start_line}行：{message}" for message in row_errors]
        warnings += [f"第{start_line}行：{message}" for message in row_warnings]
        if record:
            if record.application_no in seen:
                errors.append(f"第{start_line}行：申请编号与第{seen[record.application_no]}行重复")
            else:
                seen[record.application_no] = start_line
                records.append(record)
    if errors:
        raise ImportRejected(errors)
    if not records:
        raise ImportRejected(["文件里没有数据行"])
    return ParsedFile(records, encoding, warnings)


def import_file(path: str, store) -> Dict[str, object]:
    with open(path, "rb") as handle:
        parsed = parse_csv(handle.read())
    counts = store.upsert_all(parsed.records, source="import")
    return {"rows": len(parsed.records), "encoding": parsed.encoding,
            "warnings": parsed.warnings, **counts}


def is_default_dev_database(url: str) -> bool:
    """True only for a SQLite file inside the project's .state/ folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return False
    path = url[len(prefix):].split("?", 1)[0]
    if not path or path == ":memory:":
        return False
    try:
        resolved = pathlib.Path(path).resolve()
    except (OSError, ValueError):
        return False
    state = config.STATE_DIR.resolve()
    return resolved == state or state in resolved.parents


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Import the agency's progress CSV export.")
    parser.add_argument("file", help="CSV file (UTF-8 or GBK)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.file):
        print(f"找不到文件：{args.file}", file=sys.stderr)
        return 2
    key = config.ID_HASH_KEY
    if not key:
        if not is_default_dev_database(config.DATABASE_URL):
            # A generated key would make every imported suffix unusable in production.
            print("缺少环境变量 PROGRESS_ID_HASH_KEY：PROGRESS_DATABASE_URL 不是默认的开发数据库"
                  "（.state/ 下的 SQLite），请设置与进度服务相同的 PROGRESS_ID_HASH_KEY 后再导入",
                  file=sys.stderr)
            return 2
        key = ensure_dev_secrets(config.DEV_SECRETS_FILE)["PROGRESS_ID_HASH_KEY"]
    store = ProgressStore(make_engine(config.DATABASE_URL), key)
    try:
        result = import_file(args.file, store)
    except ImportRejected as rejected:
        print("文件未导入（没有写入任何数据），请改正后重新导入：", file=sys.stderr)
        for message in rejected.errors:
            print("  " + message, file=sys.stderr)
        return 1
    for message in result["warnings"]:
        print("提醒：" + message)
    print(f"已导入 {result['rows']} 行（编码 {result['encoding']}）：新增 {result['created']}，"
          f"更新 {result['updated']}，未变 {result['unchanged']}，其中状态变化 {result['status_changed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
