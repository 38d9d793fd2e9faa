"""Turning dataset rows into model inputs during training: per-clip processing with reproducible randomness, and
the collator that pads a batch.

Why a wrapper instead of `Dataset.set_transform`: random choices (frame windows, augmentations, masking noise) must
come out the same when a run is interrupted and resumed, or run on another number of processes. A transform only
sees the rows, so it would have to draw from a global random state, and that state is not where a resumed run
expects it: the data loader prefetches batches ahead of the step that is checkpointed. Here each clip's generator is
seeded from `(seed, epoch, index)` alone, so a clip gets the same window, augmentation and mask whenever and wherever
it is loaded. Rows are still read lazily from the memory-mapped Arrow table, one clip at a time.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from datasets import IterableDataset as HFIterableDataset

from ..pose_io import SignPose

# Columns a clip needs; others (text, signer, ...) are never decoded.
_CLIP_COLUMNS = ("keypoints", "keypoint_mask", "fps", "width", "height", "source")


def _clip_view(dataset, label_column=None):
    columns = [c for c in _CLIP_COLUMNS if c in dataset.column_names]
    if label_column is not None:
        if label_column not in dataset.column_names:
            raise ValueError(
                f"The dataset has no label column {label_column!r} (columns: {dataset.column_names}); pass "
                "--label_column_name with the right name."
            )
        columns.append(label_column)
    return dataset.select_columns(columns).with_format("numpy")


@dataclass
class ClipSampler:
    """Processes one dataset row into the model inputs of one clip.

    Args:
        processor: an `MSMAEPoseProcessor` (frame sampling, normalisation, stream selection, augmentation).
        training: random frame sampling and augmentation (the processor's training mode).
        label_column: dataset column copied to `labels`, or None.
        masking: `(num_streams, cubelet_size)` to add MAE masking `noise` of shape `(num_streams, num_cubelets)`,
            which `MSMAEForPreTraining` turns into the mask, or None.
    """

    processor: object
    training: bool
    label_column: str | None = None
    masking: tuple[int, int] | None = None

    def __call__(self, row: dict, rng: np.random.Generator) -> dict:
        pose = SignPose.from_example(row)
        try:
            pose_values, keypoint_mask = self.processor.process_clip(pose, training=self.training, rng=rng)
        except ValueError as error:
            raise ValueError(f"Clip {pose.source or '(no source)'}: {error}") from error
        item = {"pose_values": pose_values, "keypoint_mask": keypoint_mask}
        if self.label_column is not None:
            item["labels"] = int(row[self.label_column])
        if self.masking is not None:
            num_streams, cubelet_size = self.masking
            item["noise"] = rng.random((num_streams, math.ceil(len(pose_values) / cubelet_size)), dtype=np.float32)
        return item


class PoseClipDataset(torch.utils.data.Dataset):
    """A map-style `Dataset` of processed clips over a `datasets.Dataset` in msmae's schema.

    Clip `index` in epoch `e` is processed with `numpy.random.default_rng([seed, e, index])` in training and
    `default_rng([seed, index])` in evaluation (the same clips, windows and masks at every evaluation).
    `set_epoch` is called by accelerate's data loader and by `EpochCallback`.
    """

    def __init__(self, dataset: Dataset, sampler: ClipSampler, seed: int = 0):
        self.dataset = _clip_view(dataset, sampler.label_column)
        self.sampler = sampler
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        index = int(index)
        key = [self.seed, self.epoch, index] if self.sampler.training else [self.seed, index]
        return self.sampler(self.dataset[index], np.random.default_rng(key))


class StreamingPoseClipDataset(torch.utils.data.IterableDataset):
    """The streaming counterpart of `PoseClipDataset` over a `datasets.IterableDataset` (corpora read as they
    go). Clips are seeded by their position in the stream (and the data-loader worker reading them)."""

    def __init__(self, dataset: HFIterableDataset, sampler: ClipSampler, seed: int = 0):
        self.dataset = _clip_view(dataset, sampler.label_column)
        self.sampler = sampler
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)
        self.dataset.set_epoch(epoch)  # reshuffles the stream's buffer

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        worker_id = worker.id if worker is not None else 0
        for position, row in enumerate(self.dataset):
            key = [self.seed, self.epoch, worker_id, position] if self.sampler.training else [self.seed, worker_id, position]
            yield self.sampler(row, np.random.default_rng(key))


def clip_dataset(dataset, sampler: ClipSampler, seed: int = 0):
    """`PoseClipDataset` or `StreamingPoseClipDataset`, whichever fits `dataset`."""
    if isinstance(dataset, HFIterableDataset):
        return StreamingPoseClipDataset(dataset, sampler, seed)
    return PoseClipDataset(dataset, sampler, seed)


@dataclass
class PoseCollator:
    """Pads processed clips into a batch of exactly the model's inputs (`pose_values`, `keypoint_mask`,
    `attention_mask`, plus `labels` or the masking `noise` when the clips carry them)."""

    processor: object
    cubelet_size: int = 2

    def __call__(self, features: list[dict]) -> dict:
        noise = [f["noise"] for f in features] if "noise" in features[0] else None
        batch = self.processor.pad([{k: v for k, v in f.items() if k != "noise"} for f in features], return_tensors="pt")
        batch = dict(batch)
        if noise is not None:
            num_cubelets = math.ceil(batch["pose_values"].shape[1] / self.cubelet_size)
            # Noise of padded cubelets is irrelevant (the model never keeps padding visible); 1.0 = "mask last".
            padded = np.ones((len(noise), noise[0].shape[0], num_cubelets), dtype=np.float32)
            for i, values in enumerate(noise):
                padded[i, :, : values.shape[1]] = values
            batch["noise"] = torch.from_numpy(padded)
        return batch
