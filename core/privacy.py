"""Masking for logs and public replies, keyed hashes for stored secrets."""
import hashlib
import hmac
import re
import unicodedata

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
    """Mask anything number-like in free text before it is logged (ID numbers first,
    in whatever form they were typed)."""
    return _NUMBERISH.sub(lambda m: mask_application_no(m.group(0)), mask_id_card_numbers(text or ""))


# What people put between the digits of an ID number (after NFKC): any space (NBSP,
# ideographic), invisible format characters, dashes of every width, dots, commas,
# underscores, slashes and bars. Up to 3 of them between two digits.
_SEPARATOR_CHARS = ("\u00ad\u200b\u200c\u200d\u2060\ufeff"
                    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b"
                    "._,/\\|~\u3001\u3002\u30fb\u00b7\u2022\u2044\u2215\u29f8\u2571\u301c\uff5e")
_SEP = "[\\s" + re.escape(_SEPARATOR_CHARS) + "]"
# Digit groups joined by separators, possibly ending in the check character X. Greedy
# and without look-arounds, so the scan stays linear on any input.
_DIGIT_RUN = re.compile(f"[0-9]+(?:{_SEP}{{1,3}}[0-9]+)*(?:{_SEP}{{0,3}}[Xx])?")
_GROUP = re.compile("[0-9]+|[Xx]")
# Latin labels written straight onto an ID number ("sfz5113…", "ID-5113…"). Any other
# letters attached to the digits make them an application number ("NC2025…").
ID_PREFIXES = frozenset({"sfz", "sfzh", "sfzhm", "shenfenzheng", "id", "idno", "idnum",
                         "idnumber", "idcard", "zjhm"})


def _fold(text: str):
    """(folded text, index of the original character of each folded one): NFKC per
    character, and any other Unicode decimal digit as its ASCII digit."""
    chars, origin = [], []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKC", char):
            digit = unicodedata.decimal(part, None)
            chars.append(str(digit) if digit is not None else part)
            origin.append(index)
    return "".join(chars), origin


def _is_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _attached_letters(folded: str, start: int) -> str:
    """The latin letters written onto the digit at `start` (directly or through - or _)."""
    end = start
    if end >= 2 and folded[end - 1] in "-_" and _is_letter(folded[end - 2]):
        end -= 1
    begin = end
    while begin > 0 and _is_letter(folded[begin - 1]):
        begin -= 1
    return folded[begin:end]


def _id_spans(folded: str):
    """(start, end) in the folded text of each ID number: consecutive whole digit groups
    of one run whose digits make an ID number (is_id_number), the longest first. Letters
    other than an ID label attached to the first group make it part of an application
    number (letters after the digits do not: "511302…1234abc" is still masked)."""
    for run in _DIGIT_RUN.finditer(folded):
        groups = [[run.start() + m.start(), run.start() + m.end(), m.group(0)]
                  for m in _GROUP.finditer(run.group(0))]
        if groups[-1][2] in "Xx":
            check = groups.pop()
            groups[-1][1], groups[-1][2] = check[1], groups[-1][2] + "X"
        letters = _attached_letters(folded, run.start())
        first = 1 if letters and letters.lower() not in ID_PREFIXES else 0
        followed = run.end() < len(folded) and folded[run.end()].isdigit()  # "…123X5"
        last = len(groups) - (2 if followed else 1)
        i = first
        while i <= last:
            found, digits = None, ""
            for j in range(i, last + 1):
                digits += groups[j][2]
                if len(digits) > 18:
                    break
                if is_id_number(digits):
                    found = j  # keep going: 18 characters win over their first 15
            if found is None:
                i += 1
                continue
            yield groups[i][0], groups[found][1]
            i = found + 1


def mask_id_card_numbers(text: str) -> str:
    """'我的身份证 51130219800101 1234' -> '我的身份证 **************1234': only the last 4 stay.

    The one rule (is_id_number) is applied to the text as NFKC reads it, so full-width
    digits, common separators between digits (up to 3 characters) and a latin label
    ("sfz", "ID:") hide nothing. Everything outside an ID number stays as it was typed."""
    text = text or ""
    folded, origin = _fold(text)
    out, done = [], 0
    for start, end in _id_spans(folded):
        kept = sorted({origin[k] for k in range(start, end) if folded[k].isdigit() or folded[k] in "Xx"})
        out.append(text[done:origin[start]])
        out.append("*" * (len(kept) - 4) + "".join(text[k] for k in kept[-4:]))
        done = origin[end - 1] + 1
    out.append(text[done:])
    return "".join(out)


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


def _utf8(text: str) -> bytes:
    # "surrogatepass": a header with undecodable bytes (sanic keeps them as surrogates)
    # or a JSON "\ud800" is still a value to compare or hash, never an exception (500)
    return (text or "").encode("utf-8", "surrogatepass")


def same_secret(presented, expected: str) -> bool:
    """Constant-time comparison of a secret a client presented (header, cookie) with the
    expected one, as bytes: any value, non-ASCII included, is just unequal, never an error."""
    if not isinstance(presented, str) or not presented or not expected:
        return False
    return hmac.compare_digest(_utf8(presented), _utf8(expected))


def keyed_hash(key: str, *parts: str) -> str:
    """HMAC-SHA256 of the parts; used for ID suffixes, lockout keys and audit rows."""
    message = _utf8("\x1f".join(parts))
    return hmac.new(_utf8(key), message, hashlib.sha256).hexdigest()


def id_suffix_hash(key: str, application_no: str, id_last4: str) -> str:
    # Bound to the application number: equal suffixes do not give equal hashes.
    return keyed_hash(key, "id_last4", application_no, id_last4)


def sender_reference(sender_id: str) -> str:
    """What the bot sends as X-Sender: a hash, never the channel's user id itself."""
    return hashlib.sha256(_utf8("sender:" + (sender_id or ""))).hexdigest()[:32]


def client_reference(kind: str, value: str) -> str:
    """Who is asking, as the channel saw it and the client cannot choose: "ip" + the
    client address (from the trusted proxy, docs/security.md) or "wechat" + the signed
    OpenID. Kept in the conversation as this hash; the progress lockout is keyed on it."""
    return hashlib.sha256(_utf8(f"client:{kind}:{value or ''}")).hexdigest()[:32]
