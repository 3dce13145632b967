"""Masking for logs and public replies, keyed hashes for stored secrets."""
import hashlib
import hmac
import re

# Two-character surnames, so 欧阳明华 becomes 欧阳*华 and not 欧**华.
_COMPOUND_SURNAMES = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "申屠",
)


def mask_name(name: str) -> str:
    """张三 -> 张*, 李小明 -> 李*明, 欧阳明华 -> 欧阳*华, 欧阳华 -> 欧阳*."""
    name = (name or "").strip()
    if not name:
        return ""
    surname = name[:2] if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    rest = name[len(surname):]
    if len(rest) <= 1:
        return surname + "*"
    return surname + "*" * (len(rest) - 1) + rest[-1]


def mask_application_no(number: str) -> str:
    """For logs: NC2025000123 -> NC********23."""
    number = number or ""
    if len(number) <= 4:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 4) + number[-2:]


_NUMBERISH = re.compile(r"[A-Za-z]{0,4}\d[\dA-Za-z\-]{3,}")


def mask_text(text: str) -> str:
    """Mask anything number-like in free text before it is logged."""
    return _NUMBERISH.sub(lambda m: mask_application_no(m.group(0)), text or "")


_ID_DIGIT = "[0-9０-９]"
_ID_SEP = r"[ \u3000\t\-]?"
# A full mainland ID-card number: 17 digits and a digit or X, possibly typed in groups
# with spaces or dashes, half- or full-width; not part of a longer digit run, and not
# the digits of an application number ("NC" + 18 digits is a valid number, not an ID).
_FULL_ID = re.compile(
    f"(?<![0-9０-９A-Za-zＡ-Ｚａ-ｚ])(?:{_ID_DIGIT}{_ID_SEP}){{17}}[0-9０-９XxＸｘ](?![0-9０-９A-Za-zＡ-Ｚａ-ｚ])"
)


def mask_id_card_numbers(text: str) -> str:
    """'我的身份证 51130219800101 1234' -> '我的身份证 **************1234': only the last 4 stay."""
    def keep_last4(match):
        characters = [c for c in match.group(0) if not c.isspace() and c != "-"]
        return "*" * (len(characters) - 4) + "".join(characters[-4:])

    return _FULL_ID.sub(keep_last4, text or "")


def is_id_number(value: str) -> bool:
    """The one rule for "is this digit run an ID number" (normalised: no separators, upper
    case), the same one the masking applies: 17 digits and a digit or X, or 15 digits (the
    old form). The check character is not required: a mistyped ID is still personal data,
    so such a run is masked and never taken for an application number."""
    value = (value or "").strip().upper()
    if len(value) == 18:
        return value[:17].isdigit() and value[17] in "0123456789X"
    return len(value) == 15 and value.isdigit()


def is_personal_number(value: str) -> bool:
    """A number that identifies a person rather than an application: an ID number, a
    mainland mobile number, or an ID suffix on its own (3 digits + a digit or X)."""
    value = (value or "").strip().upper()
    return (is_id_number(value)
            or (len(value) == 11 and value.isdigit() and value[0] == "1" and value[1] in "3456789")
            or (len(value) == 4 and value[:3].isdigit() and value[3] in "0123456789X"))


def keyed_hash(key: str, *parts: str) -> str:
    """HMAC-SHA256 of the parts; used for ID suffixes, lockout keys and audit rows."""
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def id_suffix_hash(key: str, application_no: str, id_last4: str) -> str:
    # Bound to the application number: equal suffixes do not give equal hashes.
    return keyed_hash(key, "id_last4", application_no, id_last4)


def sender_reference(sender_id: str) -> str:
    """What the bot sends as X-Sender: a hash, never the channel's user id itself."""
    return hashlib.sha256(("sender:" + (sender_id or "")).encode("utf-8")).hexdigest()[:32]
