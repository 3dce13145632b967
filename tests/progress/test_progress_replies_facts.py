"""Facts policy for every progress reply: no invented numbers or time limits, and
nothing the guide does not say stated as fact (re-applying, how to supplement,
where the application number is shown) without a caveat pointing to the rules."""
import re

import pytest

from assistant.content import texts
from assistant.knowledge_checks import invented_numbers


def replies():
    return texts("progress_replies").templates

HOTLINE = "12393"
# Digits that are not policy: the ID-card suffix length and the format example.
FORMAT_PHRASES = ("最后4位", "后4位", "4个字符", "123X")
CAVEATS = ("以官方规定为准", "以通知和官方要求为准", "以实际界面为准")
# Not in the guide / FACTS.md: may appear only in a sentence that carries a caveat.
UNCONFIRMED = ("重新申请", "重新提出", "重新提交", "补充上传", "怎么补充", "提交成功",
               "办理记录", "短信通知里", "编号可能在", "能看到")


class _Placeholder(dict):
    def __missing__(self, key):
        return f"〈{key}〉"


def render(template: str) -> str:
    return template.format_map(_Placeholder())


def problems(text: str):
    found = []
    plain = text.replace(HOTLINE, "")
    for phrase in FORMAT_PHRASES:
        plain = plain.replace(phrase, "")
    plain = re.sub(r"〈[a-z_0-9]+〉", "", plain)
    digits = re.findall(r"[0-9０-９]+", plain)
    if digits:
        found.append(f"numbers not in the guide: {digits}")
    # time limits, ratios, amounts in Chinese numerals: the guard all knowledge texts share
    invented = invented_numbers(plain)
    if invented:
        found.append(f"numbers not in the sources: {invented}")
    for sentence in re.split(r"[。；！？\n]", text):
        risky = [p for p in UNCONFIRMED if p in sentence]
        if risky and not any(c in sentence for c in CAVEATS):
            found.append(f"stated as fact without caveat: {risky} in “{sentence}”")
    return found


# Headings of our own, not claims about the app: "办理记录" heads the service's history list.
HEADINGS = {"history"}


@pytest.mark.parametrize("name", sorted(set(replies()) - HEADINGS))
def test_reply_invents_no_numbers_time_limits_or_unconfirmed_facts(name):
    text = render(replies()[name])
    assert problems(text) == []
    assert len(text) <= 300


def test_the_checker_catches_the_old_wordings():
    # Wordings the review found; the checker must reject each of them.
    bad = [
        "如果补齐材料或病情符合认定标准，可以重新提出申请。",
        "这个申请已撤回。如果仍需办理，可以重新提交申请；有疑问请拨打 12393。",
        "请在原来申请的渠道按提示补充上传后重新提交。",
        "一般可在提交成功的页面，或小程序的办理记录里找到；短信通知里如有编号也可以用。",
        "审核一般需要15个工作日。",
        "审核一般需要十五个工作日。",
        "报销比例为 70%。",
        "报销比例为百分之七十。",
        "结果一般两周内出来。",
    ]
    for text in bad:
        assert problems(text), text
    assert problems("能否重新申请、怎么重新申请，以官方规定为准，可拨打 12393。") == []
