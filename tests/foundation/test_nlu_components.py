"""Our NLU pipeline components, without training a model."""


def test_editing_the_domain_dictionary_changes_the_tokenizer_fingerprint(tmp_path):
    """Otherwise Rasa's training cache would keep tokenising with the old words."""
    from assistant.nlu.jieba_tokenizer import DomainJiebaTokenizer

    (tmp_path / "dict.txt").write_text("门诊慢特病 10 n\n", encoding="utf-8")
    config = {"dictionary_path": str(tmp_path)}
    before = DomainJiebaTokenizer.fingerprint_addon(config)
    assert before == DomainJiebaTokenizer.fingerprint_addon(config)
    (tmp_path / "dict.txt").write_text("门诊慢特病 10 n\n特殊病种 10 n\n", encoding="utf-8")
    assert DomainJiebaTokenizer.fingerprint_addon(config) != before
    assert DomainJiebaTokenizer.fingerprint_addon({"dictionary_path": str(tmp_path / "missing")}) is None
