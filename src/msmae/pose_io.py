"""In-memory pose clips and the dataset row format that `msmae extract` writes and the processor reads."""

from dataclasses import dataclass, field

import numpy as np

from .configuration_msmae import STREAM_NUM_KEYPOINTS

# Every stored clip keeps all four streams in this order, whatever a model uses: a model's `streams`
# picks its subset at load time, so one extraction serves body+hands and body+hands+face models alike.
ALL_STREAMS = ("body", "left_hand", "right_hand", "face")
NUM_STORED_KEYPOINTS = sum(STREAM_NUM_KEYPOINTS[name] for name in ALL_STREAMS)  # 160


def stream_slices(streams=ALL_STREAMS) -> dict[str, slice]:
    """Keypoint slice of each stream when `streams` are concatenated in order."""
    slices, start = {}, 0
    for name in streams:
        slices[name] = slice(start, start + STREAM_NUM_KEYPOINTS[name])
        start += STREAM_NUM_KEYPOINTS[name]
    return slices


@dataclass
class SignPose:
    """One signing clip as MediaPipe saw it, before any normalisation.

    Attributes:
        keypoints: `(num_frames, 160, 4)` float32: x and y normalised to the frame (0-1, as MediaPipe returns
            them), z and visibility where the source gives them (0 otherwise), for the streams of `ALL_STREAMS`
            in that order. Undetected keypoints hold 0, never NaN.
        keypoint_mask: `(num_frames, 160)` bool, True where the keypoint was detected.
        fps: frames per second of the source.
        width, height: frame size in pixels (needed to correct the aspect ratio of normalised x, y); 0 if unknown.
        source: where the clip came from (a path), for provenance.
    """

    keypoints: np.ndarray
    keypoint_mask: np.ndarray
    fps: float
    width: int = 0
    height: int = 0
    source: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.keypoint_mask = np.asarray(self.keypoint_mask, dtype=bool)
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (NUM_STORED_KEYPOINTS, 4):
            raise ValueError(
                f"SignPose.keypoints must have shape (frames, {NUM_STORED_KEYPOINTS}, 4), got {self.keypoints.shape}"
                f" (source: {self.source or 'unknown'})."
            )
        if self.keypoint_mask.shape != self.keypoints.shape[:2]:
            raise ValueError(
                f"SignPose.keypoint_mask must have shape {self.keypoints.shape[:2]}, got {self.keypoint_mask.shape}."
            )

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    def to_example(self) -> dict:
        """The dataset row written by `msmae extract` (see the README's dataset schema)."""
        return {
            "keypoints": self.keypoints,
            "keypoint_mask": self.keypoint_mask,
            "fps": float(self.fps),
            "width": int(self.width),
            "height": int(self.height),
            "num_frames": self.num_frames,
            "source": self.source,
        }

    @classmethod
    def from_example(cls, example: dict) -> "SignPose":
        """Inverse of `to_example`; extra columns (label, text, signer) are kept in `metadata`."""
        known = {"keypoints", "keypoint_mask", "fps", "width", "height", "num_frames", "source"}
        return cls(
            keypoints=np.asarray(example["keypoints"], dtype=np.float32),
            keypoint_mask=np.asarray(example["keypoint_mask"], dtype=bool),
            fps=float(example.get("fps") or 0.0),
            width=int(example.get("width") or 0),
            height=int(example.get("height") or 0),
            source=str(example.get("source") or ""),
            metadata={k: v for k, v in example.items() if k not in known},
        )
