"""Processor that turns sign language pose clips into MS-MAE model inputs.

Pipeline for each clip: load (`load_pose`) -> choose the frames to read (`frame_range`: a window, or the whole clip)
-> normalise x, y over them (`normalize_keypoints`) -> keep the configured streams -> augment (training only) -> pick
frames (`sampling`) -> pad the batch. Output: `pose_values (B, T, K, 2)` float32,
`keypoint_mask (B, T, K)` bool and `attention_mask (B, T)` int64, with padding at the end.
"""

import logging
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

import numpy as np
from transformers import BatchFeature, FeatureExtractionMixin

from .augmentation import build_augmentations, recognition_augmentations, translation_augmentations
from .keypoint_layout import (
    ALL_STREAMS, BODY_POSE_NAMES, DEFAULT_STREAMS, NUM_STORED_KEYPOINTS, STREAM_NUM_KEYPOINTS, check_streams,
    stream_slices,
)
from .pose_io import SignPose, in_stored_layout
from .clips import load_pose
# transformers 4.x copies a local checkpoint's module with only the modules that file imports itself: `load_pose`
# reads videos with `holistic`, so it is named here too (tests/test_layout.py checks each entry module's tree).
from .holistic import HolisticExtractor  # noqa: E402,F401

logger = logging.getLogger(__name__)

NORMALIZATIONS = ("shoulder", "none")
SAMPLINGS = ("uniform", "random", "window", "full")
_LEFT_SHOULDER = BODY_POSE_NAMES.index("LEFT_SHOULDER")
_RIGHT_SHOULDER = BODY_POSE_NAMES.index("RIGHT_SHOULDER")
_MIN_SCALE = 1e-6
_STORED_SLICES = stream_slices(ALL_STREAMS)


def normalize_keypoints(keypoints, keypoint_mask, *, width=0, height=0, method="shoulder", streams=ALL_STREAMS):
    """Normalise x, y of a clip to the signer: shoulder midpoint at the origin, shoulder width 1.

    Args:
        keypoints: `(T, K, >=2)` x, y (then anything) normalised to the frame, keypoints of `streams` in order.
        keypoint_mask: `(T, K)` bool, True where detected.
        width, height: frame size. x is multiplied by width / height first, so that x and y share one unit
            (MediaPipe divides x by the width and y by the height). 0 (unknown) skips the correction.
        method: `"shoulder"` or `"none"` (x, y as given, no aspect correction).
        streams: the streams `keypoints` holds, to find the shoulders (body stream, LEFT/RIGHT_SHOULDER).

    `"shoulder"` uses per-clip statistics over the frames where both shoulders are detected: the mean shoulder
    midpoint becomes (0, 0) and the mean shoulder width 1. One transform for the whole clip keeps the signer's own
    movement. If no frame has both shoulders (or the body stream is absent), the centre is the mean of all detected
    keypoints and the scale their root-mean-square distance from it. Undetected keypoints are 0 in the output.

    Returns:
        `(T, K, 2)` float32.
    """
    multiplier, offset = _normalization(keypoints, keypoint_mask, width, height, method, streams)
    return _apply_normalization(keypoints, keypoint_mask, multiplier, offset)


def _normalization(keypoints, keypoint_mask, width, height, method, streams):
    """`(multiplier, offset)` with normalised xy = xy * multiplier - offset (see `normalize_keypoints`)."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalization {method!r}; use one of {NORMALIZATIONS}.")
    if method == "none":
        return np.ones(2), np.zeros(2)
    aspect = np.array([width / height if width and height and width > 0 and height > 0 else 1.0, 1.0])
    xy, mask = np.asarray(keypoints)[..., :2], np.asarray(keypoint_mask, dtype=bool)
    center, scale = _shoulder_frame(xy, mask, streams, aspect)
    return aspect / scale, center / scale


def _apply_normalization(keypoints, keypoint_mask, multiplier, offset):
    xy = np.asarray(keypoints)[..., :2].astype(np.float32)
    out = xy * multiplier.astype(np.float32) - offset.astype(np.float32)
    return out * np.asarray(keypoint_mask, dtype=bool)[..., None]


def _shoulder_frame(xy, mask, streams, aspect):
    """(centre, scale) of the shoulder normalisation in aspect-corrected units, with the documented fallback."""
    body = stream_slices(streams).get("body")
    if body is not None:
        left, right = body.start + _LEFT_SHOULDER, body.start + _RIGHT_SHOULDER
        both = mask[:, left] & mask[:, right]
        if both.any():
            left_xy, right_xy = xy[both, left] * aspect, xy[both, right] * aspect
            scale = np.linalg.norm(left_xy - right_xy, axis=-1).mean()
            if scale > _MIN_SCALE:
                return ((left_xy + right_xy) / 2).mean(axis=0), scale
    detected = xy[mask] * aspect
    if detected.size == 0:
        return np.zeros(2), 1.0
    center = detected.mean(axis=0)
    scale = np.sqrt(((detected - center) ** 2).sum(-1).mean())
    return center, scale if scale > _MIN_SCALE else 1.0


def _even_indices(num_frames, count, offsets=None):
    """`count` frame indices spread evenly over `num_frames` (the centre of each of `count` equal segments, or the
    given offsets in [0, 1) within each); repeats frames when `count > num_frames`."""
    offsets = 0.5 if offsets is None else offsets
    return np.minimum(((np.arange(count) + offsets) * num_frames / count).astype(int), num_frames - 1)


def check_processor_source(source) -> None:
    """Raise `OSError` naming `source` when a local path cannot hold a pose processor: it does not exist, or it is a
    JSON file of another kind (a model's `config.json`, which transformers would read as a processor with default
    settings). Folders and Hub ids are left to transformers."""
    import json
    from pathlib import Path

    text = str(source)
    path = Path(text).expanduser()
    if not path.exists():
        if text.startswith(("/", "./", "../", "~")):
            raise OSError(f"No processor folder {text}: give the checkpoint folder (it holds preprocessor_config.json) "
                          "or a Hub repository id.")
        return
    if path.is_dir():
        return
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise OSError(f"{text} is not a pose processor's JSON file ({error}): give the checkpoint folder or its "
                      "preprocessor_config.json.") from None
    if not isinstance(values, dict):
        raise OSError(f"{text} is not a pose processor's JSON file (it holds a {type(values).__name__}, not an "
                      "object): give the checkpoint folder or its preprocessor_config.json.")
    if "model_type" in values or "architectures" in values:
        raise OSError(f"{text} is a model's configuration, not a pose processor's: give "
                      f"{path.parent}/preprocessor_config.json or the checkpoint folder.")


class MSMAEPoseProcessor(FeatureExtractionMixin):
    r"""
    Turns pose clips (files, arrays, `SignPose`s or dataset rows) into MS-MAE model inputs, and pads batches.

    Args:
        streams (`list[str]`, *optional*, defaults to `["body", "left_hand", "right_hand"]`):
            Streams to output, in order; must equal the model config's `streams` (see `check_config`).
        normalization (`str`, *optional*, defaults to `"shoulder"`):
            `"shoulder"` (see `normalize_keypoints`: origin at the mean shoulder midpoint, unit mean shoulder width,
            aspect ratio corrected) or `"none"` (frame-normalised x, y as read).
        sampling (`str`, *optional*, defaults to `"uniform"`):
            How frames are picked. Evaluation (`training=False`) never draws random numbers.
            - `"uniform"`: `num_frames` frames evenly spread over the clip; in training one random frame from each
              of `num_frames` equal segments. Clips shorter than `num_frames` are stretched by repeating frames, so
              every clip yields `num_frames` real frames: a sign's whole duration maps onto the same number of
              steps, which is what recognition compares (the usual choice for isolated signs).
            - `"random"`: in training, `num_frames` distinct frames at random (kept in order; drawn with repetition
              for short clips); in evaluation as `"uniform"`.
            - `"window"`: a `window_size`-frame window (random start in training, centred in evaluation) evenly
              subsampled to `num_frames` (pretraining: 600 frames to 300). Clips shorter than the window are used
              whole and subsampled by the same factor, never stretched: repeated frames would make masked
              reconstruction trivial. Shorter outputs are padded. Only the window is read, and the normalisation
              statistics are the window's (a clip no longer than the window: the whole clip's, as before).
            - `"full"`: every frame (translation), padded to the batch's longest clip.
        num_frames (`int`, *optional*, defaults to 32):
            Frames per clip for `"uniform"`, `"random"` and `"window"`; ignored by `"full"`. `None` means `"full"`.
        window_size (`int`, *optional*):
            Window length for `"window"` sampling (600 in the pretraining preset).
        max_frames (`int`, *optional*):
            Upper bound on output frames in any mode; longer selections are evenly subsampled (keeps a whole
            sentence rather than cutting its end).
        pad_to_multiple_of (`int`, *optional*):
            Round the padded batch length up to a multiple of this (e.g. the model's `cubelet_size` for fixed shapes;
            the model pads by itself otherwise).
        augmentations (`list[dict]` or `Compose`, *optional*):
            Augmentations applied when called with `training=True`, after normalisation; saved as a list of
            `{"type": ..., **parameters}` (see `msmae.augmentation`).

    Presets: `MSMAEPoseProcessor.from_preset("recognition" | "pretraining" | "translation", **overrides)`.

    Example:

    ```python
    >>> from msmae.processing_msmae import MSMAEPoseProcessor

    >>> processor = MSMAEPoseProcessor.from_preset("recognition", streams=["body", "left_hand", "right_hand"])
    >>> inputs = processor(["sign.pose", "other.pose"], return_tensors="pt")  # doctest: +SKIP
    >>> inputs["pose_values"].shape  # doctest: +SKIP
    torch.Size([2, 32, 48, 2])
    ```
    """

    model_input_names = ["pose_values", "keypoint_mask", "attention_mask"]

    def __init__(
        self,
        streams=DEFAULT_STREAMS,
        normalization="shoulder",
        sampling="uniform",
        num_frames=32,
        window_size=None,
        max_frames=None,
        pad_to_multiple_of=None,
        augmentations=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        streams = check_streams(streams)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}, got {normalization!r}.")
        if sampling not in SAMPLINGS:
            raise ValueError(f"`sampling` must be one of {SAMPLINGS}, got {sampling!r}.")
        if num_frames is None:
            sampling = "full"
        elif sampling != "full" and (not isinstance(num_frames, int) or num_frames < 1):
            raise ValueError(f"`num_frames` must be a positive integer (or None for full length), got {num_frames!r}.")
        if sampling == "window" and (window_size is None or window_size < num_frames):
            raise ValueError(f"`window` sampling needs `window_size` >= `num_frames` ({num_frames}), got {window_size!r}.")
        for name, value in (("max_frames", max_frames), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")
        self.streams = streams
        self.normalization = normalization
        self.sampling = sampling
        self.num_frames = None if sampling == "full" else num_frames
        self.window_size = window_size
        self.max_frames = max_frames
        self.pad_to_multiple_of = pad_to_multiple_of
        # Stored as JSON-able configuration; built (and validated) here, rebuilt per call.
        self.augmentations = build_augmentations(augmentations).to_config() if augmentations else None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        check_processor_source(pretrained_model_name_or_path)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_preset(cls, task: str, **kwargs) -> "MSMAEPoseProcessor":
        """A processor set up for `task`, with `kwargs` overriding the preset.

        - `"recognition"`: 32 uniformly sampled frames (random segments in training), Sign-CLIP's spatial
          augmentation.
        - `"pretraining"`: a 600-frame window subsampled to 300 frames, no augmentation (masking is the task).
        - `"translation"`: every frame, padded; spatial augmentation plus 20% frame deletion/duplication.
        """
        presets = {
            "recognition": {"sampling": "uniform", "num_frames": 32, "augmentations": recognition_augmentations()},
            "pretraining": {"sampling": "window", "window_size": 600, "num_frames": 300, "augmentations": None},
            "translation": {"sampling": "full", "num_frames": None, "augmentations": translation_augmentations()},
        }
        if task not in presets:
            raise ValueError(f"Unknown preset {task!r}; use one of {sorted(presets)}.")
        return cls(**{**presets[task], **kwargs})

    @property
    def num_keypoints(self) -> int:
        return sum(STREAM_NUM_KEYPOINTS[name] for name in self.streams)

    def check_config(self, config) -> None:
        """Raise if the model `config` expects other streams than this processor outputs."""
        if list(config.streams) != self.streams:
            raise ValueError(
                f"The processor outputs streams {self.streams} but the model config expects {list(config.streams)}; "
                "build the processor with streams=config.streams."
            )

    # ---- one clip ---------------------------------------------------------------------------------------------------

    def frame_range(self, num_frames: int, training=False, rng=None) -> tuple[int, int]:
        """The frames `[start, stop)` of a clip of `num_frames` frames that processing reads: for `"window"`
        sampling the window (a random start drawn from `rng` in training, centred in evaluation), otherwise the
        whole clip. Chosen from the length alone, so a reader can fetch only these frames
        (`msmae.data.windows.PoseRow`)."""
        if self.sampling != "window" or num_frames <= self.window_size:
            return 0, num_frames
        room = num_frames - self.window_size
        start = int((rng if rng is not None else np.random.default_rng()).integers(room + 1)) if training else room // 2
        return start, start + self.window_size

    def process_clip(self, clip, training=False, rng=None):
        """`pose_values (T, K, 2)` float32 and `keypoint_mask (T, K)` bool of one clip, before padding.

        `clip` is a `SignPose`, or a stored dataset row read lazily (`msmae.data.windows.PoseRow`: anything with
        `num_frames` and `read_frames(start, stop) -> SignPose`). Only the frames of `frame_range` are read; the
        normalisation statistics come from them (for `"window"` sampling: the whole window, before subsampling;
        a clip no longer than the window is read whole), augmentations apply to them, then frames are picked.
        Both kinds of `clip` give the same numbers for the same `rng` state.
        """
        rng = rng if rng is not None else np.random.default_rng()
        start, stop = self.frame_range(clip.num_frames, training, rng)
        pose = in_stored_layout(_read_frames(clip, start, stop))  # rows may hold all 543 Holistic landmarks
        name = pose.source or "clip"
        if pose.num_frames == 0:
            raise ValueError(f"{name} has zero frames; there is nothing to process. Check the extraction of this clip.")
        if not pose.keypoint_mask.any():
            logger.warning("%s: no keypoint is detected in frames %d-%d (no person in view?); its features are all "
                           "zero.", name, start, stop - 1)
        keep = self._stored_keypoints()
        # Statistics from the stored keypoints (the shoulders are there whatever the streams), applied to kept ones.
        multiplier, offset = _normalization(
            pose.keypoints, pose.keypoint_mask, pose.width, pose.height, self.normalization, ALL_STREAMS
        )
        if not (training and self.augmentations):
            # Normalisation is per frame, so picking frames first gives the same result for less work.
            index = self._frame_indices(pose.num_frames, training, rng)
            mask = pose.keypoint_mask.take(index, axis=0)[:, keep]
            values = _apply_normalization(pose.keypoints.take(index, axis=0)[:, keep, :2], mask, multiplier, offset)
        else:
            mask = pose.keypoint_mask[:, keep]
            values = _apply_normalization(pose.keypoints[:, keep, :2], mask, multiplier, offset)
            values, mask = build_augmentations(self.augmentations)(values, mask, rng)
            index = self._frame_indices(values.shape[0], training, rng)
            values, mask = values[index], mask[index]
        # Checked where it matters (the statistics and what is output), not on every stored number.
        if not (np.isfinite(offset).all() and np.isfinite(multiplier).all() and np.isfinite(values).all()):
            raise ValueError(
                f"{name} holds NaN or infinite keypoints; undetected keypoints must be 0 and masked. Read raw "
                "landmarks with msmae.pose_io.read_landmark_array, which masks them."
            )
        return values, mask

    def _stored_keypoints(self):
        return _stored_keypoints(tuple(self.streams))

    def _frame_indices(self, num_frames, training, rng):
        if self.sampling == "full":
            index = np.arange(num_frames)
        elif self.sampling == "window":
            start, stop = self.frame_range(num_frames, training, rng)  # (0, num_frames) for the frames read
            length = stop - start
            count = min(length, max(1, int(round(length * self.num_frames / self.window_size))))
            index = start + _even_indices(length, count)
        elif self.sampling == "random" and training:
            replace = num_frames < self.num_frames
            index = np.sort(rng.choice(num_frames, size=self.num_frames, replace=replace))
        else:  # uniform, or random at evaluation
            offsets = rng.random(self.num_frames) if training else None
            index = _even_indices(num_frames, self.num_frames, offsets)
        if self.max_frames is not None and len(index) > self.max_frames:
            index = index[_even_indices(len(index), self.max_frames)]
        return index

    # ---- batches ----------------------------------------------------------------------------------------------------

    def __call__(self, poses, training=False, seed=None, generator=None, return_tensors=None, **load_kwargs):
        """Process one clip or a batch.

        Args:
            poses: a `SignPose`, a path (`.pose`, `.npy`, `.npz`, `.json`, a frame folder or a video; see
                `msmae.clips.load_pose`), a landmark array (numpy or torch; 4-D means a batch), a dataset row in
                `SignPose.to_example` format or a batch of rows (dict of columns), or a list of any of these.
            training: random frame sampling and augmentations (see the class docstring).
            seed, generator: randomness for training: a `numpy.random.Generator`, or a seed to make one
                (both `None`: fresh entropy). Evaluation is deterministic regardless.
            return_tensors: `"pt"`, `"np"` or `None` (numpy arrays).
            load_kwargs: passed to `load_pose` for paths and arrays (e.g. `width`, `height`, `layout`).

        Returns:
            `BatchFeature` with `pose_values (B, T, K, 2)` float32, `keypoint_mask (B, T, K)` bool and
            `attention_mask (B, T)` int64 (1 = real frame), padded at the end to the longest clip.
        """
        rng = generator if generator is not None else np.random.default_rng(seed)
        items = self._as_items(poses)
        if not items:
            raise ValueError("No clips were given to the processor.")
        features = []
        for position, item in enumerate(items):
            try:
                pose = load_pose(item) if isinstance(item, (SignPose, Mapping)) else load_pose(item, **load_kwargs)
                values, mask = self.process_clip(pose, training=training, rng=rng)
            except (ValueError, KeyError) as error:
                reason = f"missing column {error}" if isinstance(error, KeyError) else error
                raise ValueError(f"Clip {position} ({_describe(item)}): {reason}") from error
            features.append({"pose_values": values, "keypoint_mask": mask})
        return self.pad(features, return_tensors=return_tensors)

    def pad(self, features, return_tensors="pt") -> BatchFeature:
        """Pad per-clip features (dicts with `pose_values (T, K, 2)`, `keypoint_mask (T, K)`, optional
        `attention_mask (T,)`, plus any other keys, e.g. `labels`, which are stacked) into one batch.

        A data collator as it stands: `Trainer(..., data_collator=processor.pad)` or
        `DataLoader(..., collate_fn=processor.pad)`, hence torch tensors by default; `return_tensors=None` gives
        numpy arrays.
        """
        if not features:
            raise ValueError("`pad` got no features.")
        values = [np.asarray(_to_numpy(f["pose_values"]), dtype=np.float32) for f in features]
        for position, value in enumerate(values):
            if value.ndim != 3 or value.shape[1:] != (self.num_keypoints, 2):
                raise ValueError(
                    f"Feature {position}: `pose_values` must have shape (frames, {self.num_keypoints}, 2) for streams "
                    f"{self.streams}, got {value.shape}."
                )
        lengths = [len(v) for v in values]
        length = max(lengths)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "pose_values": np.zeros((len(values), length, self.num_keypoints, 2), dtype=np.float32),
            "keypoint_mask": np.zeros((len(values), length, self.num_keypoints), dtype=bool),
            "attention_mask": np.zeros((len(values), length), dtype=np.int64),
        }
        for b, (feature, value) in enumerate(zip(features, values)):
            frames = len(value)
            frame_mask = np.ones(frames, dtype=bool)
            if feature.get("attention_mask") is not None:
                frame_mask = np.asarray(_to_numpy(feature["attention_mask"]), dtype=bool).reshape(frames)
            mask = np.asarray(_to_numpy(feature["keypoint_mask"]), dtype=bool).reshape(value.shape[:2])
            batch["keypoint_mask"][b, :frames] = mask & frame_mask[:, None]
            batch["pose_values"][b, :frames] = value * batch["keypoint_mask"][b, :frames, :, None]
            batch["attention_mask"][b, :frames] = frame_mask
        for key in features[0]:
            if key not in batch:
                batch[key] = _stack([_to_numpy(f[key]) for f in features])
        return BatchFeature(batch, tensor_type=return_tensors)

    # ---- inputs -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _as_items(poses) -> list:
        if isinstance(poses, (list, tuple)):
            return list(poses)
        if isinstance(poses, Mapping) and "keypoints" in poses and _nesting_depth(poses["keypoints"]) == 4:
            count = len(poses["keypoints"])
            return [{key: column[i] for key, column in poses.items()} for i in range(count)]
        array = _to_numpy(poses)
        if isinstance(array, np.ndarray) and array.ndim == 4:
            return list(array)
        return [poses]




def _to_numpy(value):
    if hasattr(value, "detach"):  # torch tensor
        return value.detach().cpu().numpy()
    return value


def _stack(values):
    """Numeric columns (labels) as one array; anything else (text, ragged) as a list."""
    arrays = [np.asarray(v) for v in values]
    if all(a.dtype.kind in "biuf" and a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return list(values)


def _nesting_depth(value) -> int:
    """Array depth of nested lists/arrays (4 for a batch of (T, K, C) keypoints)."""
    depth = 0
    while True:
        value = _to_numpy(value)
        if isinstance(value, np.ndarray):
            return depth + value.ndim if value.dtype != object else depth + 1 + _nesting_depth(value.flat[0])
        if not isinstance(value, (list, tuple)) or not value:
            return depth + (1 if isinstance(value, (list, tuple)) else 0)
        value, depth = value[0], depth + 1


@lru_cache
def _stored_keypoints(streams):
    """`streams` among the stored keypoints: a slice when they are contiguous (indexing then gives views)."""
    keep = np.concatenate([np.arange(NUM_STORED_KEYPOINTS)[_STORED_SLICES[name]] for name in streams])
    if (np.diff(keep) == 1).all():
        return slice(int(keep[0]), int(keep[-1]) + 1)
    return keep


def _read_frames(clip, start, stop) -> SignPose:
    """Frames `[start, stop)` of `clip` as a `SignPose` (views of an in-memory one)."""
    if not isinstance(clip, SignPose):
        return clip.read_frames(start, stop)
    if (start, stop) == (0, clip.num_frames):
        return clip
    return replace(clip, keypoints=clip.keypoints[start:stop], keypoint_mask=clip.keypoint_mask[start:stop])


def _describe(item) -> str:
    if isinstance(item, SignPose):
        return item.source or "SignPose"
    if isinstance(item, Mapping):
        return str(item.get("source") or "dataset row")
    if hasattr(item, "shape"):
        return f"array of shape {tuple(item.shape)}"
    return str(item)


__all__ = ["MSMAEPoseProcessor", "normalize_keypoints"]
