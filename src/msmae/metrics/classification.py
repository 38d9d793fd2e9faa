"""Recognition metrics: top-k accuracy per instance and per class, and the confusion matrix picture.

What is computed, precisely (for `n` test clips with true labels `y_i` and logits `s_i`):

- `top{k}` (the paper's "per-instance top-k accuracy", also called instance-level top-k recall):
  `(1 / n) * sum_i [y_i is among the k highest-scoring classes of s_i]`. With `k >= num_labels` it is 1 by
  definition, so with 5 classes `top5` is uninformative; it is still reported so tables keep their columns.
- `top{k}_per_class` (class-averaged recall, WLASL's "per-class accuracy"): the same indicator averaged within each
  class that occurs in the references, then averaged over those classes, so rare classes weigh as much as common ones.

Ties between equal logits are broken by `torch.topk`, which is deterministic on CPU.
"""

import json
import logging
import os

import numpy as np
import torch

logger = logging.getLogger(__name__)

TOP_K = (1, 5)


def top_k_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean `(n,)`: whether each clip's true label is among its `k` highest logits."""
    k = min(k, logits.shape[-1])
    top = torch.topk(torch.as_tensor(logits, dtype=torch.float32), k, dim=-1).indices.numpy()
    return (top == np.asarray(labels)[:, None]).any(-1)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, top_k=TOP_K) -> dict[str, float]:
    """`top{k}` and `top{k}_per_class` for each k in `top_k` (see the module docstring)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"logits must be (num_clips, num_labels) matching labels {labels.shape}, got {logits.shape}.")
    metrics = {}
    classes = np.unique(labels)
    for k in top_k:
        hits = top_k_hits(logits, labels, k)
        metrics[f"top{k}"] = float(hits.mean()) if len(hits) else 0.0
        per_class = [hits[labels == c].mean() for c in classes]
        metrics[f"top{k}_per_class"] = float(np.mean(per_class)) if per_class else 0.0
    return metrics


def compute_metrics(eval_prediction) -> dict[str, float]:
    """`Trainer` hook: an `EvalPrediction` with `predictions` = logits and `label_ids`."""
    logits = eval_prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return classification_metrics(logits, eval_prediction.label_ids)


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> np.ndarray:
    """`(num_labels, num_labels)` counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix


def save_confusion_matrix(matrix: np.ndarray, label_names: list[str], path, title: str = "Confusion matrix") -> str:
    """Writes the matrix as JSON and as a PNG beside it (rows normalised to recall, counts printed when there are
    few classes). Returns the PNG path, or None without matplotlib (the `viz` extra)."""
    path = str(path)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"labels": list(label_names), "matrix": matrix.tolist()}, f, indent=1)
    try:
        import matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'msmae[viz]'): no confusion matrix picture.")
        return None
    matplotlib.use("Agg")  # no display on servers and in tests
    import matplotlib.pyplot as plt

    num_labels = len(label_names)
    recall = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = min(max(4.0, 0.35 * num_labels + 2.0), 30.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(recall, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if num_labels <= 40:
        ax.set_xticks(range(num_labels), label_names, rotation=90, fontsize=8)
        ax.set_yticks(range(num_labels), label_names, fontsize=8)
    if num_labels <= 20:
        for i in range(num_labels):
            for j in range(num_labels):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if recall[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
