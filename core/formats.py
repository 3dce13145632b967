"""Normalising and parsing what people and the agency's export write.

No web framework and no database here: the actions, the importer and the service
all use these functions, so a number means the same thing everywhere.
"""
import datetime as dt
import re
from typing import Optional

from core.privacy import is_personal_number
from core.textnorm import to_halfwidth

# code -> Chinese label, in the order an application usually moves through them.
STATUS_LABELS = {
    "submitted": "已提交",
    "accepted": "已受理",
    "expert_review": "专家审核中",
    "need_more": "需补充材料",
    "approved": "审核通过",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
_LABEL_TO_CODE = {label: code for code, label in STATUS_LABELS.items()}

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

# What any number must look like for the service to bother looking it up. The real
# format is not known, so nobody applies a stricter one: the bot and the console send
# anything plausible (is_plausible_application_no) and the service decides.
SANE_APPLICATION_NO = re.compile(r"^[A-Z0-9]{4,64}$")


def is_plausible_application_no(number: str) -> bool:
    """A normalised number that could be an application number: 4-64 letters and digits,
    at least one of them a digit, and not a number that identifies a person (an ID number,
    a mobile number, an ID suffix: core.privacy.is_personal_number), which is never sent."""
    return (bool(SANE_APPLICATION_NO.match(number or "")) and any(ch.isdigit() for ch in number)
            and not is_personal_number(number))
ID_LAST4 = re.compile(r"^[0-9]{3}[0-9X]$")
_SEPARATORS = re.compile(r"[\s\-_‐‑‒–—―−－]+")


def normalize_application_no(text: Optional[str]) -> str:
    """'ｎｃ-2025 0001２３' -> 'NC2025000123': half-width, no spaces or dashes, upper case."""
    if not text:
        return ""
    return _SEPARATORS.sub("", to_halfwidth(str(text))).strip().upper()


# A run of letters, digits and separators that contains a digit: what someone types as an
# application number ("NC-2025 0001 04", "编号是2025000104"). The real format is not known.
_MASKED_ID = re.compile(r"\*+[0-9A-Za-z]*")
_NUMBER_RUN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|[\s\-_‐‑‒–—―−－](?=[A-Za-z0-9]))*")


def find_application_no(text: Optional[str]) -> str:
    """The longest letters-and-digits run (with a digit) in free text, normalised; ''
    when there is none that could be a number (fewer than 4 characters)."""
    # a masked ID number ("**************1234") is not a number someone typed on purpose
    text = _MASKED_ID.sub(" ", to_halfwidth(str(text or "")))
    candidates = [normalize_application_no(match.group(0)) for match in _NUMBER_RUN.finditer(text)]
    candidates = [c for c in candidates if is_plausible_application_no(c)]
    return max(candidates, key=len) if candidates else ""


def normalize_id_last4(text: Optional[str]) -> str:
    """'１２３ｘ' -> '123X'. Returns '' unless the result is 3 digits + a digit or X."""
    if text is None:
        return ""
    value = _SEPARATORS.sub("", to_halfwidth(str(text))).strip().upper()
    return value if ID_LAST4.match(value) else ""


def normalize_status(text: Optional[str]) -> Optional[str]:
    """Status code from a code ('need_more') or its Chinese label ('需补充材料')."""
    value = (text or "").strip()
    if value.lower() in STATUS_LABELS:
        return value.lower()
    return _LABEL_TO_CODE.get(value)


_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d",
)
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")


def parse_datetime(text: Optional[str]) -> Optional[dt.datetime]:
    """China local time, naive. Accepts Excel's 2025/3/1 9:05 as well as ISO forms."""
    value = to_halfwidth((text or "").strip())
    if not value:
        return None
    if value.endswith("+08:00"):
        value = value[:-6]
    for fmt in _DATETIME_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def parse_date(text: Optional[str]) -> Optional[dt.date]:
    value = to_halfwidth((text or "").strip())
    if not value:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def now_china() -> dt.datetime:
    """Current China time, naive, to the second (how the agency's times are stored)."""
    return dt.datetime.now(CHINA_TZ).replace(tzinfo=None, microsecond=0)
