"""ID-number masking against generated variants (hypothesis, seeded): however an ID number
is typed, only its last 4 characters survive; application numbers and other numbers that
are not ID numbers by the one rule (core.privacy.is_id_number) pass unchanged."""
import re
import unicodedata

from hypothesis import given, settings, strategies as st

from core.formats import find_application_no
from core.inbound import typed_text
from core.privacy import ID_PREFIXES, is_id_number, mask_id_card_numbers

SEPARATORS = [" ", "  ", "\u00a0", "\u3000", "\t", "-", "－", "\u2010", "–", "—", "\u2212", ".", "．",
              "·", "・", "_", "＿", "/", "／", "\\", "|", ",", "，", "、", "\u200b", "~", " - ", " / ", ". "]
FULL_WIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
PROFILE = settings(max_examples=400, derandomize=True, deadline=None)

id_numbers = st.one_of(
    st.tuples(st.text("0123456789", min_size=17, max_size=17), st.sampled_from("0123456789Xx"))
    .map("".join),
    st.text("0123456789", min_size=15, max_size=15),
)
contexts = st.sampled_from([("", ""), ("我的身份证号是", ""), ("身份证 ", " 查进度"), ("号码：", "。"),
                            ("帮我查一下 ", " 谢谢"), ("证件号", "，后四位是多少"), ("id ", ""), ("sfz:", "")])


@st.composite
def typed_ids(draw):
    """(the ID number, how someone typed it, in a sentence)."""
    number = draw(id_numbers)
    chars = []
    for index, char in enumerate(number):
        if draw(st.booleans()) and char in FULL_WIDTH:
            char = FULL_WIDTH[char]
        elif char in "Xx" and draw(st.booleans()):
            char = {"X": "Ｘ", "x": "ｘ"}[char]
        chars.append(char)
        if index < len(number) - 1 and draw(st.integers(0, 3)) == 0:
            chars.append(draw(st.sampled_from(SEPARATORS)))
    prefix = draw(st.sampled_from(["", *sorted(ID_PREFIXES), "SFZ", "ID:", "ID-", "身份证"]))
    before, after = draw(contexts)
    return number, f"{before}{prefix}{''.join(chars)}{after}"


def ascii_digits(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if c.isdigit() or c in "Xx").upper()


@PROFILE
@given(typed_ids())
def test_no_typed_form_of_an_id_number_survives_masking(case):
    number, typed = case
    masked = mask_id_card_numbers(typed)
    kept = ascii_digits(masked)
    # nothing but the last 4 characters of the number remains (the context has no digits)
    assert kept.endswith(number.upper()[-4:]) and len(kept) == 4, (typed, masked)
    assert "*" * (len(number) - 4) in masked
    # the same through what every channel does (core.inbound), and no number is read from it
    assert ascii_digits(typed_text(typed)) == kept
    assert find_application_no(masked) == ""


application_numbers = st.tuples(
    st.sampled_from(["NC", "nc", "ＮＣ", "MT", "A"]),
    st.sampled_from(["", "-", "_"]),
    st.text("0123456789", min_size=6, max_size=20),
).map("".join)


@PROFILE
@given(application_numbers, contexts)
def test_application_numbers_are_never_taken_for_id_numbers(number, context):
    text = context[0] + number + context[1]
    assert mask_id_card_numbers(text) == text


@PROFILE
@given(st.text("0123456789", min_size=1, max_size=30).filter(lambda d: not is_id_number(d)))
def test_digit_runs_that_are_not_id_numbers_are_left_alone(run):
    text = f"电话{run}，谢谢"
    assert mask_id_card_numbers(text) == text


@PROFILE
@given(st.text(max_size=300))
def test_any_text_is_handled_without_error(text):
    masked = mask_id_card_numbers(text)
    assert mask_id_card_numbers(masked) == masked  # idempotent
    assert len(masked) <= len(text)  # a masked ID only loses its separators
    assert len(typed_text(text)) <= 500
