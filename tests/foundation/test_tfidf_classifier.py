"""assistant/nlu/tfidf_classifier.py: TF-IDF + logistic regression intent classifier, alone
or averaged with the classifier before it (DIET), without training a whole model."""
import pytest

pytest.importorskip("rasa")

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from assistant.nlu.tfidf_classifier import TfidfIntentClassifier, combine, pinyin  # noqa: E402

EXAMPLES = {
    "check_progress": ["查一下申请进度", "我的申请到哪一步了", "审核进度怎么查", "申请结果出来没有"],
    "ask_materials": ["要准备哪些材料", "申请需要带什么资料", "材料清单有哪些", "要交什么证明"],
    "greet": ["你好", "您好啊", "早上好", "哈喽"],
}


def training_data() -> TrainingData:
    return TrainingData([Message(data={TEXT: text, INTENT: intent})
                         for intent, texts in EXAMPLES.items() for text in texts])


def new(tmp_path, **config):
    (tmp_path / "storage").mkdir(parents=True)
    storage = LocalModelStorage(tmp_path / "storage")
    resource = Resource("tfidf")
    context = ExecutionContext(GraphSchema({}), node_name="tfidf")
    return TfidfIntentClassifier.create({**TfidfIntentClassifier.get_default_config(), **config},
                                        storage, resource, context), storage, resource, context


def test_alone_it_ranks_every_intent_with_probabilities(tmp_path):
    classifier, *_ = new(tmp_path)
    classifier.train(training_data())
    [message] = classifier.process([Message(data={TEXT: "申請進度查一下"})])   # traditional: normalised
    ranking = message.get(INTENT_RANKING_KEY)
    assert message.get(INTENT)["name"] == "check_progress" == ranking[0]["name"]
    assert {entry["name"] for entry in ranking} == set(EXAMPLES)
    assert sum(entry["confidence"] for entry in ranking) == pytest.approx(1.0)
    assert [e["confidence"] for e in ranking] == sorted((e["confidence"] for e in ranking), reverse=True)
    assert message.get(INTENT)["confidence"] == ranking[0]["confidence"]


def test_persisted_with_the_model_and_loaded_back(tmp_path):
    classifier, storage, resource, context = new(tmp_path)
    classifier.train(training_data())
    loaded = TfidfIntentClassifier.load(classifier.config, storage, resource, context)
    texts = ["要带哪些材料", "你好呀", "进度"]
    assert loaded.rank(texts) == classifier.rank(texts)


def test_untrained_it_leaves_the_message_alone(tmp_path):
    classifier, storage, resource, context = new(tmp_path)
    loaded = TfidfIntentClassifier.load(classifier.config, storage, resource, context)
    message = Message(data={TEXT: "你好"})
    loaded.process([message])
    assert message.get(INTENT) is None


def test_with_a_weight_it_averages_with_the_ranking_before_it(tmp_path):
    classifier, *_ = new(tmp_path, weight=0.5)
    classifier.train(training_data())
    own = dict(classifier.rank(["要准备哪些材料"])[0])
    diet = [{"name": "greet", "confidence": 0.9}, {"name": "ask_materials", "confidence": 0.1}]
    message = Message(data={TEXT: "要准备哪些材料", INTENT: dict(diet[0]), INTENT_RANKING_KEY: diet})
    classifier.process([message])
    ranking = {e["name"]: e["confidence"] for e in message.get(INTENT_RANKING_KEY)}
    assert ranking["greet"] == pytest.approx(0.5 * 0.9 + 0.5 * own["greet"])
    assert ranking["ask_materials"] == pytest.approx(0.5 * 0.1 + 0.5 * own["ask_materials"])
    assert ranking["check_progress"] == pytest.approx(0.5 * own["check_progress"])   # not in DIET's ranking
    assert message.get(INTENT)["name"] == max(ranking, key=ranking.get)
    # no ranking before it (no DIET): its own probabilities, undiluted
    alone = Message(data={TEXT: "要准备哪些材料"})
    classifier.process([alone])
    assert {e["name"]: e["confidence"] for e in alone.get(INTENT_RANKING_KEY)} == pytest.approx(own)


def test_combine_orders_cuts_and_breaks_ties_by_name():
    previous = [{"name": "b", "confidence": 0.6}, {"name": "a", "confidence": 0.2}]
    own = [("a", 0.6), ("c", 0.3), ("b", 0.1)]
    ranking = combine(previous, own, 0.5, ranking_length=2)
    assert [e["name"] for e in ranking] == ["a", "b"]           # a 0.40 ≈ b 0.35 … c 0.15 cut
    assert ranking[0]["confidence"] == pytest.approx(0.4)
    assert [e["name"] for e in combine([], [("y", 0.5), ("x", 0.5)], 1.0, 0)] == ["x", "y"]
    assert combine(previous, own, 1.0, 0) == [{"name": n, "confidence": c} for n, c in own]


def test_pinyin_makes_voice_typing_homophones_alike():
    assert pinyin("进渡") == pinyin("进度") == "jin du"
    assert pinyin("审和") == pinyin("审核")
    assert pinyin("NC2025 慢特病，bye") == "man te bing"   # only the Chinese characters


def test_latin_gibberish_is_not_read_as_a_latin_training_example(tmp_path):
    data = TrainingData([Message(data={TEXT: t, INTENT: i}) for i, t in [
        ("goodbye", "bye"), ("goodbye", "再见"), ("goodbye", "拜拜"),
        ("greet", "你好"), ("greet", "早上好"), ("greet", "哈喽"),
        ("ask_materials", "要什么材料"), ("ask_materials", "材料清单"), ("ask_materials", "交哪些资料")]])
    classifier, *_ = new(tmp_path, pinyin=True)
    classifier.train(data)
    # the pinyin view has nothing for it (letters were "syllables" that matched "bye")
    assert classifier.vectorizer.pinyin_vectorizer.transform([pinyin("qwerty yyy")]).nnz == 0


def test_with_pinyin_a_homophone_typo_finds_the_word_meant(tmp_path):
    # 审和 for 审核: no character of "审和" after 审 is in the training data, its syllables are
    data = TrainingData([Message(data={TEXT: t, INTENT: i}) for i, t in [
        ("check_progress", "审核到哪了"), ("check_progress", "审核结果"), ("check_progress", "查审核"),
        ("ask_materials", "要什么材料"), ("ask_materials", "材料清单"), ("ask_materials", "交哪些资料"),
        ("greet", "你好"), ("greet", "早上好"), ("greet", "哈喽")]])
    plain, *_ = new(tmp_path / "plain")
    with_pinyin, *_ = new(tmp_path / "pinyin", pinyin=True)
    for classifier in (plain, with_pinyin):
        classifier.train(data)
    typo = "审和"
    assert dict(with_pinyin.rank([typo])[0])["check_progress"] > dict(plain.rank([typo])[0])["check_progress"]
    assert with_pinyin.rank([typo])[0][0][0] == "check_progress"


def test_views_persist_with_the_model(tmp_path):
    classifier, storage, resource, context = new(tmp_path, pinyin=True)
    classifier.train(training_data())
    loaded = TfidfIntentClassifier.load(classifier.config, storage, resource, context)
    texts = ["材料和进渡呢", "你好呀"]
    assert loaded.rank(texts) == classifier.rank(texts)


@pytest.mark.parametrize("config", [{"weight": 0.0}, {"weight": 1.5}, {"analyzer": "chars"},
                                    {"min_ngram": 4, "max_ngram": 3}])
def test_bad_config_is_refused(config):
    with pytest.raises(ValueError):
        TfidfIntentClassifier.validate_config({**TfidfIntentClassifier.get_default_config(), **config})
