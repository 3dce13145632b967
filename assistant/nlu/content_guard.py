"""Rasa pipeline component: a message with nothing to read is never given an intent.

"？？？", "..." or a lone 😀 leave no features, and DIET then answers with its bias –
`affirm` at 0.7, which would move a guide walk on by a step. A keyboard mash in latin
letters ("qwerty asdf") is no better: none of its words is in the training data, yet DIET
was found to call it `goodbye` at 0.9 (a model of 2026-12-03), which ends the
conversation. Placed after the FallbackClassifier, this sets such messages to
`nlu_fallback` (certain), and the fallback action asks the person to type their question.

Something to read: a Chinese character, a digit (an application number), or a latin word
the training examples use ("ok", "app", "bye"). The latin words are collected when the
model is trained and persisted with it; a guard created without them (or loaded from a
model trained before they were kept) checks the first rule only.
"""
import json
import logging
import re
from typing import Any, Dict, FrozenSet, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from core.textnorm import has_content, normalize_text

logger = logging.getLogger(__name__)

WORDS_FILE = "latin_words.json"
_LATIN_WORD = re.compile(r"[a-z]+")
_READABLE = re.compile(r"[\u4e00-\u9fff0-9]")


def latin_words(text: str) -> List[str]:
    return _latin_words_in(normalize_text(text))


def _latin_words_in(normalized: str) -> List[str]:
    return _LATIN_WORD.findall(normalized.lower())


def nothing_to_read(text: str, known_latin: Optional[FrozenSet[str]]) -> bool:
    """True for "？？？" and, when the training data's latin words are known, for text of
    only unknown latin words ("qwerty asdf")."""
    if not has_content(text):
        return True
    if known_latin is None:
        return False
    normalized = normalize_text(text)  # once per message: the conversion is the costly part
    if _READABLE.search(normalized):
        return False
    return not any(word in known_latin for word in _latin_words_in(normalized))


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class ContentFreeMessageGuard(GraphComponent):
    def __init__(self, known_latin: Optional[FrozenSet[str]] = None,
                 model_storage: Optional[ModelStorage] = None, resource: Optional[Resource] = None) -> None:
        self.known_latin = known_latin
        self._model_storage = model_storage
        self._resource = resource

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ContentFreeMessageGuard":
        return cls(None, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        words = sorted({word for example in training_data.training_examples
                        for word in latin_words(example.get(TEXT) or "")})
        self.known_latin = frozenset(words)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / WORDS_FILE).write_text(json.dumps(words), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "ContentFreeMessageGuard":
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / WORDS_FILE).read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            logger.warning("ContentFreeMessageGuard: no latin words in the model; only empty messages are guarded.")
            return cls(None, model_storage, resource)
        return cls(frozenset(words), model_storage, resource)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str) and text and not text.startswith("/") and nothing_to_read(text, self.known_latin):
                fallback = {"name": DEFAULT_NLU_FALLBACK_INTENT_NAME, "confidence": 1.0}
                message.set(INTENT, fallback, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [fallback], add_to_output=True)
        return messages
