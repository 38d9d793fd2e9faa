"""Sign language translation metrics as an `evaluate` module: BLEU-1, BLEU-4 and ROUGE-L F1.

Load it by path, which works offline (Hub metric scripts such as `evaluate.load("sacrebleu")` cannot be fetched
without a network): `evaluate.load(path_to_this_folder)`, or `msmae.metrics.load_translation_metric()`. The file only
needs `evaluate`, `datasets` and `sacrebleu`, so it can also be published on its own.
"""


import datasets
import evaluate
from sacrebleu.metrics import BLEU

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
The scores reported for gloss-free sign language translation (PHOENIX14T, CSL-Daily, How2Sign): corpus BLEU-1 and
BLEU-4 computed by sacrebleu, and ROUGE-L F1.

- BLEU uses sacrebleu's tokenizer `13a` for English, German and other space-delimited languages and `zh` for Chinese
  (chosen from `language`, or given as `tokenize`); each score comes with its sacrebleu signature.
- ROUGE-L is the F1 (beta = 1) of the longest common subsequence of the same tokens that BLEU counts, so Chinese is
  scored per character (rouge-score's default tokenizer drops every non-ASCII character and scores Chinese as empty),
  computed per sentence (best over references) and averaged over the corpus.
- Width correction: mBART's SentencePiece normalises text with NFKC, so a model built on mBART generates
  half-width punctuation (`,` `!` `?` `:` `(`) where Chinese references have full-width forms (`，` `！` `？` `：`
  `（`). Scores are computed after mapping full-width forms (U+FF01-U+FF5E, and the ideographic space U+3000) to
  their half-width equivalents in predictions and references (the `*` scores), and again on the raw text (the
  `*_uncorrected` scores). On text without full-width forms (German, English) both are equal.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): generated translations, detokenized.
    references (`list[str]` or `list[list[str]]`): one reference, or several, per prediction (every prediction must
        have the same number of references for BLEU).
    language (`str`, *optional*): target language, an ISO code or an mBART code (`"de"`, `"de_DE"`, `"zh_CN"`, ...);
        chooses the tokenizer: `zh` for Chinese, `13a` otherwise.
    tokenize (`str`, *optional*): a sacrebleu tokenizer name (`13a`, `zh`, `intl`, `char`, `none`, ...) overriding
        the choice from `language`.
    lowercase (`bool`, *optional*, defaults to `False`): case-insensitive scores.
Returns:
    `bleu1`, `bleu4`, `rougeL`: scores (0-100) after the width correction;
    `bleu1_uncorrected`, `bleu4_uncorrected`, `rougeL_uncorrected`: the same on the raw text;
    `bleu1_signature`, `bleu4_signature`: sacrebleu signatures; `tokenize`: the tokenizer used.
Examples:
    >>> metric = evaluate.load("path/to/sign_translation")
    >>> metric.compute(predictions=["a b c d e"], references=["a b c d f"], language="de")["bleu4"]
    66.874...
"""

# Full-width ASCII variants U+FF01-U+FF5E sit at a fixed offset from U+0021-U+007E.
_FULL_TO_HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_TO_HALF_WIDTH[0x3000] = 0x20


def normalize_width(text: str) -> str:
    """Full-width forms (U+FF01-U+FF5E, U+3000) to half-width ASCII, as mBART's NFKC normalisation outputs them."""
    return text.translate(_FULL_TO_HALF_WIDTH)


def tokenizer_for_language(language) -> str:
    """sacrebleu tokenizer for a target language: `zh` for Chinese (`zh`, `zh_CN`, `zh-Hant`, ...), `13a` otherwise."""
    if language and str(language).lower().replace("-", "_").split("_")[0] in ("zh", "cmn", "chinese"):
        return "zh"
    return "13a"


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


def rouge_l_f1(prediction_tokens: list, reference_tokens: list) -> float:
    """ROUGE-L F1 of one token sequence against one reference; 0 when either is empty (as rouge-score)."""
    if not prediction_tokens or not reference_tokens:
        return 0.0
    common = lcs_length(prediction_tokens, reference_tokens)
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction_tokens), common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def corpus_rouge_l(predictions, references, tokenize="13a", lowercase=False) -> float:
    """Mean over sentences of the best ROUGE-L F1 against any reference (`references`: a list of references per
    prediction), in 0-100. Tokens: sacrebleu's `tokenize` tokenizer, split at spaces."""
    tokenizer = BLEU(tokenize=tokenize).tokenizer

    def tokens(text):
        return tokenizer(text.strip().lower() if lowercase else text.strip()).split()

    scores = [
        max(rouge_l_f1(tokens(prediction), tokens(reference)) for reference in refs)
        for prediction, refs in zip(predictions, references)
    ]
    return 100.0 * sum(scores) / len(scores) if scores else 0.0


def translation_scores(predictions, references, language=None, tokenize=None, lowercase=False) -> dict:
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
    tokenize = tokenize or tokenizer_for_language(language)
    if tokenize not in BLEU.TOKENIZERS:
        raise ValueError(f"Unknown sacrebleu tokenizer {tokenize!r}; use one of {sorted(BLEU.TOKENIZERS)}.")
    bleu1 = BLEU(tokenize=tokenize, lowercase=lowercase, max_ngram_order=1)
    bleu4 = BLEU(tokenize=tokenize, lowercase=lowercase, max_ngram_order=4)
    results = {}
    for suffix, normalize in (("", normalize_width), ("_uncorrected", lambda text: text)):
        hyps = [normalize(text) for text in predictions]
        refs = [[normalize(text) for text in refs] for refs in references]
        streams = [list(stream) for stream in zip(*refs)]  # sacrebleu wants one list per reference position
        results[f"bleu1{suffix}"] = bleu1.corpus_score(hyps, streams).score
        results[f"bleu4{suffix}"] = bleu4.corpus_score(hyps, streams).score
        results[f"rougeL{suffix}"] = corpus_rouge_l(hyps, refs, tokenize=tokenize, lowercase=lowercase)
    results["bleu1_signature"] = str(bleu1.get_signature())
    results["bleu4_signature"] = str(bleu4.get_signature())
    results["tokenize"] = tokenize
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
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/W18-6319", "https://aclanthology.org/W04-1013"],
        )

    def _compute(self, predictions, references, language=None, tokenize=None, lowercase=False):
        return translation_scores(predictions, references, language=language, tokenize=tokenize, lowercase=lowercase)
