"""Evaluation metrics packaged as local `evaluate` modules (loadable offline by path)."""

from pathlib import Path

TRANSLATION_METRIC_PATH = str(Path(__file__).resolve().parent / "sign_translation")


def load_translation_metric(**kwargs):
    """The sign language translation metric (BLEU-1, BLEU-4, ROUGE-L; see `sign_translation/sign_translation.py`),
    as `evaluate.load(<local path>)`: no network needed. `kwargs` go to `evaluate.load`."""
    import evaluate

    return evaluate.load(TRANSLATION_METRIC_PATH, **kwargs)


__all__ = ["TRANSLATION_METRIC_PATH", "load_translation_metric"]
