"""Rasa pipeline component: TF-IDF character n-grams + logistic regression, as an intent
classifier of its own or averaged with the intent classifier before it (DIET).

Why: on the hard set (tests/nlu/hard_set.yml: dialect, voice typos, traditional characters,
long messages) a plain TF-IDF char 1-3-gram + logistic-regression model ranks the right
intent first more often than DIET, and DIET does better on the in-house set; their average
beats both on both sets (docs/nlu-benchmark.md, "Pipeline choice").

- `weight` 1.0: this component alone decides (`intent`, `intent_ranking` = its probabilities).
- `weight` w < 1: placed after DIET, the ranking becomes
  (1 - w) * DIET's confidence + w * this model's probability, per intent (an intent missing
  from DIET's top `ranking_length` counts 0 there). The FallbackClassifier after it reads the
  combined ranking; its thresholds are calibrated on that (bench/calibrate.py).

`pinyin`: TF-IDF over toneless pinyin syllables (1-2-grams) beside the characters, so a
voice-typing homophone (慢特并 for 慢特病, 审和 for 审核, 进渡 for 进度) shares its features
with the word meant (docs/nlu-benchmark.md, "The pinyin view").

The text is normalised here as well (core.textnorm.normalize_text, idempotent): the
normaliser leaves training examples with annotated entities as written. Persisted with the
model (Rasa's ModelStorage) as a joblib file of the fitted vectorizer and classifier, as
Rasa's own scikit-learn components persist theirs.
"""
import logging
from typing import Any, Dict, List, Optional, Text, Tuple

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from pypinyin import lazy_pinyin
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from core.textnorm import normalize_text

logger = logging.getLogger(__name__)

MODEL_FILE = "tfidf_intent_classifier.joblib"
CONFIDENCE = "confidence"

def pinyin(text: str) -> str:
    """Toneless pinyin syllables of the Chinese characters of a normalised text,
    space-separated. Everything else (latin letters, digits, punctuation) is left out: the
    character view has it, and single letters as "syllables" would make any latin string
    ("qwerty") look like the few latin training examples ("bye")."""
    return " ".join(lazy_pinyin(text, errors="ignore"))


class TextViews:
    """The features of a text: TF-IDF of its characters and, optionally, of its pinyin,
    side by side. Fitted on the training texts; persisted with the classifier."""

    def __init__(self, char_vectorizer: TfidfVectorizer,
                 pinyin_vectorizer: Optional[TfidfVectorizer]) -> None:
        self.char_vectorizer = char_vectorizer
        self.pinyin_vectorizer = pinyin_vectorizer

    def fit(self, texts: List[str]) -> "TextViews":
        self.char_vectorizer.fit(texts)
        if self.pinyin_vectorizer is not None:
            self.pinyin_vectorizer.fit([pinyin(t) for t in texts])
        return self

    def transform(self, texts: List[str]):
        features = self.char_vectorizer.transform(texts)
        if self.pinyin_vectorizer is None:
            return features
        return hstack([features, self.pinyin_vectorizer.transform([pinyin(t) for t in texts])]).tocsr()


def combine(previous: List[Dict[str, Any]], own: List[Tuple[str, float]], weight: float,
            ranking_length: int) -> List[Dict[str, Any]]:
    """(1 - weight) * previous + weight * own, per intent name, best first (ties by name,
    so the result does not depend on dict order), cut to `ranking_length` (0: all)."""
    scores: Dict[str, float] = {}
    if weight < 1.0:
        for entry in previous or []:
            name = entry.get(INTENT_NAME_KEY)
            if name:
                scores[name] = scores.get(name, 0.0) + (1.0 - weight) * float(entry.get(CONFIDENCE) or 0.0)
    for name, probability in own:
        scores[name] = scores.get(name, 0.0) + weight * float(probability)
    ranking = [{INTENT_NAME_KEY: name, CONFIDENCE: score}
               for name, score in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ranking[:ranking_length] if ranking_length > 0 else ranking


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class TfidfIntentClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "analyzer": "char",
            "min_ngram": 1,
            "max_ngram": 3,
            "sublinear_tf": True,
            # toneless pinyin 1-2-grams beside the characters (voice-typing homophones)
            "pinyin": False,
            "C": 10.0,
            "max_iter": 2000,
            "random_seed": 20251,
            # share of this model in the final ranking; the rest is the previous classifier's
            "weight": 1.0,
            "ranking_length": 10,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "joblib"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        weight = float(config.get("weight", 1.0))
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"TfidfIntentClassifier: weight must be in (0, 1], got {weight}")
        if config.get("analyzer", "char") not in ("char", "char_wb", "word"):
            raise ValueError(f"TfidfIntentClassifier: unknown analyzer {config.get('analyzer')!r}")
        if int(config.get("min_ngram", 1)) > int(config.get("max_ngram", 3)):
            raise ValueError("TfidfIntentClassifier: min_ngram > max_ngram")

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 vectorizer=None, classifier=None) -> None:
        self.config = {**self.get_default_config(), **config}
        self.validate_config(self.config)
        self._model_storage = model_storage
        self._resource = resource
        self.vectorizer = vectorizer
        self.classifier = classifier

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "TfidfIntentClassifier":
        return cls(config, model_storage, resource)

    # --- training ---------------------------------------------------------------------

    def _new_models(self):
        c = self.config
        chars = TfidfVectorizer(analyzer=c["analyzer"], ngram_range=(int(c["min_ngram"]), int(c["max_ngram"])),
                                sublinear_tf=bool(c["sublinear_tf"]), lowercase=True)
        syllables = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", ngram_range=(1, 2),
                                    sublinear_tf=bool(c["sublinear_tf"]), lowercase=True) if c["pinyin"] else None
        vectorizer = TextViews(chars, syllables)
        classifier = LogisticRegression(C=float(c["C"]), max_iter=int(c["max_iter"]),
                                        random_state=int(c["random_seed"]))
        return vectorizer, classifier

    @staticmethod
    def _text(message: Message) -> str:
        text = message.get(TEXT)
        return normalize_text(text) if isinstance(text, str) else ""

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and self._text(e)]
        labels = sorted({e.get(INTENT) for e in examples})
        if len(labels) < 2:
            logger.warning("TfidfIntentClassifier: fewer than two intents in the training data; not trained.")
            return self._resource
        vectorizer, classifier = self._new_models()
        texts = [self._text(e) for e in examples]
        classifier.fit(vectorizer.fit(texts).transform(texts), [e.get(INTENT) for e in examples])
        self.vectorizer, self.classifier = vectorizer, classifier
        self.persist()
        return self._resource

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump({"vectorizer": self.vectorizer, "classifier": self.classifier}, directory / MODEL_FILE)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "TfidfIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                saved = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            logger.warning("TfidfIntentClassifier: no trained model in the model storage; it will not classify.")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, saved["vectorizer"], saved["classifier"])

    # --- prediction -------------------------------------------------------------------

    def rank(self, texts: List[str]) -> List[List[Tuple[str, float]]]:
        """Per text, (intent, probability) for every known intent, best first."""
        probabilities = self.classifier.predict_proba(self.vectorizer.transform([normalize_text(t) for t in texts]))
        classes = [str(name) for name in self.classifier.classes_]
        return [sorted(zip(classes, map(float, row)), key=lambda kv: (-kv[1], kv[0])) for row in probabilities]

    def process(self, messages: List[Message]) -> List[Message]:
        if self.classifier is None or not messages:
            return messages
        weight = float(self.config["weight"])
        length = int(self.config["ranking_length"])
        texts = [m.get(TEXT) if isinstance(m.get(TEXT), str) else "" for m in messages]
        for message, own in zip(messages, self.rank(texts)):
            previous: Optional[List[Dict[str, Any]]] = message.get(INTENT_RANKING_KEY) if weight < 1.0 else None
            ranking = combine(previous or [], own, weight if previous else 1.0, length)
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
