"""What people type is normalised before the NLU sees it."""
from core.textnorm import normalize_text, to_halfwidth


def test_traditional_characters_become_simplified_with_phrase_context():
    assert normalize_text("醫保電子憑證咋個綁定") == "医保电子凭证咋个绑定"
    assert normalize_text("門診慢特病怎麼申請") == "门诊慢特病怎么申请"
    # 乾 -> 干 only where OpenCC's phrase tables say so
    assert normalize_text("乾燥綜合征") == "干燥综合征"


def test_fullwidth_digits_and_letters_become_halfwidth():
    assert to_halfwidth("ＮＣ２０２５０００１") == "NC20250001"
    assert normalize_text("查一下ｎｃ２０２５　０００１") == "查一下nc2025 0001"


def test_voice_style_spaces_between_chinese_words_are_removed():
    assert normalize_text("  我 想 问 一下  门诊 慢特病 ") == "我想问一下门诊慢特病"


def test_simplified_text_is_unchanged():
    text = "高血压能办门诊慢特病吗"
    assert normalize_text(text) == text


def test_empty_input_is_safe():
    assert normalize_text("") == ""
    assert normalize_text("   ") == ""


def test_messages_without_words_or_digits_have_no_content():
    from core.textnorm import has_content

    for empty in ("？？？", "...", "。。。", "😀", "", "  !! "):
        assert not has_content(normalize_text(empty)), empty
    for meaningful in ("啊？", "1", "NC2025", "嗯"):
        assert has_content(normalize_text(meaningful)), meaningful


def test_thumbs_up_and_folded_hands_become_words():
    assert normalize_text("👍") == "好的"
    assert normalize_text("👌👌") == "好的好的"
    assert normalize_text("🙏") == "谢谢"


def test_content_guard_turns_empty_messages_into_fallback_and_leaves_others():
    from rasa.shared.nlu.training_data.message import Message

    from assistant.nlu.content_guard import ContentFreeMessageGuard

    guessed = {"name": "affirm", "confidence": 0.7}
    empty, question = Message(data={"text": "???"}), Message(data={"text": "材料"})
    for message in (empty, question):
        message.set("intent", guessed)
    ContentFreeMessageGuard().process([empty, question])
    assert empty.get("intent") == {"name": "nlu_fallback", "confidence": 1.0}
    assert question.get("intent") == guessed


def test_content_guard_learns_the_latin_words_of_the_training_data(tmp_path):
    """A keyboard mash ("qwerty asdf") has nothing to read; "ok", "app", "bye" and any
    Chinese or digits do. The words are learned in training and loaded with the model."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from assistant.nlu.content_guard import ContentFreeMessageGuard

    storage, resource = LocalModelStorage(tmp_path), Resource("guard")
    context = ExecutionContext(GraphSchema({}), node_name="guard")
    guard = ContentFreeMessageGuard.create({}, storage, resource, context)
    guard.train(TrainingData([Message(data={"text": t, "intent": i}) for t, i in [
        ("OK", "affirm"), ("用四川医保APP", "inform_guide_channel"), ("bye", "goodbye"), ("你好", "greet")]]))
    loaded = ContentFreeMessageGuard.load({}, storage, resource, context)
    guessed = {"name": "goodbye", "confidence": 0.9}
    texts = ["qwerty asdf", "Zzzz!", "ok", "App", "bye bye", "qwerty 慢特病", "nc2025000101", "？？？"]
    messages = [Message(data={"text": text, "intent": dict(guessed)}) for text in texts]
    loaded.process(messages)
    fell_back = [m.get("text") for m in messages if m.get("intent")["name"] == "nlu_fallback"]
    assert fell_back == ["qwerty asdf", "Zzzz!", "？？？"]
    # without the learned words (an older model) only empty messages are guarded, as before
    plain = [Message(data={"text": text, "intent": dict(guessed)}) for text in ("qwerty", "???")]
    ContentFreeMessageGuard().process(plain)
    assert [m.get("intent")["name"] for m in plain] == ["goodbye", "nlu_fallback"]
