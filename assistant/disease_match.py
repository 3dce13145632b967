"""Which diseases a question is about: the one matcher the bot and the agent console share.

The action server (actions/answers.py) and the console (web/knowledge_view.py) both call
`match_question`, so for the same words they answer about the same diseases with the same
topic. Pure: no Rasa, no sanic; the caller passes what the NLU found (the `disease`
entities, as Rasa returns them) and, for the bot, what the conversation remembers.

For one message, in this order:
0. a question about who may apply that names a disease ("发烧的人能申请吗", "高血压的人能
   申请吗") is a question about that disease: topic `disease_coverage`, as the eligibility
   answer itself says ("想问某个病能不能办，直接发病名");
1. the diseases the message names, all answered together, in the order they were said:
   - catalogue diseases: the NLU's (canonical names from knowledge/diseases.yml); failing
     that, catalogue names and aliases found in the text ("肝移植后一直吃药" ->
     器官移植术后抗排异治疗);
   - names the catalogue lists under a disease's `covers` ("胰腺癌" -> 恶性肿瘤门诊放化疗);
   - illness words the catalogue does not know ("痛风", "白癜风", "发烧"): the answer says
     so and points to the official list and the hotline (variants `unknown` /
     `unknown_note`; "子宫肌瘤" gets `covered_maybe`);
   a remembered disease is not answered then, and is forgotten when only unknown names
   were said;
2. else "哪些病能办" asks for the catalogue;
3. else the disease remembered from earlier in the conversation ("那要什么材料").
The words that named a disease go with the match (`said`), so the answer can add that
"血糖高" needs a diagnosis of 糖尿病 or that "胰腺癌" is answered as 恶性肿瘤门诊放化疗.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from assistant.knowledge import DISEASE_TOPICS, KnowledgeBase
from core.textnorm import normalize_text

# Words that are not a disease name, removed before looking for one ("我妈得了白癜风能办不"
# -> "白癜风"). Longest first so "门诊慢特病" goes before "慢特病".
_FILLERS = sorted("""
门诊慢特病 门诊特殊病 特殊病种 慢特病 特病 慢病 门特 慢性病 病种 这个病 那个病 什么病 啥子病 啥病
哪些病 哪种病 哪个病 病人 生病 看病 病历 病情 毛病 疾病
医保 四川 南充 报销 申请 申报 办理 认定 待遇 资格 条件 符不符合 符合 标准 要求 规定 政策 情况 目录 范围
材料 资料 东西 准备 证明
能不能 能否 可不可以 可以 能 算不算 属不属于 属于 算 在不在 包不包括 包括 报不报 有没有 是不是
得了 得的是 患有 患了 查出 确诊 诊断为 诊断 检查出 得 患 有 是 在 要 需要 带 交 办 报
我 你 他 她 俺 咱 我们 家里 屋头 老汉儿 老汉 老妈 老爸 妈妈 爸爸 妈 爸 父亲 母亲 爷爷 奶奶 外公 外婆
婆婆 公公 老公 老婆 爱人 儿子 女儿 孩子 娃儿 家人 亲戚 老人 老年人 自己 本人
请问 问一下 问下 想问 咨询 那么 那 这个 那个 还有 以及 和 跟 与 或者 的 了 也 都 还 就 呢 吗 嘛 么
不 没 啊 哦 哈 噻 唦 哇 呀 吧 啥子 什么 啥 哪些 怎么 咋个 咋 啷个 如何 多少 一下 下
""".split(), key=len, reverse=True)
_FILLER_RE = re.compile("|".join(re.escape(word) for word in _FILLERS))
# A disease name usually ends like one ("白癜风", "痛风", "类风湿关节炎") …
_DISEASE_SUFFIX = re.compile(
    r"(病|症|癌|炎|瘤|综合征|衰竭|硬化|贫血|结石|痛风|哮喘|狼疮|痴呆|畸形|损伤|麻痹|风|瘫|梗|障碍)$"
)
# … but everyday illnesses and symptoms do not ("发烧能申请慢特病吗"). They are answered
# like any name the catalogue does not know: not a named disease here, look in the app's
# list or ask the hotline. Longest first ("发高烧" before "高烧").
_EVERYDAY_ILLNESSES = sorted("""
发烧 发高烧 高烧 低烧 发热 感冒 伤风 流感 咳嗽 拉肚子 腹泻 肚子疼 肚子痛 胃疼 胃痛 头疼 头痛 头晕
牙疼 牙痛 嗓子疼 喉咙痛 骨折 扭伤 崴脚 过敏 湿疹 失眠 便秘 呕吐 拉稀
""".split(), key=len, reverse=True)
_EVERYDAY_RE = re.compile("|".join(re.escape(word) for word in _EVERYDAY_ILLNESSES))
_NON_CJK = re.compile(r"[^\u4e00-\u9fff]+")

# Topics that, asked about a named disease, are answered as this disease topic instead.
WITH_A_DISEASE = {"eligibility": "disease_coverage"}

_LIST_QUESTION = re.compile(
    r"(哪些|哪几|哪种|什么|啥子?|多少种?|几种).{0,3}病|病种.{0,4}(有哪些|有啥|目录|清单|范围|名单)|目录|名单"
)


def asks_for_the_list(text: str) -> bool:
    """"哪些病能办" / "病种目录": the question is about the catalogue, not one disease."""
    return bool(_LIST_QUESTION.search(normalize_text(text)))


def disease_like_phrases(text: str) -> List[str]:
    """Illness-looking phrases left after removing everyday words: "白癜风", "发烧"."""
    cleaned = _NON_CJK.sub(" ", normalize_text(text))
    cleaned = _FILLER_RE.sub(" ", cleaned)
    found: List[str] = []
    for segment in cleaned.split():
        if 2 <= len(segment) <= 12 and _DISEASE_SUFFIX.search(segment):
            candidates = [segment]
        else:
            candidates = _EVERYDAY_RE.findall(segment)
        found += [name for name in candidates if name not in found]
    return found


def _canonical(kb: KnowledgeBase, value: Any) -> Optional[str]:
    value = str(value or "")
    return value if value in kb.by_name else kb.canonical(value)


def canonical_names(kb: KnowledgeBase, values: Iterable[Any]) -> List[str]:
    """Canonical catalogue names of names or aliases (unknown ones left out), no repeats."""
    names: List[str] = []
    for value in values:
        name = _canonical(kb, value)
        if name and name not in names:
            names.append(name)
    return names


def _entity_word(text: str, entity: Mapping[str, Any]) -> str:
    """What the person typed for an entity: its span ("血糖高"; the NLU's value is already
    the synonym "糖尿病"), else its value."""
    start, end = entity.get("start"), entity.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
        return normalize_text(text[start:end])
    return str(entity.get("value") or "")


def catalogue_mentions(kb: KnowledgeBase, entities: Sequence[Mapping[str, Any]] = (),
                       text: str = "") -> List[Tuple[int, str, str]]:
    """(position, word typed, canonical name) of the catalogue diseases this message
    names: the NLU's `disease` entities, else catalogue names and aliases in the text."""
    mentions = []
    for entity in entities or []:
        if isinstance(entity, Mapping) and entity.get("entity") == "disease":
            name = _canonical(kb, entity.get("value"))
            if name:
                word = _entity_word(text, entity)
                # a span that is no name of that disease (an odd offset): the value then
                mentions.append((entity.get("start") or 0,
                                 word if kb.canonical(word) == name else name, name))
    if not mentions and text:
        mentions = kb.find_diseases(text)
    return sorted(mentions)


def named_diseases(kb: KnowledgeBase, entities: Sequence[Mapping[str, Any]] = (),
                   text: str = "") -> List[str]:
    """Catalogue diseases this message names: the NLU's `disease` entities in the order
    they were said, else catalogue names and aliases found in the text."""
    return list(dict.fromkeys(name for _, _, name in catalogue_mentions(kb, entities, text)))


def unknown_diseases(kb: KnowledgeBase, text: str) -> List[str]:
    """Illness words in the text that are no catalogue name or alias ("白癜风", "发烧"),
    those a disease `covers` ("胰腺癌") included."""
    return [phrase for phrase in disease_like_phrases(text) if not kb.recognise_diseases(phrase)]


@dataclass(frozen=True)
class Match:
    """What to answer: a topic of knowledge/topics.yml (None: no knowledge entry for the
    intent), the catalogue diseases (canonical names) and the unknown names to answer about."""

    topic: Optional[str]
    diseases: Tuple[str, ...] = ()
    unknown: Tuple[str, ...] = ()
    # `diseases` were named in this message (not remembered): the conversation keeps them
    named_here: bool = False
    # the message named only diseases the catalogue does not know: a remembered disease
    # must not be answered for (or kept) any more
    forget_remembered: bool = False
    # (canonical name, word typed) for the diseases named here: "血糖高" or "胰腺癌" get a
    # line of their own (KnowledgeBase.answer_topic `said`)
    said: Tuple[Tuple[str, str], ...] = ()


def match_question(kb: KnowledgeBase, intent: Optional[str], text: str = "",
                   entities: Sequence[Mapping[str, Any]] = (),
                   previous_topic: Optional[str] = None,
                   remembered: Iterable[Any] = ()) -> Match:
    """The topic and the diseases one message asks about. `previous_topic` and `remembered`
    (the bot's `knowledge_topic` and `disease` slots) are the conversation so far; the
    console has none."""
    topic = kb.topic_for_intent(intent) if intent else None
    if topic is None:
        return Match(None)
    if intent == "inform_disease" and previous_topic in DISEASE_TOPICS:
        topic = previous_topic  # "那糖尿病呢" continues the question asked before
    if topic in WITH_A_DISEASE:
        if not (named_diseases(kb, entities, text) or unknown_diseases(kb, text)):
            return Match(topic)  # "谁能申请": the general answer; nothing remembered counts
        topic = WITH_A_DISEASE[topic]
    if topic not in DISEASE_TOPICS:
        return Match(topic)
    mentions = catalogue_mentions(kb, entities, text)
    normalized = normalize_text(text)
    unknown = []
    for phrase in unknown_diseases(kb, text):
        covering = kb.covering(phrase)
        if covering and covering[1]:  # "胰腺癌": answered as the disease that covers it
            mentions.append((max(normalized.find(phrase), 0), phrase, covering[0]))
        else:
            unknown.append(phrase)
    mentions.sort()
    diseases = tuple(dict.fromkeys(name for _, _, name in mentions))
    if diseases or unknown:
        # any disease named, known or not: nothing remembered is answered; only unknown
        # ones ("那痛风呢"): the remembered disease is forgotten too
        return Match(topic, diseases, tuple(unknown), named_here=bool(diseases),
                     forget_remembered=not diseases,
                     said=tuple((name, word) for _, word, name in mentions))
    if topic == "disease_coverage" and asks_for_the_list(text):
        return Match(topic)  # "哪些病能办": the catalogue, even after an earlier disease
    return Match(topic, tuple(canonical_names(kb, remembered)))
