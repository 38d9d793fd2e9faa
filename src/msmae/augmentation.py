"""Seeded, composable augmentations of normalised pose sequences.

Every transform takes `pose_values (T, K, 2)`, `keypoint_mask (T, K)` and a `numpy.random.Generator`, and returns new
arrays (temporal transforms change T). Undetected keypoints stay 0 and masked. Spatial transforms act about the origin,
which the processor's shoulder normalisation puts at the signer's shoulder midpoint.

The default spatial augmentation is Sign-CLIP's: pose-format's `Pose.augment2d` with its default spreads, which
`RandomAugment2D` reproduces draw for draw (a shear, a rotation and a vertical scale, each from a normal
distribution). The earlier bounded variant (rotation, x-shear and a two-axis scale drawn uniformly: `RandomRotation`,
`RandomShear`, `RandomScale`) stays available as `spatial="uniform"`. Temporal resampling follows Sign-CLIP's speed
change (frame count scaled by about +-20%), and frame deletion/duplication is the usual sign language translation
augmentation.

Transforms are dataclasses so a pipeline round-trips through JSON (`Compose.to_config` / `build_augmentations`), which
is how `MSMAEPoseProcessor` stores it in `preprocessor_config.json`.
"""

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np


class PoseTransform:
    """Base of the augmentations: `type` names the transform in a saved configuration."""

    type: ClassVar[str] = ""

    def __call__(self, pose_values, keypoint_mask, rng: np.random.Generator):
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"type": self.type, **asdict(self)}


def _apply_linear(pose_values, keypoint_mask, matrix):
    """Row-vector points times `matrix` (2x2), masked keypoints back to 0."""
    out = (np.asarray(pose_values, dtype=np.float32) @ np.asarray(matrix, dtype=np.float32).T).astype(np.float32)
    mask = np.asarray(keypoint_mask, dtype=bool)
    out[~mask] = 0.0
    return out, mask.copy()


@dataclass
class RandomRotation(PoseTransform):
    """Rotate every frame by one angle drawn uniformly in [-max_degrees, max_degrees]."""

    max_degrees: float = 15.0
    type: ClassVar[str] = "rotation"

    def __call__(self, pose_values, keypoint_mask, rng):
        angle = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees))
        cos, sin = np.cos(angle), np.sin(angle)
        return _apply_linear(pose_values, keypoint_mask, [[cos, -sin], [sin, cos]])


@dataclass
class RandomShear(PoseTransform):
    """Shear x by y (x += s * y), s drawn uniformly in [-max_shear, max_shear]. (pose-format's `augment2d` shears
    the other way, y += s * x: see `RandomAugment2D`.)"""

    max_shear: float = 0.2
    type: ClassVar[str] = "shear"

    def __call__(self, pose_values, keypoint_mask, rng):
        shear = rng.uniform(-self.max_shear, self.max_shear)
        return _apply_linear(pose_values, keypoint_mask, [[1.0, shear], [0.0, 1.0]])


@dataclass
class RandomScale(PoseTransform):
    """Scale x and y by independent factors drawn uniformly in [1 - max_scale, 1 + max_scale].

    Independent factors also vary the aspect ratio (body proportions, camera distortion); Sign-CLIP scales y only.
    """

    max_scale: float = 0.2
    type: ClassVar[str] = "scale"

    def __call__(self, pose_values, keypoint_mask, rng):
        sx, sy = rng.uniform(1.0 - self.max_scale, 1.0 + self.max_scale, size=2)
        return _apply_linear(pose_values, keypoint_mask, [[sx, 0.0], [0.0, sy]])


@dataclass
class RandomAugment2D(PoseTransform):
    """pose-format's `augment2d` (Sign-CLIP's spatial augmentation), with this pipeline's generator.

    Draws, in pose-format's order, a shear `s ~ N(0, shear_std)`, an angle `a ~ N(0, rotation_std)` (radians) and a
    scale change `k ~ N(0, scale_std)` (a spread of 0 skips the draw), and maps each point as a row vector,
    `p' = p @ [[1, s], [0, 1]] @ [[cos a, -sin a], [sin a, cos a]] @ [[1, 0], [0, 1 + k]]`: y gains s times x,
    the rotation is by -a, and only y is scaled. Given a `numpy.random.RandomState` seeded like pose-format's global
    generator, the output equals `Pose.augment2d`'s.
    """

    rotation_std: float = 0.2
    shear_std: float = 0.2
    scale_std: float = 0.2
    type: ClassVar[str] = "augment2d"

    def __call__(self, pose_values, keypoint_mask, rng):
        matrix = np.eye(2)
        if self.shear_std > 0:
            matrix = matrix @ np.array([[1.0, rng.normal(0.0, self.shear_std)], [0.0, 1.0]])
        if self.rotation_std > 0:
            angle = rng.normal(0.0, self.rotation_std)
            cos, sin = np.cos(angle), np.sin(angle)
            matrix = matrix @ np.array([[cos, -sin], [sin, cos]])
        if self.scale_std > 0:
            matrix = matrix @ np.diag([1.0, 1.0 + rng.normal(0.0, self.scale_std)])
        return _apply_linear(pose_values, keypoint_mask, matrix.T)  # _apply_linear maps p to p @ matrix.T


@dataclass
class RandomSpeed(PoseTransform):
    """Resample the clip to round(T * f) frames, f drawn uniformly in [1 - max_change, 1 + max_change].

    Linear interpolation between neighbouring frames where the keypoint is detected in both; otherwise the nearest
    frame's value and mask, so no keypoint is invented from an undetected one.
    """

    max_change: float = 0.2
    type: ClassVar[str] = "speed"

    def __call__(self, pose_values, keypoint_mask, rng):
        pose_values = np.asarray(pose_values, dtype=np.float32)
        mask = np.asarray(keypoint_mask, dtype=bool)
        frames = pose_values.shape[0]
        if frames == 0:
            return pose_values, mask
        new_frames = max(1, int(round(frames * rng.uniform(1.0 - self.max_change, 1.0 + self.max_change))))
        times = np.linspace(0.0, frames - 1, new_frames)
        before = np.floor(times).astype(int)
        after = np.minimum(before + 1, frames - 1)
        weight = (times - before)[:, None, None].astype(np.float32)
        both = mask[before] & mask[after]
        nearest = np.where(weight[:, 0, 0] < 0.5, before, after)
        interpolated = (1.0 - weight) * pose_values[before] + weight * pose_values[after]
        out = np.where(both[..., None], interpolated, pose_values[nearest]).astype(np.float32)
        out_mask = both | mask[nearest]
        out[~out_mask] = 0.0
        return out, out_mask


@dataclass
class RandomFrameDropDuplicate(PoseTransform):
    """Pick `rate` of the frames at random; delete half of them and duplicate the other half (order kept)."""

    rate: float = 0.2
    type: ClassVar[str] = "frame_drop_duplicate"

    def __call__(self, pose_values, keypoint_mask, rng):
        pose_values = np.asarray(pose_values, dtype=np.float32)
        mask = np.asarray(keypoint_mask, dtype=bool)
        frames = pose_values.shape[0]
        if frames == 0:
            return pose_values, mask
        chosen = rng.choice(frames, size=int(round(self.rate * frames)), replace=False)
        drop = rng.random(chosen.size) < 0.5
        counts = np.ones(frames, dtype=int)
        counts[chosen[drop]] = 0
        counts[chosen[~drop]] = 2
        if not counts.any():  # never delete a whole (tiny) clip
            counts[rng.integers(frames)] = 1
        index = np.repeat(np.arange(frames), counts)
        return pose_values[index].copy(), mask[index].copy()


TRANSFORMS = {
    cls.type: cls
    for cls in (RandomAugment2D, RandomRotation, RandomShear, RandomScale, RandomSpeed, RandomFrameDropDuplicate)
}


class Compose:
    """Apply transforms in order with one generator: `Compose([...])(pose_values, keypoint_mask, rng)`."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, pose_values, keypoint_mask, rng: np.random.Generator):
        for transform in self.transforms:
            pose_values, keypoint_mask = transform(pose_values, keypoint_mask, rng)
        return pose_values, keypoint_mask

    def to_config(self) -> list[dict]:
        return [transform.to_dict() for transform in self.transforms]

    def __repr__(self):
        return f"Compose({self.transforms!r})"


def build_augmentations(config) -> Compose:
    """A `Compose` from a saved configuration: a list of `{"type": ..., **parameters}` (see `TRANSFORMS`), or a
    `Compose` / list of transforms (returned composed)."""
    if isinstance(config, Compose):
        return config
    transforms = []
    for entry in config or []:
        if isinstance(entry, PoseTransform):
            transforms.append(entry)
            continue
        entry = dict(entry)
        kind = entry.pop("type", None)
        if kind not in TRANSFORMS:
            raise ValueError(f"Unknown augmentation {kind!r} in {config!r}; known: {sorted(TRANSFORMS)}.")
        try:
            transforms.append(TRANSFORMS[kind](**entry))
        except TypeError as error:
            raise ValueError(f"Bad parameters for augmentation {kind!r}: {entry!r} ({error}).") from error
    return Compose(transforms)


SPATIAL = ("augment2d", "uniform")


def spatial_augmentations(spatial: str = "augment2d") -> list[PoseTransform]:
    """The spatial transforms: `"augment2d"` (default: Sign-CLIP's, pose-format's `augment2d` distributions) or
    `"uniform"` (rotation within +-15 degrees, x-shear within +-0.2, each axis scaled within +-20%)."""
    if spatial == "augment2d":
        return [RandomAugment2D()]
    if spatial == "uniform":
        return [RandomRotation(15.0), RandomShear(0.2), RandomScale(0.2)]
    raise ValueError(f"Unknown spatial augmentation {spatial!r}; use one of {SPATIAL}.")


def recognition_augmentations(spatial: str = "augment2d") -> Compose:
    """Default training augmentation for isolated sign recognition: the spatial set (see `spatial_augmentations`).

    No temporal transform: uniform sampling to a fixed frame count already makes speed changes largely invisible.
    """
    return Compose(spatial_augmentations(spatial))


def translation_augmentations(spatial: str = "augment2d") -> Compose:
    """Default training augmentation for translation: the spatial set plus 20% random frame deletion/duplication."""
    return Compose([*spatial_augmentations(spatial), RandomFrameDropDuplicate(0.2)])


__all__ = [
    "Compose",
    "PoseTransform",
    "RandomAugment2D",
    "RandomFrameDropDuplicate",
    "RandomRotation",
    "RandomScale",
    "RandomShear",
    "RandomSpeed",
    "SPATIAL",
    "TRANSFORMS",
    "build_augmentations",
    "recognition_augmentations",
    "spatial_augmentations",
    "translation_augmentations",
]
