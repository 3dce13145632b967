"""Rasa pipeline component: normalise message text before tokenisation.

Placed first in config.yml so training examples and live messages go through the
very same function (core.textnorm.normalize_text).
"""
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from core.textnorm import normalize_text


# Registered as a tokenizer-type component so the default recipe runs it in both the
# training and the prediction graph, in pipeline order (before JiebaTokenizer).
@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False
)
class ChineseTextNormalizer(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ChineseTextNormalizer":
        return cls()

    @staticmethod
    def _normalize(message: Message) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and text:
            normalized = normalize_text(text)
            if normalized.startswith("/") and not text.strip().startswith("/"):
                # a full-width "／" became "/": Rasa's RegexMessageHandler, later in the
                # graph, would run it as an intent. Buttons send a half-width "/" (and
                # only offered ones get through the channels, core/inbound.py).
                normalized = normalized.lstrip("/ ") or "?"
            message.set(TEXT, normalized)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            # Examples with annotated entities keep their text: entity offsets
            # point into it. Annotated examples are written in simplified Chinese.
            if not example.get("entities"):
                self._normalize(example)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalize(message)
        return messages
