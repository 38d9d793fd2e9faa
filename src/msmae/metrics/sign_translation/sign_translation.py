"""Sign language translation metrics as an `evaluate` module: BLEU-1 to BLEU-4 and ROUGE-L as the SLT literature
computes them, plus sacrebleu's standard BLEU-4.

Load it by path, which works offline (Hub metric scripts such as `evaluate.load("sacrebleu")` cannot be fetched
without a network): `evaluate.load(path_to_this_folder)`, or `msmae.metrics.load_translation_metric()`. The file only
needs `evaluate`, `datasets` and `sacrebleu`, so it can also be published on its own.
"""


import datasets
import evaluate
from sacrebleu.metrics import BLEU

_CITATION = """\
@inproceedings{camgoz-2020-sign,
    title = "Sign Language Transformers: Joint End-to-end Sign Language Recognition and Translation",
    author = "Camgoz, Necati Cihan and Koller, Oscar and Hadfield, Simon and Bowden, Richard",
    booktitle = "Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition",
    year = "2020",
}
@inproceedings{chen-2022-two-stream,
    title = "Two-Stream Network for Sign Language Recognition and Translation",
    author = "Chen, Yutong and Zuo, Ronglai and Wei, Fangyun and Wu, Yu and Liu, Shujie and Mak, Brian",
    booktitle = "Advances in Neural Information Processing Systems",
    year = "2022",
}
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""

_DESCRIPTION = """\
The scores reported for gloss-free sign language translation (PHOENIX14T, CSL-Daily, How2Sign), computed as
TwoStreamSLT (Chen et al., 2022; the implementation MS-MAE's paper cites) computes them, so figures can be put next
to the published tables:

- Tokens (`level`): `word` splits at whitespace (PHOENIX14T's text is lower-cased with punctuation already split
  off, so no further tokenizer runs); `char` scores every character (Chinese: chosen from `language`).
- `bleu1` ... `bleu4`: corpus BLEU-n of signjoey (Camgoz et al., 2020), which TwoStreamSLT reuses: n-gram counts
  summed over the corpus, the brevity penalty from the closest reference lengths, and the geometric mean of the
  1..n-gram precisions with equal weights 1/n. No smoothing: a corpus without a single matching n-gram of some
  order <= n scores 0. Equal to sacrebleu's `BLEU(tokenize="none", smooth_method="floor", smooth_value=0,
  max_ngram_order=n)` on the tokens joined by spaces; for `char`, whitespace does not count.
- `rougeL`: the sentence-level ROUGE-L F-measure of TwoStreamSLT (from tf-seq2seq): with P and R the LCS length
  over the prediction and reference token counts, F = (1 + b^2) P R / (R + b^2 P) with b = P / R (and 1e-12 guards),
  averaged over sentences. For `char`, a space inside the text counts as two empty tokens (TwoStreamSLT joins the
  characters with spaces and splits at single spaces); with several references, the best one counts.
  `corpus_rouge_l(..., beta=1.2)` gives signjoey's / coco-caption's variant (a fixed b = 1.2; equal to it for one
  reference per sentence, which is how signjoey calls it).
- `sacrebleu`: BLEU-4 with sacrebleu's own tokenizer (`13a`, `zh` for Chinese) and default smoothing, the WMT
  convention for detokenised text; its `sacrebleu_signature` makes it reproducible.
- Width correction: mBART's SentencePiece normalises text with NFKC, so a model built on mBART generates
  half-width punctuation (`,` `!` `?` `:` `(`) where Chinese references have full-width forms (`，` `！` `？` `：`
  `（`). Every score is computed after mapping full-width forms (U+FF01-U+FF5E, and the ideographic space U+3000)
  to their half-width equivalents in predictions and references, and again on the raw text (the `*_uncorrected`
  scores). On text without full-width forms (German, English) both are equal.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): generated translations, detokenized.
    references (`list[str]` or `list[list[str]]`): one reference, or several, per prediction (every prediction must
        have the same number of references). Give the dataset's text as it is, never text decoded from token ids.
    language (`str`, *optional*): target language, an ISO code or an mBART code (`"de"`, `"de_DE"`, `"zh_CN"`,
        ...): Chinese is scored per character (and with sacrebleu's `zh` tokenizer), anything else per word.
    level (`str`, *optional*): `"word"` or `"char"`, overriding the choice from `language`.
    lowercase (`bool`, *optional*, defaults to `False`): case-insensitive scores.
Returns:
    `bleu1`, `bleu2`, `bleu3`, `bleu4`, `rougeL`, `sacrebleu`: scores (0-100) after the width correction;
    the same names with `_uncorrected`: on the raw text; `sacrebleu_signature`; `level`: the tokens used.
Examples:
    >>> metric = evaluate.load("path/to/sign_translation")
    >>> metric.compute(predictions=["a b c d e"], references=["a b c d f"], language="de")["bleu4"]
    66.874...
"""

LEVELS = ("word", "char")

# Full-width ASCII variants U+FF01-U+FF5E sit at a fixed offset from U+0021-U+007E.
_FULL_TO_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_TO_HALF_WIDTH[0x3000] = 0x20


def normalize_width(text: str) -> str:
    """Full-width forms (U+FF01-U+FF5E, U+3000) to half-width ASCII, as mBART's NFKC normalisation outputs them."""
    return text.translate(_FULL_TO_HALF_WIDTH)


def is_chinese(language) -> bool:
    """Whether `language` (`zh`, `zh_CN`, `zh-Hant`, `cmn`, ...) is Chinese."""
    return bool(language) and str(language).lower().replace("-", "_").split("_")[0] in ("zh", "cmn", "chinese")


def level_for_language(language) -> str:
    """`char` for Chinese, `word` otherwise (TwoStreamSLT's `level` for CSL-Daily and PHOENIX14T)."""
    return "char" if is_chinese(language) else "word"


def spaced_tokens(text: str, level: str) -> str:
    """The tokens of `text` joined by single spaces: whitespace-separated words, or every character."""
    return " ".join(text) if level == "char" else " ".join(text.split())


def rouge_tokens(text: str, level: str) -> list[str]:
    """ROUGE-L's tokens: `spaced_tokens` split at single spaces, so an empty text is one empty token and, for
    `char`, a space in the text two empty tokens (as in TwoStreamSLT)."""
    return spaced_tokens(text, level).split(" ")


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence of two token lists (dynamic programming, O(len(a) * len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction_tokens: list, reference_tokens: list, beta: float | None = None) -> float:
    """ROUGE-L F-measure of one token sequence against one reference, in 0-1.

    `beta=None`: TwoStreamSLT's b = P / R (tf-seq2seq's formula, with its 1e-12 guards); a number: the fixed b of
    signjoey / coco-caption (1.2), which is 0 when P or R is."""
    if not prediction_tokens or not reference_tokens:
        return 0.0
    common = lcs_length(prediction_tokens, reference_tokens)
    precision, recall = common / len(prediction_tokens), common / len(reference_tokens)
    if beta is None:
        b2 = (precision / (recall + 1e-12)) ** 2
        return (1 + b2) * recall * precision / (recall + b2 * precision + 1e-12)
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


def corpus_rouge_l(predictions, references, level="word", lowercase=False, beta=None) -> float:
    """Mean over sentences of the best ROUGE-L against any reference (`references`: a list of references per
    prediction), in 0-100; `beta` as in `rouge_l`."""

    def tokens(text):
        return rouge_tokens(text.lower() if lowercase else text, level)

    scores = [
        max(rouge_l(tokens(prediction), tokens(reference), beta) for reference in refs)
        for prediction, refs in zip(predictions, references)
    ]
    return 100.0 * sum(scores) / len(scores) if scores else 0.0


def corpus_bleu_n(predictions, references, level="word", lowercase=False, max_order=4) -> dict:
    """`{"bleu1": ..., "bleu<max_order>": ...}`: signjoey's corpus BLEU-n (see the module description), 0-100."""
    hyps = [spaced_tokens(text, level) for text in predictions]
    streams = [[spaced_tokens(text, level) for text in stream] for stream in zip(*references)]
    return {
        f"bleu{n}": BLEU(tokenize="none", smooth_method="floor", smooth_value=0.0, max_ngram_order=n,
                         lowercase=lowercase, force=True).corpus_score(hyps, streams).score
        for n in range(1, max_order + 1)
    }


def translation_scores(predictions, references, language=None, level=None, lowercase=False) -> dict:
    """The scores described in the module docstring, for `predictions` and `references` (see `_KWARGS_DESCRIPTION`)."""
    predictions = list(predictions)
    references = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions but {len(references)} references; give one entry each.")
    if not predictions:
        raise ValueError("No predictions to score.")
    counts = {len(refs) for refs in references}
    if len(counts) != 1 or 0 in counts:
        raise ValueError("Every prediction needs the same number (at least one) of references for BLEU.")
    level = level or level_for_language(language)
    if level not in LEVELS:
        raise ValueError(f"Unknown level {level!r}; use one of {LEVELS} ('char' for Chinese).")
    sacre = BLEU(tokenize="zh" if is_chinese(language) or level == "char" else "13a", lowercase=lowercase)
    results = {}
    for suffix, normalize in (("", normalize_width), ("_uncorrected", lambda text: text)):
        hyps = [normalize(text) for text in predictions]
        refs = [[normalize(text) for text in refs] for refs in references]
        for name, score in corpus_bleu_n(hyps, refs, level=level, lowercase=lowercase).items():
            results[name + suffix] = score
        results[f"rougeL{suffix}"] = corpus_rouge_l(hyps, refs, level=level, lowercase=lowercase)
        results[f"sacrebleu{suffix}"] = sacre.corpus_score(hyps, [list(s) for s in zip(*refs)]).score
    results["sacrebleu_signature"] = str(sacre.get_signature())
    results["level"] = level
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SignTranslation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Sequence(datasets.Value("string", id="sequence"), id="references"),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Value("string", id="sequence"),
                    }
                ),
            ],
            codebase_urls=["https://github.com/neccam/slt", "https://github.com/FangyunWei/SLRT",
                           "https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://arxiv.org/abs/2003.13830", "https://arxiv.org/abs/2211.01367",
                            "https://aclanthology.org/W18-6319"],
        )

    def _compute(self, predictions, references, language=None, level=None, lowercase=False):
        return translation_scores(predictions, references, language=language, level=level, lowercase=lowercase)
