"""Trainer callbacks of the training scripts."""

import logging
import math
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from ..serving.visualization import expand_token_mask, render_reconstruction

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


class ReconstructionPictureCallback(TrainerCallback):
    """At every evaluation, reconstructs one evaluation clip and saves original | masked input | reconstruction
    (`msmae.serving.visualization.render_reconstruction`) as `output_dir/reconstructions/step-XXXXXXX.png`.

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
            if isinstance(self.eval_dataset, torch.utils.data.IterableDataset):
                self._item = next(iter(self.eval_dataset))
            else:
                self._item = self.eval_dataset[0]
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
        token_mask = outputs.mask[0].cpu().numpy()
        # Positions, whatever the target (`norm_target_loss` / `reconstruction_target` predict something else).
        reconstruction = outputs.reconstruction[0].float().cpu().numpy()
        # The frame nearest the middle where some streams are hidden and others visible (DiffMask shows as such).
        hidden = (expand_token_mask(token_mask, self.config.cubelet_size, frames, self.config.streams) & present).sum(1)
        candidates = np.flatnonzero((hidden > 0) & (hidden < present.sum(1)))
        if not len(candidates):
            candidates = np.flatnonzero(hidden > 0) if hidden.any() else np.arange(frames)
        frame = int(candidates[np.argmin(np.abs(candidates - frames // 2))])
        path = self.output_dir / f"step-{state.global_step:07d}.png"
        try:
            import matplotlib  # noqa: F401  (msmae.serving.visualization draws with it)
        except ImportError:
            logger.warning("matplotlib is not installed (pip install 'msmae[viz]'): no reconstruction picture.")
            return
        render_reconstruction(
            original, present, token_mask, self.config.cubelet_size, reconstruction,
            streams=self.config.streams, output=path, frame=frame,
        )
        self.paths.append(path)
        logger.info("Saved a reconstruction picture (step %d, frame %d) to %s", state.global_step, frame, path)
