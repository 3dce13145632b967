"""Normalise what people type before anything tries to understand it.

Used by the NLU pipeline (training and prediction alike) and by actions that read
numbers out of raw text, so both see the same characters.
"""
import re
import unicodedata
from functools import lru_cache

_SPACES = re.compile(r"\s+")
# Between two CJK characters a space is noise (voice input, copy-paste); between
# Latin words or digits it may carry meaning, so it stays.
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])")


@lru_cache(maxsize=1)
def _converter():
    # opencc-python-reimplemented: a maintained pure-Python port of OpenCC with its
    # phrase tables, so 醫保/申請/診斷 convert with context, not character by character.
    from opencc import OpenCC

    return OpenCC("t2s")


def to_halfwidth(text: str) -> str:
    """Full-width ASCII (ＮＣ２０２５, ：, （ ）) to half-width; CJK untouched."""
    out = []
    for char in text:
        code = ord(char)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(char)
    return "".join(out)


def to_simplified(text: str) -> str:
    return _converter().convert(text)


def normalize_text(text: str) -> str:
    """Traditional -> simplified, full-width -> half-width, tidy whitespace."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = to_halfwidth(text)
    text = to_simplified(text)
    text = _CJK_GAP.sub("", text)
    return _SPACES.sub(" ", text).strip()
