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
import re
import sys
import unicodedata
from typing import Dict, List, Mapping, Optional, Tuple

from core.devsecrets import ensure_dev_secrets
from core.formats import (
    SANE_APPLICATION_NO, STATUS_LABELS, normalize_application_no, normalize_id_last4,
    normalize_status, parse_date, parse_datetime,
)
from core.privacy import mask_id_card_numbers
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


# Characters that never occur in the agency's Chinese export but do when a Big5 (or other
# non-GBK) file is read as GBK: kana, Cyrillic, bopomofo, box drawing, vertical forms,
# private use. A real GBK file may hold a few characters outside GB2312 (rare name
# characters such as 玥 or 堃); a misread one is full of them.
_NOT_IN_OUR_DATA = re.compile("[\u0400-\u04ff\u2500-\u257f\u3040-\u30ff\u3100-\u312f"
                              "\ufe30-\ufe4f\ue000-\uf8ff]")
_CJK = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
_RARE_SHARE = 0.10


def _looks_misread(text: str) -> str:
    """A few of the characters that make GBK-decoded text look misread, or ''."""
    odd = _NOT_IN_OUR_DATA.findall(text)
    cjk = _CJK.findall(text)
    rare = []
    for char in cjk:
        try:
            char.encode("gb2312")
        except UnicodeEncodeError:
            rare.append(char)
    if odd or (len(rare) >= 3 and len(rare) >= _RARE_SHARE * len(cjk)):
        return "".join((odd + rare)[:6])
    return ""


def decode(data: bytes) -> Tuple[str, str]:
    """UTF-8 (with or without BOM) or GBK, as Excel in China saves it; nothing else.
    Returns (text, encoding); the encoding is named in the import's output."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(["文件是 UTF-16 编码（Excel 的“Unicode 文本”）：请另存为“CSV UTF-8（逗号分隔）”或“CSV（逗号分隔）”"])
    if b"\x00" in data:
        raise ImportRejected(["文件里有空字节（NUL），不是 CSV 文本文件：请从 Excel 另存为 CSV"])
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            raise ImportRejected([f"文件以 UTF-8 标记开头，但第{error.start + 4}个字节起不是 UTF-8：文件已损坏或混用了编码"])
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gbk")  # strict: no GB18030 extension, no private-use mapping
    except UnicodeDecodeError as error:
        raise ImportRejected([f"文件既不是 UTF-8 也不是 GBK（第{error.start + 1}个字节起无法解码），"
                              "可能是 Big5（繁体）等其他编码：请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新导入"])
    misread = _looks_misread(text)
    if misread:
        raise ImportRejected([f"文件按 GBK 读出来像乱码（如“{misread}”），可能是 Big5（繁体）等其他编码："
                              "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新导入"])
    return text, "gbk"


def _invisible_character(field: str, value: str) -> str:
    """The first control, format (bidi, zero-width) or private-use character, as U+XXXX, or ''.
    Line breaks and tabs are allowed in the note only (a cell with several lines)."""
    for char in value:
        if field == "note" and char in "\t\r\n":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return ""


def check_fields(raw: Mapping[str, Optional[str]], require_identity: bool
                 ) -> Tuple[Optional[Record], List[str], List[str]]:
    """Validate one record (CSV row or pushed JSON). Returns (record, errors, warnings)."""
    errors: List[str] = []
    warnings: List[str] = []

    def text(name: str) -> str:
        value = raw.get(name)
        return "" if value is None else str(value).strip()

    for field in COLUMNS:
        value = raw.get(field)
        invisible = _invisible_character(field, value) if isinstance(value, str) else ""
        if invisible:
            errors.append(f"{field} 含有控制字符或不可见字符 {invisible}（换行、双向文本控制符、零宽字符等都不允许），请删除后重试")

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
    # free text is shown to the applicant and kept in the history: never a full ID number
    free = {}
    for field in ("applicant_name", "disease", "channel", "note"):
        value = text(field) if raw.get(field) is not None else None
        if value is not None and mask_id_card_numbers(value) != value:
            warnings.append(f"{field} 里有身份证号，已只保留后4位")
            value = mask_id_card_numbers(value)
        free[field] = value
    record = Record(
        application_no=number, status=status, status_updated_at=updated, id_last4=id_last4,
        applicant_name=free["applicant_name"] or None,
        disease=free["disease"], channel=free["channel"],
        submitted_at=submitted,
        note=free["note"],
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
