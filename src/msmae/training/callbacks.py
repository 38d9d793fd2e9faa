"""Trainer callbacks of the training scripts."""

import logging
import math
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class EpochCallback(TrainerCallback):
    """Tells a clip dataset (`PoseClipDataset`) which epoch starts, since its random choices are seeded by epoch.

    accelerate forwards `set_epoch` to the dataset only in some data-loader set-ups (not when it shards batches
    across processes), so the scripts also do it here, on every process.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the float progress (restored from the checkpoint on resume): its floor is this epoch.
        self.dataset.set_epoch(math.floor((state.epoch or 0.0) + 1e-9))


def frame_level_mask(mask: np.ndarray, stream_num_keypoints, cubelet_size: int, num_frames: int) -> np.ndarray:
    """`(num_frames, K)` bool, True where a keypoint's frame lies in a masked cubelet of its stream, from the model's
    `mask (num_streams, num_cubelets)`."""
    per_stream = np.repeat(np.asarray(mask, dtype=bool), cubelet_size, axis=1)[:, :num_frames]
    return np.concatenate([np.repeat(per_stream[i][:, None], size, 1) for i, size in enumerate(stream_num_keypoints)], 1)


class ReconstructionPictureCallback(TrainerCallback):
    """At every evaluation, reconstructs one evaluation clip and saves original | masked input | reconstruction
    as `output_dir/reconstructions/step-XXXXXXX.png` (with the clip's masked-keypoint error in the title).

    The clip and its mask are the evaluation set's first clip and fixed noise, so pictures of successive
    evaluations show the same thing learned better.
    """

    def __init__(self, eval_dataset, collator, output_dir, config):
        self.eval_dataset = eval_dataset
        self.collator = collator
        self.output_dir = Path(output_dir) / "reconstructions"
        self.config = config
        self._item = None
        self.paths = []

    def _clip(self):
        if self._item is None:
            self._item = next(iter(self.eval_dataset)) if not hasattr(self.eval_dataset, "__getitem__") else self.eval_dataset[0]
        return self._item

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        item = self._clip()
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in self.collator([item]).items()}
        was_training = model.training
        model.eval()
        with torch.no_grad():  # every process runs it: a sharded (FSDP) model needs all of them
            outputs = model(**batch)
        model.train(was_training)
        if not state.is_world_process_zero:
            return
        frames = int(batch["attention_mask"][0].sum())
        original = batch["pose_values"][0, :frames].float().cpu().numpy()
        present = batch["keypoint_mask"][0, :frames].bool().cpu().numpy()
        reconstruction = outputs.logits[0, :frames].float().cpu().numpy()
        masked = frame_level_mask(
            outputs.mask[0].cpu().numpy(), self.config.stream_num_keypoints, self.config.cubelet_size, frames
        )
        weights = masked & present
        error = float(((reconstruction - original) ** 2).mean(-1)[weights].mean()) if weights.any() else float("nan")
        path = self.output_dir / f"step-{state.global_step:07d}.png"
        save_reconstruction_picture(
            original, present, reconstruction, masked, self.config.streams, path,
            title=f"step {state.global_step}: masked-keypoint MSE {error:.4f} on one evaluation clip",
        )
        self.paths.append(path)
        logger.info("Saved a reconstruction picture to %s", path)


def save_reconstruction_picture(original, present, reconstruction, masked, streams, path, title="", num_columns=6):
    """Draw a clip three times at `num_columns` moments (frames where something is masked first): the original,
    what the encoder saw (masked keypoints removed), and the reconstruction (masked keypoints predicted, in red).

    Arrays are `(T, K, 2)` / `(T, K)` in the model's keypoint order for `streams`; y points down.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = original.shape[0]
    candidates = np.flatnonzero(masked.any(1)) if masked.any() else np.arange(frames)
    columns = candidates[np.linspace(0, len(candidates) - 1, min(num_columns, len(candidates))).round().astype(int)]
    fig, axes = plt.subplots(3, len(columns), figsize=(2.2 * len(columns), 6.6), squeeze=False)
    visible = present & ~masked
    filled = np.where(masked[..., None], reconstruction, original)
    rows = [
        ("original", original, present, None),
        ("masked input", original, visible, None),
        ("reconstruction", filled, present, masked & present),
    ]
    limits = _limits(original[present]) if present.any() else ((-2, 2), (-2, 2))
    for r, (name, values, shown, highlight) in enumerate(rows):
        for c, t in enumerate(columns):
            ax = axes[r, c]
            _draw_skeleton(ax, values[t], shown[t], streams, highlight=None if highlight is None else highlight[t])
            ax.set_xlim(*limits[0])
            ax.set_ylim(limits[1][1], limits[1][0])
            ax.set_aspect("equal")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


# Bones of each stream, as index pairs within the stream (stored body order: left/right shoulder, elbow, wrist;
# hands in MediaPipe's 21-landmark order). Face points are drawn as dots.
_BONES = {
    "body": [(0, 1), (0, 2), (2, 4), (1, 3), (3, 5)],
    "hand": [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
             (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)],
}


def _draw_skeleton(ax, points, shown, streams, highlight=None):
    """One frame: bones between shown keypoints (grey), keypoints in `highlight` in red."""
    from ..configuration_msmae import STREAM_NUM_KEYPOINTS

    start = 0
    for stream in streams:
        size = STREAM_NUM_KEYPOINTS[stream]
        xy, ok = points[start : start + size], shown[start : start + size]
        hot = np.zeros(size, bool) if highlight is None else highlight[start : start + size]
        for a, b in _BONES.get("hand" if stream.endswith("hand") else stream, []):
            if ok[a] and ok[b]:
                color = "tab:red" if hot[a] or hot[b] else "0.35"
                ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=color, linewidth=1.0)
        dot = 2 if stream == "face" else 4
        ax.scatter(xy[ok & ~hot, 0], xy[ok & ~hot, 1], s=dot, color="0.2")
        ax.scatter(xy[ok & hot, 0], xy[ok & hot, 1], s=dot, color="tab:red")
        start += size


def _limits(points, margin=0.15):
    low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    span = np.maximum(high - low, 1e-3)
    return tuple((lo - margin * s, hi + margin * s) for lo, hi, s in zip(low, high, span))
