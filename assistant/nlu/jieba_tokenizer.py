"""Rasa's JiebaTokenizer, with the domain dictionary's content in its fingerprint.

Rasa reuses cached training results when config and training data are unchanged. The
dictionary (`dictionary_path`, written by tools/build_nlu.py from
assistant/nlu/domain_words.txt and knowledge/diseases.yml) is neither, so an edit to the
word list alone would train a model that still tokenises with the old words. Hashing
the dictionary files into the fingerprint makes such an edit retrain the tokenizer.
"""
import hashlib
import pathlib
from typing import Any, Dict, Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True)
class DomainJiebaTokenizer(JiebaTokenizer):
    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        directory = config.get("dictionary_path")
        if not directory or not pathlib.Path(directory).is_dir():
            return None
        digest = hashlib.sha256()
        for path in sorted(pathlib.Path(directory).rglob("*")):
            if path.is_file():
                digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
        return digest.hexdigest()
