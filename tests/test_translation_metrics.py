"""The translation metric (msmae/metrics/sign_translation) against values computed by hand."""

import math

import pytest

from msmae.metrics import TRANSLATION_METRIC_PATH, load_translation_metric
from msmae.metrics.sign_translation.sign_translation import (
    corpus_rouge_l,
    lcs_length,
    normalize_width,
    rouge_l_f1,
    tokenizer_for_language,
    translation_scores,
)


def test_german_sentence_by_hand():
    # 13a tokens: a b c d e vs a b c d f. Matching n-grams: 4/5, 3/4, 2/3, 1/2; equal lengths, so no brevity
    # penalty. BLEU-4 = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25; LCS = 4, so ROUGE-L F1 = 4/5.
    scores = translation_scores(["a b c d e"], ["a b c d f"], language="de_DE")
    assert scores["bleu1"] == pytest.approx(80.0)
    assert scores["bleu4"] == pytest.approx(100 * 0.2**0.25)
    assert scores["rougeL"] == pytest.approx(80.0)
    assert scores["tokenize"] == "13a"
    assert scores["bleu4_signature"] == scores["bleu1_signature"]
    assert scores["bleu4_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_brevity_penalty_by_hand():
    # Every unigram of the 3-token hypothesis matches, but the reference has 5: BP = exp(1 - 5/3).
    scores = translation_scores(["a b c"], ["a b c d e"], language="en")
    assert scores["bleu1"] == pytest.approx(100 * math.exp(1 - 5 / 3))
    # LCS 3: precision 1, recall 3/5, F1 = 2 * 3/5 / (1 + 3/5) = 3/4.
    assert scores["rougeL"] == pytest.approx(75.0)


def test_13a_splits_punctuation_for_bleu_and_rouge():
    # "Hallo, Welt." -> Hallo , Welt . ; against "Hallo Welt": unigrams 2/4 match, the reference is shorter (no BP).
    scores = translation_scores(["Hallo, Welt."], ["Hallo Welt"], language="de")
    assert scores["bleu1"] == pytest.approx(50.0)
    # LCS 2 of 4 and 2 tokens: P = 1/2, R = 1, F1 = 2/3.
    assert scores["rougeL"] == pytest.approx(200 / 3)


def test_chinese_is_scored_per_character():
    # zh tokens: 今 天 天 气 不 好 。 vs 今 天 天 气 很 好 。 -> n-gram matches 6/7, 4/6, 2/5, 1/4.
    scores = translation_scores(["今天天气不好。"], ["今天天气很好。"], language="zh_CN")
    assert scores["tokenize"] == "zh"
    assert scores["bleu1"] == pytest.approx(600 / 7)
    assert scores["bleu4"] == pytest.approx(100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    # LCS 今天天气好。 = 6 of 7 on both sides. (rouge-score's tokenizer would drop every character and give 0.)
    assert scores["rougeL"] == pytest.approx(600 / 7)
    assert "tok:zh" in scores["bleu4_signature"]


def test_width_correction_reports_both_scores():
    # mBART generates half-width punctuation; the CSL-Daily style reference has full-width forms.
    prediction, reference = "你好,世界!", "你好，世界！"
    scores = translation_scores([prediction], [reference], language="zh")
    assert scores["bleu4"] == pytest.approx(100.0) and scores["rougeL"] == pytest.approx(100.0)
    # Uncorrected: 你 好 , 世 界 ! vs 你 好 ， 世 界 ！: matches 4/6, 2/5, 0/4, 0/3. sacrebleu's default 'exp'
    # smoothing turns the k-th zero count into 1 / (2^k * total): 1/8 and 1/12.
    assert scores["bleu1_uncorrected"] == pytest.approx(400 / 6)
    assert scores["bleu4_uncorrected"] == pytest.approx(100 * (4 / 6 * 2 / 5 * 1 / 8 * 1 / 12) ** 0.25)
    assert scores["rougeL_uncorrected"] == pytest.approx(400 / 6)


def test_text_without_full_width_forms_scores_the_same_either_way():
    scores = translation_scores(["und nun das wetter ."], ["und nun die wettervorhersage ."], language="de")
    for name in ("bleu1", "bleu4", "rougeL"):
        assert scores[name] == scores[f"{name}_uncorrected"]


def test_normalize_width():
    assert normalize_width("（Ａ１）：，。！？　") == "(A1):,。!? "
    assert normalize_width("für morgen") == "für morgen"


def test_lcs_and_rouge_l_f1():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (BCBA)
    assert lcs_length([], ["a"]) == 0
    assert rouge_l_f1(["a", "b"], ["b", "a"]) == pytest.approx(0.5)
    assert rouge_l_f1([], ["a"]) == 0.0 and rouge_l_f1(["a"], []) == 0.0


def test_corpus_rouge_l_is_the_mean_of_best_sentence_scores():
    # Sentence 1: best reference is identical (1.0); sentence 2: LCS 1 of 2 and 1 token -> F1 = 2/3.
    score = corpus_rouge_l(["x y", "p q"], [["a b", "x y"], ["q"]])
    assert score == pytest.approx(100 * (1.0 + 2 / 3) / 2)


def test_multiple_references_and_lowercase():
    scores = translation_scores(["The cat"], [["the cat", "a dog"]], language="en", lowercase=True)
    assert scores["bleu1"] == pytest.approx(100.0) and scores["rougeL"] == pytest.approx(100.0)
    assert "case:lc" in scores["bleu1_signature"] and "nrefs:2" in scores["bleu1_signature"]


def test_tokenizer_for_language():
    assert [tokenizer_for_language(x) for x in ("zh", "zh_CN", "zh-Hant", "de_DE", "en", None)] == [
        "zh", "zh", "zh", "13a", "13a", "13a"
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"predictions": ["a"], "references": ["a", "b"]}, "1 predictions but 2 references"),
        ({"predictions": [], "references": []}, "No predictions"),
        ({"predictions": ["a", "b"], "references": [["a"], ["b", "c"]]}, "same number"),
        ({"predictions": ["a"], "references": ["a"], "tokenize": "nope"}, "Unknown sacrebleu tokenizer"),
    ],
)
def test_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        translation_scores(**kwargs)


def test_loads_offline_as_an_evaluate_module(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = load_translation_metric()
    assert metric.name == "sign_translation"
    predictions = ["你好,世界!", "今天天气不好。"]
    references = ["你好，世界！", "今天天气很好。"]
    result = metric.compute(predictions=predictions, references=references, language="zh_CN")
    assert result == translation_scores(predictions, references, language="zh_CN")
    assert TRANSLATION_METRIC_PATH.endswith("sign_translation")
