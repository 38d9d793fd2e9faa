"""Evaluation metrics, all in this package:

- `msmae.metrics.classification`: recognition (top-k accuracy per instance and per class, confusion matrices), the
  `compute_metrics` hook of the classification recipe.
- `msmae.metrics.sign_translation`: translation (BLEU-1..4 and ROUGE-L as the SLT literature computes them, with and
  without the full-width punctuation correction), a local `evaluate` module loadable offline by path.

Importing this package costs nothing: each submodule imports its own dependencies.
"""

from pathlib import Path

TRANSLATION_METRIC_PATH = str(Path(__file__).resolve().parent / "sign_translation")


def load_translation_metric(**kwargs):
    """The sign language translation metric (see `sign_translation/sign_translation.py`), as
    `evaluate.load(<local path>)`: no network needed. `kwargs` go to `evaluate.load`."""
    import evaluate

    return evaluate.load(TRANSLATION_METRIC_PATH, **kwargs)


__all__ = ["TRANSLATION_METRIC_PATH", "load_translation_metric"]
