"""The translation metric (msmae/metrics/sign_translation): reference values from independent implementations on
fixed German and Chinese sentence pairs, and hand-derived values for the edge cases."""

import math

import pytest

from msmae.metrics import TRANSLATION_METRIC_PATH, load_translation_metric
from msmae.metrics.sign_translation.sign_translation import (
    corpus_bleu_n,
    corpus_rouge_l,
    lcs_length,
    level_for_language,
    normalize_width,
    rouge_l,
    rouge_tokens,
    translation_scores,
)

# PHOENIX14T-style German (lower case, punctuation split off) and CSL-Daily-style Chinese (full-width punctuation in
# the references, half-width in two predictions, as an mBART model generates them).
GERMAN = [
    ("am tag scheint die sonne im norden und osten .", "am tag scheint im norden und osten oft die sonne ."),
    ("morgen regnet es im süden", "morgen regnet es im süden und südwesten ."),
    ("und nun die wettervorhersage für morgen freitag den vierten juli .",
     "und nun die wettervorhersage für morgen freitag den vierten juli ."),
    ("es wird kälter", "in der nacht wird es deutlich kälter ."),
]
CHINESE = [
    ("他今天去学校了。", "他今天没有去学校。"),
    ("你好,我是学生!", "你好，我是学生！"),
    ("这个苹果多少钱?", "这个苹果多少钱？"),
    ("我们明天一起去看电影吧", "明天我们一起去看电影，好吗？"),
]

# Reference values. Tokens as TwoStreamSLT makes them: German " ".join(text.split()), Chinese " ".join(list(text));
# "corrected" = full-width forms mapped to half-width in both sides first.
# - BLEU-1..4: sacrebleu 2.6.0, BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0, max_ngram_order=n)
#   .corpus_score(tokens) (signjoey's vendored sacrebleu `raw_corpus_bleu(...).scores` computes the same: floor
#   smoothing 0, cumulative BLEU-n). nltk 3.10.4's corpus_bleu agrees on BLEU-1..3 and on every Chinese value but
#   gives 56.3624 for German BLEU-4: it counts a sentence without 4-grams ("es wird kälter") as one 4-gram.
# - ROUGE-L: rouge 0.2.1 (PyPI `rouge`, the tf-seq2seq code TwoStreamSLT copies into utils/external_metrics/Rouge.py),
#   rouge_score.rouge_l_sentence_level([hyp_tokens], [ref_tokens])[0], averaged over the sentences, times 100.
# - ROUGE-L with beta 1.2 (signjoey's mscoco_rouge): pycocoevalcap 1.2, Rouge().calc_score([hyp], [ref]).
REFERENCE = {
    "german": {
        "bleu": [73.3194087081, 65.5788727766, 60.8423907567, 57.1735794301],
        "rougeL": 68.19829676970474,
        "rougeL_beta_1.2": 70.75012250681415,
    },
    "chinese": {
        "bleu": [84.1031457941, 77.7818825442, 71.1230974322, 65.2609605679],
        "bleu_uncorrected": [76.4574052674, 67.9707012535, 58.3261277491, 49.8114842242],
        "rougeL": 86.00550219243269,
        "rougeL_uncorrected": 76.63050219243269,
        "rougeL_beta_1.2": 86.03324138404099,
        "rougeL_beta_1.2_uncorrected": 76.65824138404099,
    },
}


def split(pairs):
    return [p for p, _ in pairs], [r for _, r in pairs]


def test_german_matches_the_reference_implementations():
    predictions, references = split(GERMAN)
    scores = translation_scores(predictions, references, language="de_DE")
    expected = REFERENCE["german"]
    assert scores["level"] == "word"
    assert [scores[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(expected["bleu"], abs=1e-8)
    assert scores["rougeL"] == pytest.approx(expected["rougeL"], abs=1e-8)
    # No full-width forms in German: the correction changes nothing.
    for name in ("bleu1", "bleu4", "rougeL", "sacrebleu"):
        assert scores[name] == scores[f"{name}_uncorrected"]
    coco = corpus_rouge_l(predictions, [[r] for r in references], level="word", beta=1.2)
    assert coco == pytest.approx(expected["rougeL_beta_1.2"], abs=1e-8)


def test_chinese_matches_the_reference_implementations():
    predictions, references = split(CHINESE)
    scores = translation_scores(predictions, references, language="zh_CN")
    expected = REFERENCE["chinese"]
    assert scores["level"] == "char"
    assert [scores[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(expected["bleu"], abs=1e-8)
    assert [scores[f"bleu{n}_uncorrected"] for n in range(1, 5)] == pytest.approx(expected["bleu_uncorrected"],
                                                                                 abs=1e-8)
    assert scores["rougeL"] == pytest.approx(expected["rougeL"], abs=1e-8)
    assert scores["rougeL_uncorrected"] == pytest.approx(expected["rougeL_uncorrected"], abs=1e-8)
    refs = [[r] for r in references]
    assert corpus_rouge_l(predictions, refs, level="char", beta=1.2) == pytest.approx(
        expected["rougeL_beta_1.2_uncorrected"], abs=1e-8)
    corrected = [normalize_width(p) for p in predictions], [[normalize_width(r)] for r in references]
    assert corpus_rouge_l(*corrected, level="char", beta=1.2) == pytest.approx(expected["rougeL_beta_1.2"], abs=1e-8)


def test_rouge_l_by_hand():
    # P = R = 4/5: the F-measure is 4/5 whatever beta.
    assert rouge_l(list("abcde"), list("abcdf")) == pytest.approx(0.8)
    # P = 1, R = 3/5. TwoStreamSLT: b = P/R = 5/3, F = (1 + b^2) P R / (R + b^2 P); coco-caption: b = 1.2.
    b2 = (5 / 3) ** 2
    assert rouge_l(list("abc"), list("abcde")) == pytest.approx((1 + b2) * 0.6 / (0.6 + b2), abs=1e-10)
    assert rouge_l(list("abc"), list("abcde"), beta=1.2) == pytest.approx(2.44 * 0.6 / (0.6 + 1.44))
    assert rouge_l(["a"], ["b"]) == 0.0 and rouge_l(["a"], ["b"], beta=1.2) == 0.0
    assert rouge_l([], ["a"]) == 0.0


def test_rouge_tokens_follow_twostreamslt():
    assert rouge_tokens("und  nun .", "word") == ["und", "nun", "."]
    assert rouge_tokens("", "word") == [""]
    # Characters; a space becomes two empty tokens (characters joined by spaces, split at single spaces).
    assert rouge_tokens("我 爱", "char") == ["我", "", "", "爱"]
    # rouge 0.2.1 on " ".join(list(...)): "我 爱 你" against "我爱你" scores 47.0270270269757.
    assert translation_scores(["我 爱 你"], ["我爱你"], language="zh")["rougeL"] == pytest.approx(47.0270270269757)
    assert translation_scores([""], ["我爱你"], language="zh")["rougeL"] == 0.0


def test_bleu_by_hand():
    # Matching n-grams 4/5, 3/4, 2/3, 1/2, equal lengths: BLEU-4 = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4).
    scores = translation_scores(["a b c d e"], ["a b c d f"], language="de_DE")
    assert scores["bleu1"] == pytest.approx(80.0) and scores["bleu2"] == pytest.approx(100 * (0.8 * 0.75) ** 0.5)
    assert scores["bleu4"] == pytest.approx(100 * 0.2**0.25)
    # Brevity penalty exp(1 - 5/3); no unigram is missing.
    assert translation_scores(["a b c"], ["a b c d e"])["bleu1"] == pytest.approx(100 * math.exp(1 - 5 / 3))
    # Counts are summed over the corpus: sentence 2 has no bigram, yet the corpus BLEU-2 is not 0.
    bleu = corpus_bleu_n(["a b", "c"], [["a b"], ["c"]], max_order=2)
    assert bleu == pytest.approx({"bleu1": 100.0, "bleu2": 100.0})
    # No smoothing: a corpus without any matching 3-gram has BLEU-3 and BLEU-4 of 0.
    scores = translation_scores(["a b x c d"], ["a b y c d"])
    assert scores["bleu3"] == 0.0 and scores["bleu4"] == 0.0 and scores["bleu2"] > 0


def test_words_are_whitespace_tokens():
    # TwoStreamSLT does not tokenize further: "welt." is one token, unlike sacrebleu's 13a ("welt" ".").
    scores = translation_scores(["hallo schöne neue welt."], ["hallo schöne neue welt ."])
    assert scores["bleu1"] == pytest.approx(100 * 3 / 4 * math.exp(1 - 5 / 4))
    assert scores["sacrebleu"] == pytest.approx(100.0)


def test_chinese_is_scored_per_character():
    # 今 天 天 气 不 好 。 vs 今 天 天 气 很 好 。 -> n-gram matches 6/7, 4/6, 2/5, 1/4; LCS 6 of 7 on both sides.
    scores = translation_scores(["今天天气不好。"], ["今天天气很好。"], language="zh_CN")
    assert scores["bleu1"] == pytest.approx(600 / 7)
    assert scores["bleu4"] == pytest.approx(100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    assert scores["rougeL"] == pytest.approx(600 / 7)
    assert "tok:zh" in scores["sacrebleu_signature"]


def test_width_correction_reports_both_scores():
    prediction, reference = "你好,世界!", "你好，世界！"
    scores = translation_scores([prediction], [reference], language="zh")
    for name in ("bleu1", "bleu4", "rougeL", "sacrebleu"):
        assert scores[name] == pytest.approx(100.0)
    # Uncorrected: 你 好 , 世 界 ! vs 你 好 ， 世 界 ！: matches 4/6, 2/5, 0/4, 0/3.
    assert scores["bleu1_uncorrected"] == pytest.approx(400 / 6)
    assert scores["bleu4_uncorrected"] == 0.0  # no smoothing
    assert scores["rougeL_uncorrected"] == pytest.approx(400 / 6)
    # sacrebleu's default 'exp' smoothing turns the k-th zero count into 1 / (2^k * total): 1/8 and 1/12.
    assert scores["sacrebleu_uncorrected"] == pytest.approx(100 * (4 / 6 * 2 / 5 * 1 / 8 * 1 / 12) ** 0.25)


def test_normalize_width():
    assert normalize_width("（Ａ１）：，。！？　") == "(A1):,。!? "
    assert normalize_width("für morgen") == "für morgen"


def test_lcs_length():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (BCBA)
    assert lcs_length([], ["a"]) == 0


def test_several_references_and_lowercase():
    scores = translation_scores(["The cat"], [["the cat", "a dog"]], language="en", lowercase=True)
    assert scores["bleu1"] == pytest.approx(100.0) and scores["rougeL"] == pytest.approx(100.0)
    assert "case:lc" in scores["sacrebleu_signature"] and "nrefs:2" in scores["sacrebleu_signature"]
    # ROUGE-L takes the best reference per sentence: 1, then P = 1/2, R = 1, b^2 = 1/4: F = 1.25 * 0.5 / 1.125.
    score = corpus_rouge_l(["x y", "p q"], [["a b", "x y"], ["q"]])
    assert score == pytest.approx(100 * (1.0 + 1.25 * 0.5 / 1.125) / 2, abs=1e-8)


def test_level_for_language():
    assert [level_for_language(x) for x in ("zh", "zh_CN", "zh-Hant", "de_DE", "en", None)] == [
        "char", "char", "char", "word", "word", "word"
    ]
    assert translation_scores(["ab"], ["ab"], language="de", level="char")["level"] == "char"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"predictions": ["a"], "references": ["a", "b"]}, "1 predictions but 2 references"),
        ({"predictions": [], "references": []}, "No predictions"),
        ({"predictions": ["a", "b"], "references": [["a"], ["b", "c"]]}, "same number"),
        ({"predictions": ["a"], "references": ["a"], "level": "bpe"}, "Unknown level 'bpe'"),
    ],
)
def test_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        translation_scores(**kwargs)


def test_loads_offline_as_an_evaluate_module(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = load_translation_metric()
    assert metric.name == "sign_translation"
    predictions, references = split(CHINESE)
    result = metric.compute(predictions=predictions, references=references, language="zh_CN")
    assert result == translation_scores(predictions, references, language="zh_CN")
    assert TRANSLATION_METRIC_PATH.endswith("sign_translation")
