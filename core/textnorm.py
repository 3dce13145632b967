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


# The few emoji people send instead of a word (WeChat users answer 👍 to "继续吗？").
# Mapped to the word they stand for, so the NLU never has to guess from a symbol.
_EMOJI_WORDS = {
    "\U0001F44D": " 好的 ",  # 👍
    "\U0001F44C": " 好的 ",  # 👌
    "\u2705": " 好的 ",      # ✅
    "\U0001F64F": " 谢谢 ",  # 🙏
    "\U0001F44B": " 再见 ",  # 👋
}
_EMOJI = re.compile("|".join(map(re.escape, _EMOJI_WORDS)))


def has_content(text: str) -> bool:
    """False for messages of only punctuation, symbols or emoji ("？？？", "...", "😀"):
    nothing in them an intent could be read from."""
    return any(unicodedata.category(char)[0] in "LN" for char in text or "")


def normalize_text(text: str) -> str:
    """Traditional -> simplified, full-width -> half-width, word emoji, tidy whitespace."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = _EMOJI.sub(lambda match: _EMOJI_WORDS[match.group(0)], text)
    text = to_halfwidth(text)
    text = to_simplified(text)
    text = _CJK_GAP.sub("", text)
    return _SPACES.sub(" ", text).strip()
