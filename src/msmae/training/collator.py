"""Turning dataset rows into model inputs during training: per-clip processing with reproducible randomness, and
the collator that pads a batch.

Why a wrapper instead of `Dataset.set_transform`: random choices (frame windows, augmentations, masking noise) must
come out the same when a run is interrupted and resumed, or run on another number of processes. A transform only
sees the rows, so it would have to draw from a global random state, and that state is not where a resumed run
expects it: the data loader prefetches batches ahead of the step that is checkpointed. Here each clip's generator is
seeded from `(seed, epoch, index)` alone, so a clip gets the same window, augmentation and mask whenever and wherever
it is loaded. Rows are read lazily from the memory-mapped Arrow table: a clip costs the frames it uses
(`msmae.data.windows`).
"""

from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from datasets import IterableDataset as HFIterableDataset

from ..data.windows import PoseRow, PoseRows
from ..pose_io import POSE_COLUMNS, SignPose

# Columns a clip needs (the stored pose); others (text, signer, ...) are never read.
_CLIP_COLUMNS = POSE_COLUMNS


def _clip_columns(dataset, label_column=None) -> list[str]:
    columns = [c for c in _CLIP_COLUMNS if c in dataset.column_names]
    if label_column is not None:
        if label_column not in dataset.column_names:
            raise ValueError(
                f"The dataset has no label column {label_column!r} (columns: {dataset.column_names}); pass "
                "--label_column_name with the right name."
            )
        columns.append(label_column)
    return columns


@dataclass
class ClipSampler:
    """Processes one dataset row into the model inputs of one clip.

    Args:
        processor: an `MSMAEPoseProcessor` (frame sampling, normalisation, stream selection, augmentation).
        training: random frame sampling and augmentation (the processor's training mode).
        label_column: dataset column copied to `labels`, or None.
        masking: the model's `MSMAEConfig`, to add MAE masking `noise` of shape `masking.noise_shape(frames)`,
            which `MSMAEForPreTraining` turns into the mask; or None.

    A row is a lazily read `msmae.data.windows.PoseRow` (only the frames the processor picks are read) or a
    decoded row dict (`SignPose.to_example` format).
    """

    processor: object
    training: bool
    label_column: str | None = None
    masking: object | None = None

    def __call__(self, row, rng: np.random.Generator) -> dict:
        clip = row if isinstance(row, PoseRow) else SignPose.from_example(row)
        try:
            pose_values, keypoint_mask = self.processor.process_clip(clip, training=self.training, rng=rng)
        except ValueError as error:
            raise ValueError(f"Clip {row.get('source') or '(no source)'}: {error}") from error
        item = {"pose_values": pose_values, "keypoint_mask": keypoint_mask}
        if self.label_column is not None:
            item["labels"] = int(row[self.label_column])
        if self.masking is not None:
            item["noise"] = rng.random(self.masking.noise_shape(len(pose_values)), dtype=np.float32)
        return item


class _EpochSeeded:
    """The epoch, in memory shared with data-loader workers: persistent workers keep their copy of the dataset
    across epochs, and would otherwise draw every epoch's windows and masks from epoch 0's seeds."""

    def _init_epoch(self, seed):
        self.seed = int(seed)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int):
        self._epoch.fill_(int(epoch))


class PoseClipDataset(_EpochSeeded, torch.utils.data.Dataset):
    """A map-style `Dataset` of processed clips over a `datasets.Dataset` in msmae's schema.

    Clip `index` in epoch `e` is processed with `numpy.random.default_rng([seed, e, index])` in training and
    `default_rng([seed, index])` in evaluation (the same clips, windows and masks at every evaluation).
    `set_epoch` is called by accelerate's data loader and by `EpochCallback`. Rows are read lazily from the
    memory-mapped Arrow table (`msmae.data.windows.PoseRows`): a clip costs the frames it uses, not its video.
    """

    def __init__(self, dataset: Dataset, sampler: ClipSampler, seed: int = 0):
        self.rows = PoseRows(dataset.select_columns(_clip_columns(dataset, sampler.label_column)))
        self.sampler = sampler
        self._init_epoch(seed)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        index = int(index)
        key = [self.seed, self.epoch, index] if self.sampler.training else [self.seed, index]
        return self.sampler(self.rows[index], np.random.default_rng(key))


class StreamingPoseClipDataset(_EpochSeeded, torch.utils.data.IterableDataset):
    """The streaming counterpart of `PoseClipDataset` over a `datasets.IterableDataset` (corpora read as they
    go). Clips are seeded by their position in the stream (and the data-loader worker reading them). Rows arrive
    as Arrow tables, so only the frames a clip uses are converted (a Parquet source still decodes whole rows)."""

    def __init__(self, dataset: HFIterableDataset, sampler: ClipSampler, seed: int = 0, node: int | None = None):
        self.dataset = dataset.select_columns(_clip_columns(dataset, sampler.label_column)).with_format("arrow")
        self.sampler = sampler
        # The rank of the node whose own part of the stream this is (`stream_for_node`), or None for a whole stream.
        # Its clips are seeded with it too (positions repeat across nodes), and the trainer must not split it again.
        self.node = node
        self._init_epoch(seed)

    def set_epoch(self, epoch: int):
        super().set_epoch(epoch)
        self.dataset.set_epoch(epoch)  # reshuffles the stream's buffer

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        worker_id = worker.id if worker is not None else 0
        for position, table in enumerate(self.dataset):
            key = [self.seed, self.epoch, worker_id, position] if self.sampler.training else [self.seed, worker_id, position]
            if self.node is not None:
                key.insert(1, self.node)
            yield self.sampler(PoseRow.from_table(table), np.random.default_rng(key))


def clip_dataset(dataset, sampler: ClipSampler, seed: int = 0, node: int | None = None):
    """`PoseClipDataset` or `StreamingPoseClipDataset`, whichever fits `dataset` (`node`: see the latter)."""
    if isinstance(dataset, HFIterableDataset):
        return StreamingPoseClipDataset(dataset, sampler, seed, node)
    return PoseClipDataset(dataset, sampler, seed)


@dataclass
class PoseCollator:
    """Pads processed clips into a batch of exactly the model's inputs (`pose_values`, `keypoint_mask`,
    `attention_mask`, plus `labels` or the masking `noise` when the clips carry them).

    Padding is `processor.pad`'s; `masking` (the model's `MSMAEConfig`, as in `ClipSampler`) gives the noise's
    padded shape, `masking.noise_shape(padded frames)`. Noise of padded cubelets is 1.0 ("mask last"; the model
    never keeps padding visible).
    """

    processor: object
    masking: object | None = None

    def __call__(self, features: list[dict]) -> dict:
        noise = [f["noise"] for f in features] if "noise" in features[0] else None
        batch = dict(self.processor.pad([{k: v for k, v in f.items() if k != "noise"} for f in features], return_tensors="pt"))
        if noise is not None:
            if self.masking is None:
                raise ValueError("The clips carry masking `noise`: build the collator with masking=model config.")
            padded = np.ones((len(noise), *self.masking.noise_shape(batch["pose_values"].shape[1])), dtype=np.float32)
            for i, values in enumerate(noise):
                padded[i, : values.shape[0], : values.shape[1]] = values
            batch["noise"] = torch.from_numpy(padded)
        return batch
