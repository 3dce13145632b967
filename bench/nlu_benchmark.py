"""NLU benchmark on the three held-out test sets, with the calibration of the clarification.

    make bench-nlu      # or: python -m bench.nlu_benchmark

The three sets are never trained on: tests/nlu/test_set.yml (the in-house set),
tests/nlu/hard_set.yml (written apart from the training data: dialect, traditional
characters, voice typos, long and two-topic messages) and tests/nlu/fresh_set.yml (written
blind, not used to choose the pipeline or the data). Four systems, all trained on the same
data (data/nlu, incl. the generated disease lookup):

(a) our pipeline: the trained model .state/models/assistant.tar.gz (`make train`; this
    script never trains it), with config.yml's FallbackClassifier thresholds replayed on
    the intent classifiers' ranking - DIET averaged with the TF-IDF classifier,
    assistant/nlu/tfidf_classifier.py (bench/calibrate.py);
(b) Rasa's default pipeline (the default_config.yml that ships with Rasa, language zh, so
    its WhitespaceTokenizer - which Rasa rejects for zh - is replaced by Rasa's stock
    JiebaTokenizer; DIET/ResponseSelector seeded). Trained here, in a temporary directory;
    Rasa's training cache (.rasa/cache) makes a rerun on unchanged data quick;
(c) TF-IDF character n-grams + logistic regression (scikit-learn);
(d) nearest neighbour: the intent of the most similar training example (cosine of
    character 1-3-gram counts, no weights learned) - what an easy test set rewards.

Measures per set: the top intent (accuracy, macro-F1, as `rasa test nlu` and the
`make test` floors count) and what a person gets: answered directly with the right intent,
answered directly with a wrong one, and "您是想问…？" although the top intent was right.
(c) and (d) never clarify. Then the calibration grid and choice (bench/calibrate.py), (a)'s
per-intent recall, its top confusions with a note on what the conversation does with each,
and its errors. Prints the tables and writes docs/nlu-benchmark.md.
"""
import argparse
import collections
import datetime
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONPATH", str(ROOT))

from bench import calibrate  # noqa: E402
from bench.calibrate import read_examples  # noqa: E402
from core.textnorm import normalize_text  # noqa: E402
from tools import build_nlu  # noqa: E402
from tools.train_inputs import train_inputs  # noqa: E402

SEED = 20251
SET_NAMES = ("in-house", "hard", "fresh", "blind")
CONFUSION_MIN_COUNT = 2   # pairs seen at least this often get a row (at most MAX_CONFUSIONS)
MAX_CONFUSIONS = 15

# What the conversation does when (a) takes the first intent for the second (the hard
# set's confusions that occur at least twice). Reviewed by hand against actions/,
# assistant/, data/rules/ and knowledge/ for the model of 2026-12-03; a pair without a note
# is printed as "not reviewed". "Clarified" is the "您是想问A，还是B？" of actions/fallback.py,
# whose guesses skip intents without a title in knowledge/intents.yml.
CONFUSION_NOTES: Dict[Tuple[str, str], str] = {
    ("inform_guide_for_whom", "ask_apply_for_others"):
        "Right. Mid-walk (after 给自己还是帮家人？) the family-application answer comes first, then "
        "action_guide_offer_resume: walk.py offer_resume reads the person from the text (妈, 岳母, 孩子 …) "
        "and goes on; with words outside the for_whom keywords (老汉儿, 外婆, 奶奶) it asks 继续第N步吗？ "
        "and the walk then counts that ask_apply_for_others turn as 为家人 (whom_from_earlier). Outside a "
        "walk the family-application answer is the right one.",
    ("ask_materials", "ask_lost_documents"):
        "Not right. Answered: the re-issue advice (补病历/诊断证明/报告) instead of the materials list. "
        "Clarified: 资料丢了怎么办 and a second guess. Materials examples worded 证件/单子/检查报告/"
        "化验单, and contrast groups against lost papers, were added in the fifth session; this pair "
        "is still the most frequent one.",
    ("inform_guide_channel", "ask_channel"):
        "Mostly right. Mid-walk: the channel comparison, then offer_resume takes the channel named in the "
        "text (大厅 → window, 微信/小程序 → mini program) and goes on at its step 1; with no channel "
        "keyword (四川医保软件) it asks 继续第N步吗？ and a plain 好 gets the default channel. Outside a "
        "walk the comparison fits. Clarified: 在哪里申请 is offered, the walk is not.",
    ("guide_stuck", "deny"):
        "Not right. Answered mid-walk, deny pauses the walk (data/rules/guide.yml) instead of the "
        "troubleshooting advice. Clarified: guide_stuck has no title, so it is never offered and the "
        "guesses are unrelated (以前的慢病本, 查申请进度); 都不是 → human route. Needs examples (卡住, "
        "找不到按钮) and a title for guide_stuck.",
    ("ask_channel", "start_guide"):
        "Partly right. The walk opens with the channel choice (mini program recommended, APP and window "
        "as buttons), which answers 哪个简单 but not 没有智能手机 (the window is only a button). "
        "Clarified: 手机上怎么申请 first, 在哪里申请 only sometimes second.",
    ("ask_eligibility", "out_of_scope"):
        "Not right. Answered: “这个问题我答不了 … 12393” to an eligibility question about 居民医保. "
        "Clarified: out_of_scope has no title and 谁能申请 is not among the guesses.",
    ("ask_rejected", "ask_result_notification"):
        "Half right. The notification answer (短信/APP消息) instead of what to do after a rejection; its "
        "follow-up button is 没通过怎么办 (knowledge/topics.yml result_notification.next), one tap away.",
    ("ask_reimbursement", "ask_eligibility"):
        "Right after one tap when clarified: 谁能申请 first, 报销比例和限额 second. Answered directly it "
        "would be the eligibility text – wrong.",
    ("ask_human", "bot_challenge"):
        "Right either way. bot_challenge's answer (utter_iamabot) says it is not a person and gives "
        "12393; clarified, bot_challenge has no title, so 找人工、打电话 is the first guess.",
    ("inform_guide_channel", "start_guide"):
        "Right when answered: action_guide's walk reads the channel from the text of start_guide too "
        "(“就用四川医保APP” → APP, step 1). Clarified: inform_guide_channel has no title; tapping "
        "手机上怎么申请 starts the walk, which asks the channel once more.",
    ("out_of_scope", "start_guide"):
        "Acceptable. Low confidence, so clarified with unrelated guesses (out_of_scope has no title); "
        "都不是 gives the human route with 12393, not the short “只管门诊慢特病” answer. Answered it would "
        "start the walk – wrong.",
    ("stop", "check_progress"):
        "Not right. “不查了，退出” starts the lookup, or inside the progress form asks for the number "
        "again; a second 退出 ends it (data/rules/progress.yml). Needs stop examples that mention 进度.",
}


# The measurements behind config.yml's intent classification (issue 14), written into the
# report as they are: they come from trainings this script does not repeat.
PIPELINE_CHOICE = """\
## Pipeline choice (issue 14): DIET averaged with TF-IDF + logistic regression

Measured 2026-12-03 on both held-out sets, each candidate trained with `rasa train` as `make train` does
(same data and seeds, empty Rasa cache of its own, one training at a time on the shared 2-core machine,
load average 5–7 throughout, so the training times compare with each other, not with a quiet machine).
*Right / wrong / needless* are the outcomes of the calibration below at each candidate's own thresholds,
chosen by `bench/calibrate.py`'s rule on the hard set (hard set 632 utterances, in-house 385).

| Candidate | Hard: accuracy | In-house: accuracy | Thresholds | Hard: right / wrong / needless | In-house: right / wrong / needless | `rasa train` |
|---|---:|---:|---|---:|---:|---:|
| before: DIET 80 epochs alone | 82.0% | 95.3% | 0.60 / 0.08 | 74.8% / 7.0% / 7.1% | 92.2% / 2.3% / 3.1% | 681 s |
| A: TF-IDF + LogReg alone (DIET removed) | 86.7% | 92.7% | 0.30 / 0.12 | 72.9% / 4.9% / 13.8% | 87.8% / 2.6% / 4.9% | LR fit 6 s CPU |
| **B: DIET 80 epochs + TF-IDF, averaged (adopted)** | **85.6%** | **96.4%** | **0.30 / 0.20** | **79.7% / 7.4% / 5.9%** | **93.8% / 2.6% / 2.6%** | **713 s** |
| B at the old thresholds | 85.6% | 96.4% | 0.60 / 0.08 | 66.1% / 3.0% / 19.5% | 87.3% / 1.0% / 9.1% | – |
| B': DIET 40 epochs + TF-IDF, averaged | 85.3% | 96.1% | 0.30 / 0.18 | 78.5% / 7.1% / 6.8% | 94.0% / 2.6% / 2.1% | 385 s |
| Rasa's LogisticRegressionClassifier in DIET's place (earlier, docs/performance.md) | 79.1% | – | – | – | – | – |

- **Adopted: B** (config.yml). `assistant/nlu/tfidf_classifier.py` (`TfidfIntentClassifier`) runs after
  DIET: TF-IDF over character 1–3-grams of the normalised text (sublinear tf) + logistic regression (C 10),
  the same model as (c), persisted with the Rasa model; with `weight: 0.5` the ranking the FallbackClassifier
  reads is ½ DIET + ½ its probabilities per intent. Against before: hard set +3.6 points (541 vs 518 of 632
  right on top), in-house +1.0 (371 vs 367 of 385); at the calibrated thresholds 504 vs 473 hard-set
  utterances answered right without a question, 47 vs 44 answered wrong, 37 vs 45 needless questions;
  in-house 361 vs 355 right, 10 vs 9 wrong, 10 vs 12 needless. Training: 713 s against 681 s back to back
  (+5 %; the TF-IDF model itself fits in about 6 s of CPU).
- B' (40 DIET epochs) would cut training to 57 % of before (385 s vs 681 s) and is nearly as accurate
  (2 utterances fewer on the hard set, 1 in-house), but it was not taken: its DIET half no longer outweighs
  the TF-IDF half on 诊断证明要盖章吗 (ask_lost_documents 0.31 before ask_materials 0.16, so "您是想问…？"),
  which fails the guide walk's end-to-end test (tests/guide/test_guide_e2e.py, a named channel); B answers
  it as ask_materials (0.45). Worth another look once the materials examples cover 盖章/诊断证明.
- A alone is the best on the hard set but under the in-house floor, and its flat probabilities ask
  needless questions (13.8 %) at any threshold that keeps wrong answers down.
- The weight is not tuned on the test sets: ½ is the plain average. Replayed offline on the 80-epoch DIET
  ranking, every weight from 0.3 to 0.7 beats before on both sets (hard 83.9–86.1 %, in-house 96.4–96.6 %).
  TF-IDF variants alone (C 20/50, char 1–2/1–4-grams, char_wb, balanced classes: hard 85.6–88.1 %,
  in-house 91.7–94.0 %) were not taken into the ensemble, for the same reason.
- The thresholds: the averaged confidences are flatter than DIET's (its top-10 ranking and the logistic
  regression's probabilities each sum to at most 1), so the old 0.60 turned a fifth of the hard set into
  needless questions; `bench/calibrate.py` chose 0.30 / 0.20, at the corner of its grid (lowest threshold, widest gap).

### After the colloquial examples (2026-12-03, third session)

About 100 new training examples for the intents that failed most on the hard set (stop, goodbye, who the
walk is for, the channel named in the walk, rejected, upload quality, reimbursement, after submit, the human
route, greetings), and six for what the diagnosis certificate must carry (盖章), checked with
`python -m bench.leak_check`. Same pipeline (B), same thresholds, `make test-nlu`:

| | hard set | in-house set |
|---|---:|---:|
| B before the examples | 85.6 % | 96.4 % |
| B with them | 88.4 % | 96.9 % |

Read that hard-set gain with care: the examples were written after looking at which intents the hard set's
misses fell into (not at its sentences), so the hard set measures partly what it guided. Hence the fresh set.

### The pinyin view and the blind examples (2026-12-03, fourth session)

Three changes, each measured on the model `make train` builds (top-intent accuracy, as `make test-nlu`
counts; the fresh set is the 293 utterances it has now, scored the same way for every row):

1. **Blind training examples**: 469 new examples, 12–15 for every intent, written by a helper session that
   was not allowed to open tests/, this report or bench/ – from the intents' meaning, knowledge/ and the
   existing training data only – in the styles people type (older people's wordy questions, dialect,
   traditional characters, voice-typing homophones, background first and question last, fragments, 慢病卡/
   门特/特病). 22 of them turned out to be near-copies of lines of the hard or in-house set (common
   phrasings, written independently) and were removed from the training data, so the established sets
   stay comparable.
2. **A pinyin view** in `TfidfIntentClassifier` (`pinyin: true`): TF-IDF over the toneless pinyin syllables
   (1–2-grams, pypinyin, its dictionaries ship in the wheel) of the Chinese characters, beside the character
   n-grams, so a voice-typing homophone (审和/审核, 进渡/进度, 慢特并/慢特病) shares features with the word
   meant. Latin letters and digits are left out of that view: as one-letter "syllables" they made any latin
   string look like the few latin training examples.
3. **The content guard learns the training data's latin words**: a message of only unknown latin words
   ("qwerty asdf") is `nlu_fallback`. With the new data DIET called it `goodbye` at 0.9, which ended the
   conversation (tests/knowledge/test_with_model.py caught it).

| Model | in-house (385) | hard (632) | fresh (293) |
|---|---:|---:|---:|
| before (the third session's model) | 96.9 % | 88.4 % | 91.5 % |
| blind examples + pinyin view + a "focus" view (not adopted) | 95.6 % | 91.1 % | – |
| blind examples + pinyin view | 95.1 % | 91.3 % | 95.2 % |
| **+ 17 guide_goto examples naming a step, the guard (adopted)** | **95.8 %** | **90.7 %** | **94.2 %** |

- The *focus* view counted the part after "但是/就是/想问…" a second time, for long messages that give the
  background first. Offline, on the TF-IDF half alone, it moved the hard set by +0.3 and the in-house set by
  −0.3 points; no clear gain on the two sets used for choosing, so it was removed rather than kept as an
  unused option.
- The pinyin view, on the TF-IDF half alone: hard +0.6, in-house −0.3 points (offline, same data).
- The in-house set lost 1.1 points with the blind examples (plain questions now taken for a neighbouring
  topic: 农民可不可以办慢特病 → 在哪里申请, 怎麼辦理門診慢特病 → the walk), while the two real-style
  sets gained 2.3 (hard) and 2.7 (fresh) points. The in-house floor went from 95 % to 94 %, the hard floor
  from 86 % to 89 %; the fresh set has a 92 % floor, and the hard set a per-intent floor of 60 %
  (lowest measured: ask_materials 67 %), so a whole intent can no longer fail silently.
- **The fresh set** (`tests/nlu/fresh_set.yml`) was written at the start of this session by a second helper
  session, blind in the other direction (no training data, no other test set): 468 utterances, 12 per
  intent. 169 of them were near-copies of training examples – the short common phrasings people really
  type ("查进度", "慢病本"), which the leak check keeps out of every held-out set, so all three sets
  under-represent them – and were removed. Its misses were looked at once: 6 of 7 guide_goto lines named a
  step instead of a number ("去实名认证那一步"), which the walk could not do. That was built
  (assistant/guide/walk.py, `named_step`; 17 training examples), and those six lines were removed from the
  fresh set because they were quoted while building it. Nothing else in the set was consulted.
- Against the goal (hard set ≥ 95 %, every intent ≥ 85 %, ≤ 2 % wrong answers, ≤ 3 % needless
  questions) this is still short: 90.7 %, 6.0 % answered wrong and 3.0 % needlessly clarified at the
  thresholds of config.yml (bench/calibrate.py replay). The remaining misses are spread thinly over many
  intents (no intent under 67 %), most of them neighbouring topics (materials ↔ lost documents ↔ hospital
  requirement, channel ↔ the walk, rejected ↔ result notification).

### More blind examples, TF-IDF at 0.7 of the vote (2026-12-03, fifth session)

1519 new training examples in three batches, each written by helper sessions that were not allowed to open
tests/, this report, bench/ or the blind set, from a one-page description of the intents (the product, what
each intent means, which neighbours to keep apart) and the existing training data, which they were told not
to copy. A batch's near-copies of any held-out line were dropped from the batch (36 in all), so every set
stays comparable; so were near-copies of training lines of the same intent.

1. 533 examples for the question intents and for the conversation and walk moves, 8–30 an intent, in
   the styles people type (dialect, traditional characters, voice-typing homophones, background first,
   two topics with one main question, fragments).
2. 426 examples written *as personas*: a farmer using voice input, a daughter helping her father from
   成都, a retired teacher writing traditional characters, a terse young man, a countrywoman speaking
   dialect, a transplant patient asking three things at once, a holder of the old 慢病本, someone checking
   back on a submitted application.
3. 560 examples: minimal-contrast groups (the same person and documents, one message per neighbouring
   intent: materials / lost documents / which hospital / the form; channel / the walk / the procedure;
   progress / after submitting / how the result comes …) and long, voice-typed and two-question messages.

With batch 1 in, the TF-IDF half was re-fitted offline on DIET's ranking of the same model (the fourth
session's harness, `combine` replayed), at weights 0.5, 0.6, 0.7 and 1.0 and C 10 and 30: 0.7 and C 30
were best on both sets used for choosing (hard 92.1 → 93.5 %, in-house unchanged at 97.4 %), and the
fresh and blind sets agreed. The logistic regression had become the better half on real-style text once
it had more of it to learn from; DIET still helps the plain questions (TF-IDF alone: in-house 96.1 %).

| Model (`make train`, top-intent accuracy as `make test-nlu` counts) | in-house (385) | hard (632) | fresh (293) | blind (379) |
|---|---:|---:|---:|---:|
| before (the fourth session's model) | 95.8 % | 90.7 % | 94.2 % | 92.1 % |
| + batch 1 | 97.4 % | 92.1 % | 94.2 % | 95.5 % |
| + batch 2, weight 0.7, C 30 | 98.2 % | 93.5 % | 97.3 % | 96.6 % |
| **+ batch 3 (adopted)** | **97.1 %** | **93.8 %** | **96.9 %** | **97.4 %** |

- The blind set (`tests/nlu/blind_set.yml`) was written at the start of this session, before any of the
  batches, by a helper who read only the one-page description; its first column was 380 utterances (one
  line that repeated another in traditional characters was removed since). Nobody has read its misses;
  this report gives its scores only.
- Batch 3 cost the in-house set 1.1 points (4 utterances, mostly short walk replies) and gained 0.3 on the
  hard set. It was kept for what people get: at config.yml's thresholds the hard set's wrong answers fall
  from 4.3 % to 3.8 % at the same 1.7 % of needless questions (bench/calibrate.py replay on both models),
  and the blind set gained 0.8 points.
- The calibration below then moved the ambiguity threshold from 0.20 to 0.14 (the documented rule: the
  lowest wrong/2 % + needless/3 %). Against the fourth session's model at its thresholds, on the hard set:
  right 87.7 → 93.0 %, wrong 6.0 → 4.1 %, needless questions 3.0 → 0.8 %.
- Floors in `make test-nlu` went up to about two points under these numbers: in-house 95 %, hard 92 % and
  no intent under 70 %, fresh 94 %, blind 95 %.
- Still short of the goal: 93.8 % against 95 %, 4.1 % wrong against 2 %; ask_materials (73 %) and
  out_of_scope (81 %) are under the 85 % per-intent goal.
- Cost: training. DIET's epochs took 4 s with the old data and 8–11 s with the new (its input is the
  count vectors, which grew with the vocabulary); `make train` from scratch took 6.6 min before and 16 min
  after on this session's loaded machine. Prediction is unchanged in kind (the same two classifiers).
"""


def scores(gold: Sequence[str], top: Sequence[str], clarified: Optional[Sequence[bool]] = None) -> Dict[str, float]:
    """Top-intent accuracy and macro-F1 (as `rasa test nlu` counts), and the shares a person
    sees: answered right, answered wrong, clarified although the top intent was right."""
    from sklearn.metrics import accuracy_score, f1_score

    clarified = clarified or [False] * len(gold)
    right = [g == t for g, t in zip(gold, top)]
    n = len(gold)
    return {
        "accuracy": accuracy_score(gold, top),
        "macro_f1": f1_score(gold, top, labels=sorted(set(gold)), average="macro", zero_division=0),
        "right": sum(r and not c for r, c in zip(right, clarified)) / n,
        "wrong": sum(not r and not c for r, c in zip(right, clarified)) / n,
        "clarified_right": sum(r and c for r, c in zip(right, clarified)) / n,
    }


def train_rasa(config_path: pathlib.Path, out_dir: pathlib.Path, name: str) -> str:
    from rasa.model_training import train_nlu

    model = train_nlu(
        config=str(config_path), nlu_data=str(ROOT / "data"), output=str(out_dir),
        fixed_model_name=name, domain=str(ROOT / "domain"),
    )
    if not model:
        raise RuntimeError(f"training with {config_path} failed")
    return model


def rasa_outcomes(agent, examples, thresholds=None):
    """(top intents, clarified flags, parsed) of a loaded Rasa model; the decision is
    replayed at `thresholds` (default: the model's own)."""
    parsed = calibrate.parse(agent, examples)
    thresholds = thresholds or calibrate.model_thresholds(agent)
    top = [item.top or "nlu_fallback" for item in parsed]
    if thresholds is None:
        clarified = [item.final == "nlu_fallback" for item in parsed]
    else:
        clarified = [item.guarded or calibrate.falls_back(item.ranking, *thresholds) for item in parsed]
    return top, clarified, parsed


def default_config(directory: pathlib.Path) -> pathlib.Path:
    import rasa.engine.recipes

    source = pathlib.Path(rasa.engine.recipes.__file__).parent / "config_files" / "default_config.yml"
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["language"] = "zh"
    config["assistant_id"] = "benchmark-default"
    for component in config["pipeline"]:
        if component["name"] == "WhitespaceTokenizer":
            # Rasa refuses WhitespaceTokenizer for zh; its stock Chinese tokenizer, no dictionary
            component["name"] = "JiebaTokenizer"
        if component["name"] in ("DIETClassifier", "ResponseSelector"):
            component["random_seed"] = SEED
    config.pop("policies", None)
    path = directory / "default_config.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def tfidf_baseline(train: List[Tuple[str, str]], texts: List[str]) -> List[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True,
                        preprocessor=normalize_text),
        LogisticRegression(C=10.0, max_iter=2000, random_state=SEED),
    )
    model.fit([text for text, _ in train], [intent for _, intent in train])
    return list(model.predict(texts))


def nearest_neighbour(train: List[Tuple[str, str]], texts: List[str]) -> List[str]:
    """The intent of the training example with the highest cosine similarity of character
    1-3-gram counts (normalised text); nothing is learned beyond the vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 3), preprocessor=normalize_text)
    known = normalize(vectorizer.fit_transform([text for text, _ in train]))
    asked = normalize(vectorizer.transform(texts))
    best = (asked @ known.T).toarray().argmax(axis=1)
    return [train[index][1] for index in best]


# --- report ------------------------------------------------------------------------------

def tfidf_share() -> float:
    """config.yml's `weight` of TfidfIntentClassifier: its share of the averaged ranking."""
    return float(calibrate.config_component("TfidfIntentClassifier").get("weight", 1.0))


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stale_inputs(model: pathlib.Path) -> List[str]:
    """Training inputs (the Makefile's TRAIN_INPUTS) newer than the model."""
    paths = ["config.yml", "tools/build_nlu.py", "knowledge/diseases.yml", "knowledge/responses.yml",
             "knowledge/contacts.yml", *train_inputs(ROOT)]
    for top in ("domain", "data", "assistant/nlu"):
        paths += [p.relative_to(ROOT).as_posix() for p in (ROOT / top).rglob("*")
                  if p.is_file() and p.suffix in (".yml", ".py", ".txt") and "generated" not in p.parts]
    built = model.stat().st_mtime
    return sorted({p for p in paths if (ROOT / p).is_file() and (ROOT / p).stat().st_mtime > built})


def results_table(rows: Dict[str, Dict[str, Dict[str, float]]]) -> List[str]:
    lines = []
    for set_name in SET_NAMES:
        lines += [
            "",
            f"**{set_name} set**",
            "",
            "| Pipeline | Intent accuracy | Macro-F1 | Right, not clarified | Wrong, not clarified | Clarified while right |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, by_set in rows.items():
            r = by_set[set_name]
            lines.append(f"| {name} | {r['accuracy']:.1%} | {r['macro_f1']:.3f} | {r['right']:.1%} | "
                         f"{r['wrong']:.1%} | {r['clarified_right']:.1%} |")
    return lines


def per_intent(parsed) -> List[Tuple[str, float, int, str]]:
    """(intent, recall, support, most frequent wrong prediction) of (a), lowest recall first."""
    support, hits = collections.Counter(), collections.Counter()
    wrong = collections.defaultdict(collections.Counter)
    for item in parsed:
        support[item.gold] += 1
        if item.top == item.gold:
            hits[item.gold] += 1
        else:
            wrong[item.gold][item.top] += 1
    rows = []
    for intent in support:
        common = wrong[intent].most_common(1)
        rows.append((intent, hits[intent] / support[intent], support[intent],
                     f"{common[0][0]} ({common[0][1]})" if common else ""))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def confusions(parsed, clarified) -> List[Tuple[Tuple[str, str], int, int]]:
    """((gold, predicted), count, of which answered without clarifying), most frequent first."""
    counts, answered = collections.Counter(), collections.Counter()
    for item, asked in zip(parsed, clarified):
        if item.top != item.gold:
            counts[(item.gold, item.top)] += 1
            if not asked:
                answered[(item.gold, item.top)] += 1
    return [(pair, n, answered[pair]) for pair, n in
            sorted(counts.items(), key=lambda kv: (-kv[1], -answered[kv[0]], kv[0]))]


def error_rows(parsed, clarified) -> List[Tuple[str, str, str, float, str]]:
    """(text, expected, predicted, confidence, what happens) for every top-intent error."""
    rows = []
    for item, asked in zip(parsed, clarified):
        if item.top != item.gold:
            confidence = item.ranking[0][1] if item.ranking else 1.0
            rows.append((item.text, item.gold, item.top or "nlu_fallback", confidence,
                         "您是想问…？" if asked else "answered as the predicted intent"))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(context, rows, calibration_md, hard_parsed, hard_clarified, errors) -> str:
    c = context
    lines = [
        "# NLU benchmark",
        "",
        "Written by `make bench-nlu` (bench/nlu_benchmark.py, bench/calibrate.py); do not edit by hand.",
        "",
        f"- In-house set: `tests/nlu/test_set.yml`, {c['sizes']['in-house']} utterances over "
        f"{c['intents']['in-house']} intents, written separately from the training data and never trained on "
        "(plain Mandarin, Sichuan dialect, typos/homophones, traditional characters, voice-style run-ons, fragments).",
        f"- Hard set: `tests/nlu/hard_set.yml`, {c['sizes']['hard']} utterances over {c['intents']['hard']} intents, "
        "written by a different procedure (elderly colloquial, Sichuan dialect, traditional characters, "
        "voice-typing errors, long messages with context, two topics in one message, fragments); never "
        "trained on; the leak check (bench/leak_check.py) keeps near-copies of training examples out of every set.",
        f"- Fresh set: `tests/nlu/fresh_set.yml`, {c['sizes']['fresh']} utterances over {c['intents']['fresh']} "
        "intents, written blind (from the intents' meaning only, without seeing the training data or the other "
        "sets) and not used to choose the pipeline or the data (its misses were looked at once; see \"The "
        "pinyin view and the blind examples\"): the check on how much of the hard set's gain is real. Its "
        "near-copies of training examples were removed (common short phrasings).",
        f"- Blind set: `tests/nlu/blind_set.yml`, {c['sizes']['blind']} utterances over {c['intents']['blind']} "
        "intents, written by a helper who read only a one-page description of the product and its intents "
        "(nothing of the project's data, tests or docs), after the fresh set had been consulted once. Never "
        "used to choose anything, and its misses are deliberately not listed here, so that it stays unread.",
        f"- Training data: `data/nlu/` ({c['train_size']} examples incl. the disease lookup generated from `knowledge/`).",
        "- *Intent accuracy* and *macro-F1* score the top intent, as `rasa test nlu` (and the floors in "
        "`make test`) do. The next three say what a person gets: the right answer at once (*right, not "
        "clarified*), a wrong answer (*wrong, not clarified*), or \"您是想问…？\" although the top intent was "
        "right (*clarified while right*); the rest of 100 % is \"您是想问…？\" instead of a wrong answer. "
        "(c) and (d) never clarify.",
        f"- (a) is the trained model `.state/models/assistant.tar.gz` (built {c['model_built']}), "
        f"with config.yml's FallbackClassifier thresholds ({c['thresholds'][0]:.2f} / {c['thresholds'][1]:.2f}) "
        "replayed on the classifiers' ranking (DIET averaged with TF-IDF + LogReg). " + (
            "The model is up to date with its training inputs." if not c["stale"] else
            "Training inputs newer than the model: " + ", ".join(f"`{p}`" for p in c["stale"]) +
            " – `make train` before reading (a) as this commit's."),
        f"- Run: {c['date']}, commit {c['commit']}, Python {platform.python_version()}, "
        f"{c['seconds']:.0f} s wall-clock (Rasa reuses its cached training results for (b) when data and "
        "config are unchanged; (a) is loaded, not trained).",
    ]
    lines += results_table(rows)
    lines += [
        "",
        "(a) `config.yml`: normaliser (traditional→simplified, full→half width), Jieba with the "
        "domain and disease dictionary, regex/lookup features, word + character 1–3-gram counts, "
        f"DIET (seeded), averaged with a TF-IDF + logistic-regression intent classifier that has {c['tfidf_share']:g} "
        "of the vote "
        "(assistant/nlu/tfidf_classifier.py: character 1–3-grams as in (c), plus toneless pinyin 1–2-grams), "
        f"FallbackClassifier {c['thresholds'][0]:.2f} / ambiguity {c['thresholds'][1]:.2f}, "
        "then the content guard (messages of only punctuation/emoji or of only latin words the training data lacks → nlu_fallback).",
        "(b) Rasa's own `default_config.yml` with `language: zh`; Rasa rejects its WhitespaceTokenizer for "
        "Chinese, so Rasa's stock JiebaTokenizer (no domain dictionary) takes its place; otherwise as "
        "shipped (LexicalSyntacticFeaturizer, char_wb 1–4-grams, DIET 100 epochs, FallbackClassifier "
        f"{c['default_thresholds']}), DIET seeded for repeatability. No text normaliser.",
        "(c) scikit-learn TF-IDF over character 1–3-grams of the normalised text + logistic regression.",
        "(d) 1-nearest neighbour: the intent of the training example whose character 1–3-gram count "
        "vector (normalised text) has the highest cosine with the message. Nothing is learned, so a set "
        "on which (d) comes close to (a) mostly asks what the training data already says.",
        "",
        PIPELINE_CHOICE.rstrip("\n"),
        "",
        calibration_md.rstrip("\n"),
        "",
        "## Hard set: recall per intent of (a), lowest first",
        "",
        "| Intent | Recall | Utterances | Most often taken for |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {intent} | {recall:.0%} | {n} | {other} |" for intent, recall, n, other in per_intent(hard_parsed)]
    pairs = confusions(hard_parsed, hard_clarified)
    lines += [
        "",
        "## Hard set: top confusions of (a) and what the conversation does with them",
        "",
        "Top intent expected → predicted, how often, and how many of those were answered without "
        "\"您是想问…？\" at config.yml's thresholds. The note says whether the conversation still "
        "ends up right (reviewed by hand against actions/, assistant/ and data/rules/; kept in "
        "bench/nlu_benchmark.py, CONFUSION_NOTES).",
        "",
        "| Expected → predicted | Times | Answered directly | In conversation |",
        "|---|---:|---:|---|",
    ]
    shown = [entry for entry in pairs if entry[1] >= CONFUSION_MIN_COUNT][:MAX_CONFUSIONS]
    for (gold, predicted), n, answered in shown:
        note = CONFUSION_NOTES.get((gold, predicted), "not reviewed")
        lines.append(f"| {gold} → {predicted} | {n} | {answered} | {_cell(note)} |")
    rest = pairs[len(shown):]
    if rest:
        lines.append(f"| {len(rest)} other pairs | {sum(n for _, n, _ in rest)} | "
                     f"{sum(a for _, _, a in rest)} | see the errors below |")
    for set_name in ("hard", "fresh", "in-house"):
        lines += ["", f"## Errors of (a) on the {set_name} set (top intent)", ""]
        if errors[set_name]:
            lines += ["| Utterance | Expected | Predicted | Confidence | At config.yml's thresholds |", "|---|---|---|---:|---|"]
            lines += [f"| {_cell(text)} | {gold} | {pred} | {conf:.2f} | {what} |"
                      for text, gold, pred, conf, what in errors[set_name]]
        else:
            lines.append("None.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(calibrate.MODEL), help="(a)'s trained model")
    parser.add_argument("--out", default=str(ROOT / "docs" / "nlu-benchmark.md"))
    args = parser.parse_args(argv)
    calibrate.quiet_rasa()
    started = time.time()
    model_path = pathlib.Path(args.model)
    if not model_path.is_file():
        print(f"{model_path} is missing: `make train` first", file=sys.stderr)
        return 2
    stale = stale_inputs(model_path)
    if stale:
        print(f"NOTE: training inputs newer than {model_path.name}: {', '.join(stale)}", flush=True)

    build_nlu.main([])
    train = read_examples(sorted((ROOT / "data" / "nlu").rglob("*.yml")))
    sets = {name: read_examples([calibrate.SETS[name]]) for name in SET_NAMES}
    gold = {name: [intent for _, intent in examples] for name, examples in sets.items()}
    texts = {name: [text for text, _ in examples] for name, examples in sets.items()}

    from rasa.core.agent import Agent

    rows: Dict[str, Dict[str, Dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-nlu-") as tmp:
        tmp_dir = pathlib.Path(tmp)
        # (b) first, trained and asked before (a) is loaded: Jieba keeps a user dictionary
        # process-wide once (a)'s tokenizer has loaded ours.
        print("(b) training Rasa's default pipeline …", flush=True)
        default_agent = Agent.load(train_rasa(default_config(tmp_dir), tmp_dir, "default"))
        default_thresholds = calibrate.model_thresholds(default_agent)
        default = {name: rasa_outcomes(default_agent, examples) for name, examples in sets.items()}
        del default_agent
    print(f"(a) our pipeline: {model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path} …",
          flush=True)
    agent = calibrate.load_agent(model_path)
    cal = calibrate.calibrate(agent, sets)
    thresholds = cal.config
    ours = {}
    for name in SET_NAMES:
        parsed = cal.parsed[name]
        ours[name] = ([item.top or "nlu_fallback" for item in parsed],
                      [item.guarded or calibrate.falls_back(item.ranking, *thresholds) for item in parsed])
    rows["(a) ours: config.yml"] = {name: scores(gold[name], *ours[name]) for name in SET_NAMES}
    rows["(b) Rasa default pipeline"] = {name: scores(gold[name], *default[name][:2]) for name in SET_NAMES}
    print("(c) TF-IDF char n-grams + logistic regression, (d) nearest neighbour …", flush=True)
    rows["(c) TF-IDF char n-gram + LogReg"] = {name: scores(gold[name], tfidf_baseline(train, texts[name]))
                                              for name in SET_NAMES}
    rows["(d) 1-NN, char n-gram cosine"] = {name: scores(gold[name], nearest_neighbour(train, texts[name]))
                                           for name in SET_NAMES}

    errors = {name: error_rows(cal.parsed[name], ours[name][1]) for name in SET_NAMES}

    print()
    for set_name in SET_NAMES:
        print(f"{set_name} set ({len(sets[set_name])} utterances):")
        print(f"  {'pipeline':34} {'accuracy':>9} {'macro-F1':>9} {'right':>7} {'wrong':>7} {'clar.right':>10}")
        for name, by_set in rows.items():
            r = by_set[set_name]
            print(f"  {name:34} {r['accuracy']:>9.1%} {r['macro_f1']:>9.3f} {r['right']:>7.1%} "
                  f"{r['wrong']:>7.1%} {r['clarified_right']:>10.1%}")
    choice = cal.choice.point
    print(f"calibration (hard set): threshold {choice[0]:.2f}, ambiguity {choice[1]:.2f} "
          f"({'meets the goals' if cal.choice.feasible else 'closest to the goals'}); "
          f"config.yml {thresholds[0]:.2f} / {thresholds[1]:.2f}; replay mismatches {cal.mismatches}")
    context = {
        "sizes": {name: len(examples) for name, examples in sets.items()},
        "intents": {name: len(set(g)) for name, g in gold.items()},
        "train_size": len(train),
        "thresholds": thresholds,
        "tfidf_share": tfidf_share(),
        "default_thresholds": (f"{default_thresholds[0]:g} / ambiguity {default_thresholds[1]:g}"
                               if default_thresholds else "as shipped"),
        "model_built": datetime.datetime.fromtimestamp(model_path.stat().st_mtime, datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "stale": stale,
        "date": datetime.date.today().isoformat(),
        "commit": _git_head(),
        "seconds": time.time() - started,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(context, rows, calibrate.markdown_section(cal), cal.parsed["hard"], ours["hard"][1],
                            errors), encoding="utf-8")
    print(f"written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if cal.mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
