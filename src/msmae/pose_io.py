"""The in-memory pose clip (`SignPose`) and the readers of pose files and landmark arrays.

Readers turn every supported pose source into a `SignPose` (x, y normalised to the frame, a keypoint mask, never NaN):
pose-format `.pose` files (MediaPipe Holistic, full or reduced), landmark arrays (`.npy`/`.npz`, MediaPipe
Holistic order, the stored MS-MAE order or the MSL-150 per-frame vectors), folders of per-frame `.npy` vectors,
and ASL-App JSON landmark files. `clips.load_pose` picks the reader for a source; videos go through `holistic`, which
builds on this module (and never the other way round).
"""

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .keypoint_layout import (
    BODY_POSE_INDICES,
    BODY_POSE_NAMES,
    FACE_MESH_INDICES,
    HAND_LANDMARK_NAMES,
    HOLISTIC_COMPONENT_STARTS,
    HOLISTIC_TO_STORED,
    KEYPOINT_LAYOUTS,
    NUM_FACE_LANDMARKS,
    NUM_HAND_LANDMARKS,
    NUM_POSE_LANDMARKS,
    NUM_STORED_KEYPOINTS,
    keypoint_layout,
)


@dataclass
class SignPose:
    """One signing clip as MediaPipe saw it, before any normalisation.

    Attributes:
        keypoints: `(num_frames, 160, 4)` float32: x and y normalised to the frame (0-1, as MediaPipe returns
            them), z and visibility where the source gives them (0 otherwise), for the streams of `ALL_STREAMS`
            (`keypoint_layout`) in that order. Undetected keypoints hold 0, never NaN. Clips extracted with
            `keep_landmarks="all"` hold all 543 MediaPipe Holistic landmarks instead (`layout == "holistic"`);
            `in_stored_layout` picks the 160 of the streams from them.
        keypoint_mask: `(num_frames, 160 or 543)` bool, True where the keypoint was detected.
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
        if (self.keypoints.ndim != 3 or self.keypoints.shape[2] != 4
                or self.keypoints.shape[1] not in KEYPOINT_LAYOUTS.values()):
            raise ValueError(
                f"SignPose.keypoints must have shape (frames, {NUM_STORED_KEYPOINTS}, 4) (or (frames, "
                f"{KEYPOINT_LAYOUTS['holistic']}, 4): every Holistic landmark), got {self.keypoints.shape}"
                f" (source: {self.source or 'unknown'})."
            )
        if self.keypoint_mask.shape != self.keypoints.shape[:2]:
            raise ValueError(
                f"SignPose.keypoint_mask must have shape {self.keypoints.shape[:2]}, got {self.keypoint_mask.shape}."
            )

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    @property
    def layout(self) -> str:
        """"msmae" (the 160 keypoints of the streams) or "holistic" (all 543 MediaPipe Holistic landmarks)."""
        return keypoint_layout(self.keypoints.shape[1])

    def to_example(self) -> dict:
        """The stored dataset row (`ROW_COLUMNS`, typed by `row_features`); the clip columns come from `metadata`
        (`clip_id` defaults to the source, the frame range to the whole clip)."""
        start = int(self.metadata.get("start_frame") or 0)
        return {
            "keypoints": self.keypoints,
            "keypoint_mask": self.keypoint_mask,
            "fps": float(self.fps),
            "width": int(self.width),
            "height": int(self.height),
            "num_frames": self.num_frames,
            "source": self.source,
            "clip_id": str(self.metadata.get("clip_id") or self.source),
            "start_frame": start,
            "end_frame": int(self.metadata.get("end_frame") or start + self.num_frames),
        }

    @classmethod
    def from_example(cls, example: dict) -> "SignPose":
        """Inverse of `to_example`; the clip columns and extra columns (label, text, signer) go to `metadata`."""
        return cls(
            keypoints=np.asarray(example["keypoints"], dtype=np.float32),
            keypoint_mask=np.asarray(example["keypoint_mask"], dtype=bool),
            fps=float(example.get("fps") or 0.0),
            width=int(example.get("width") or 0),
            height=int(example.get("height") or 0),
            source=str(example.get("source") or ""),
            metadata={k: v for k, v in example.items() if k not in POSE_COLUMNS},
        )




def in_stored_layout(pose):
    """`pose` with the 160 keypoints of the streams (`ALL_STREAMS` order): itself, or picked from all 543 Holistic
    landmarks. Models and the processor work on this layout whatever a dataset stores."""
    if pose.keypoints.shape[1] == NUM_STORED_KEYPOINTS:
        return pose
    keypoint_layout(pose.keypoints.shape[1])  # names the layouts when it is neither
    index = np.asarray(HOLISTIC_TO_STORED)
    return SignPose(keypoints=pose.keypoints[:, index], keypoint_mask=pose.keypoint_mask[:, index], fps=pose.fps,
                    width=pose.width, height=pose.height, source=pose.source, metadata=dict(pose.metadata))


# The SignPose part of a stored dataset row (`SignPose.to_example`); the whole row, with its clip columns and
# `datasets` features, is defined once on the data side, in `msmae.data.schema`.
POSE_COLUMNS = ("keypoints", "keypoint_mask", "fps", "width", "height", "num_frames", "source")


# ----------------------------------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------------------------------

# (component, point name) of each stored keypoint in pose-format's MediaPipe Holistic naming, in stored order.
STORED_POINT_NAMES = (
    tuple(("POSE_LANDMARKS", name) for name in BODY_POSE_NAMES)
    + tuple(("LEFT_HAND_LANDMARKS", name) for name in HAND_LANDMARK_NAMES)
    + tuple(("RIGHT_HAND_LANDMARKS", name) for name in HAND_LANDMARK_NAMES)
    + tuple(("FACE_LANDMARKS", str(index)) for index in FACE_MESH_INDICES)
)
# Streams a clip cannot do without: a layout missing any of their points is rejected, a missing face is masked.
REQUIRED_STREAMS = ("body", "left_hand", "right_hand")
HOLISTIC_COMPONENTS = ("POSE_LANDMARKS", "FACE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS")
# (component, point name) of each keypoint of the "holistic" layout (all 543 landmarks), pose-format's names.
POSE_POINT_NAMES = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE", "RIGHT_EYE_OUTER",
    "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW",
    "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY", "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX",
    "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP", "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE",
    "LEFT_HEEL", "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
HOLISTIC_POINT_NAMES = (
    tuple(("POSE_LANDMARKS", name) for name in POSE_POINT_NAMES)
    + tuple(("FACE_LANDMARKS", str(index)) for index in range(NUM_FACE_LANDMARKS))
    + tuple(("LEFT_HAND_LANDMARKS", name) for name in HAND_LANDMARK_NAMES)
    + tuple(("RIGHT_HAND_LANDMARKS", name) for name in HAND_LANDMARK_NAMES)
)
LAYOUT_POINT_NAMES = {"msmae": STORED_POINT_NAMES, "holistic": HOLISTIC_POINT_NAMES}
assert all(HOLISTIC_POINT_NAMES[start][0] == name for name, start in HOLISTIC_COMPONENT_STARTS.items())
assert tuple(HOLISTIC_POINT_NAMES[i] for i in HOLISTIC_TO_STORED) == STORED_POINT_NAMES

# Normalised coordinates stay near 0-1 (MediaPipe lets points run a little outside the frame); a median |x| or |y|
# above this can only be pixels.
PIXEL_COORDINATE_THRESHOLD = 2.0

# MSL-150 (armandobecerril/MSL-150-Dataset): one (226,) vector per frame, 25 pose landmarks x (x, y, z, visibility),
# then left and right hand 21 x (x, y, z); recorded at 1280x720, 29.97 fps.
MSL150_NUM_POSE_LANDMARKS = 25
MSL150_VECTOR_SIZE = MSL150_NUM_POSE_LANDMARKS * 4 + 2 * NUM_HAND_LANDMARKS * 3
MSL150_FPS, MSL150_WIDTH, MSL150_HEIGHT = 29.97, 1280, 720

# ASL-App (shravnchandr/ASL-App) keeps 33 face-mesh landmarks, sorted by mesh index.
ASL_APP_FACE_INDICES = (
    0, 1, 4, 13, 14, 17, 33, 61, 63, 66, 70, 78, 105, 107, 133, 145, 148, 152, 159, 176,
    263, 291, 293, 296, 300, 308, 334, 336, 362, 374, 377, 386, 400,
)

# Holistic array sizes: pose 33 + face 468 (478 with irises) + hands 2 x 21, optionally + 33 pose world landmarks.
HOLISTIC_ARRAY_SIZES = {
    NUM_POSE_LANDMARKS + face + 2 * NUM_HAND_LANDMARKS + world: face
    for face in (NUM_FACE_LANDMARKS, NUM_FACE_LANDMARKS + 10)
    for world in (0, NUM_POSE_LANDMARKS)
}
LANDMARK_LAYOUTS = {
    "msmae": f"(frames, {NUM_STORED_KEYPOINTS}, 2-4): the stored MS-MAE order (body, left hand, right hand, face)",
    "holistic": f"(frames, {'|'.join(map(str, sorted(HOLISTIC_ARRAY_SIZES)))}, 2-4): MediaPipe Holistic order "
    "(pose 33, face 468 or 478, left hand 21, right hand 21, optionally pose world 33)",
    "msl150": f"(frames, {MSL150_VECTOR_SIZE}): MSL-150 vectors (25 pose x 4, left hand 21 x 3, right hand 21 x 3)",
}
VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # a folder of these is a video's frames
POSE_SUFFIXES = (".pose", ".npy", ".npz", ".json")


def _build_sign_pose(values, present, *, source, fps, width, height, metadata=None) -> SignPose:
    """SignPose from stored-order `values (T, 160, C<=4)` and `present (T, 160)`: non-finite or absent keypoints
    become 0 and masked, x and y are converted from pixels when they are pixels."""
    values = np.asarray(values, dtype=np.float64)
    keypoints = np.zeros(values.shape[:2] + (4,), dtype=np.float64)
    keypoints[..., : values.shape[-1]] = values
    mask = np.asarray(present, dtype=bool) & np.isfinite(keypoints[..., :2]).all(-1)
    keypoints[~np.isfinite(keypoints)] = 0.0
    keypoints[~mask] = 0.0
    keypoints[..., :2] = _to_frame_units(keypoints[..., :2], mask, width, height, source)
    keypoints[~mask] = 0.0
    return SignPose(
        keypoints=keypoints.astype(np.float32), keypoint_mask=mask, fps=float(fps or 0.0),
        width=int(width or 0), height=int(height or 0), source=source, metadata=dict(metadata or {}),
    )


def _to_frame_units(xy, mask, width, height, source):
    """Divide pixel x, y by the frame size; leave normalised ones alone."""
    detected = xy[mask]
    if detected.size == 0:
        return xy
    typical = float(np.median(np.abs(detected), axis=0).max())
    if typical <= PIXEL_COORDINATE_THRESHOLD:
        return xy
    if not (width and height and width > 1 and height > 1):
        raise ValueError(
            f"{source or 'landmarks'}: coordinates look like pixels (median |x|, |y| = {typical:.1f}) but the frame "
            "size is unknown; pass width= and height= of the video so they can be normalised to 0-1."
        )
    return xy / np.array([width, height], dtype=np.float64)


def _present(values) -> np.ndarray:
    """Detected where x, y are finite and not both exactly 0 (the 'not detected' fill of most exporters)."""
    xy = values[..., :2]
    return np.isfinite(xy).all(-1) & (xy != 0).any(-1)


def _pad_coords(part, channels=4):
    part = np.asarray(part, dtype=np.float64)
    if part.shape[-1] >= channels:
        return part[..., :channels]
    return np.concatenate([part, np.zeros(part.shape[:-1] + (channels - part.shape[-1],))], axis=-1)


def _gather_holistic(pose, left_hand, right_hand, face=None) -> np.ndarray:
    """Stored-order (T, 160, 4) values from MediaPipe Holistic components; a missing face is NaN (masked).

    `pose` needs at least landmarks 0-16 and `face` all 468 mesh points; z and visibility are kept where given.
    """
    frames = pose.shape[0]
    if face is None:
        face = np.full((frames, NUM_FACE_LANDMARKS, 4), np.nan)
    parts = [
        _pad_coords(pose)[:, list(BODY_POSE_INDICES)],
        _pad_coords(left_hand),
        _pad_coords(right_hand),
        _pad_coords(face)[:, list(FACE_MESH_INDICES)],
    ]
    return np.concatenate(parts, axis=1)


# ---- pose-format .pose files -----------------------------------------------------------------------------------------


def read_pose_file(path, layout: str = "msmae") -> SignPose:
    """Read a pose-format `.pose` file of MediaPipe Holistic landmarks into a `SignPose`.

    Points are matched by component and point name, so full (543/553/576/586 points) and reduced layouts (e.g. pose
    33 + 112 or 128 face points + hands, or pose 8 + face + hands) all work. Face points absent from the file are
    masked; a file without the body (shoulders, elbows, wrists) or either hand component is rejected. Pixel
    coordinates (what pose-format's `video_to_pose` writes) are divided by the header's width and height. Keypoints
    with confidence 0 (pose-format's mask) are undetected; the confidence of pose landmarks (MediaPipe's visibility)
    is kept as their 4th value, hands and face have none (0), as in `msmae extract`'s rows. Only the first person
    is read. `layout="holistic"` reads all 543 Holistic landmarks (see `SignPose`) instead of the streams' 160.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is empty, truncated or not a `.pose` file, or its layout is not MediaPipe Holistic.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such .pose file: {path}")
    return read_pose_data(path.read_bytes(), source=str(path), layout=layout)


def read_pose_data(data: bytes, source: str = "pose bytes", layout: str = "msmae") -> SignPose:
    """`read_pose_file` for the bytes of a `.pose` file (a download, an upload); `source` names them in errors."""
    if not data:
        raise ValueError(f"{source} is empty (0 bytes): it holds no pose header or frames. Re-extract it from the "
                         "video.")
    try:
        from pose_format import Pose
    except ImportError as error:
        raise ImportError(f"Reading {source} needs the pose-format package: pip install pose-format") from error
    data = bytes(data)
    check_pose_length(data, source)
    try:
        pose = Pose.read(data)
    except Exception as error:  # pose-format raises struct.error, TypeError, ... on damaged files
        raise ValueError(
            f"{source} is not a readable .pose file ({type(error).__name__}: {error}); it may be truncated or "
            "corrupted. Re-extract it from the video."
        ) from error
    return pose_format_to_sign_pose(pose, source=source, layout=layout)


def check_pose_length(data: bytes, source: str = "pose bytes") -> None:
    """Refuse a `.pose` file whose frames are not all there, by its header's frame count.

    pose-format's v0.1 reader takes the frame count from the file's length (its header stores it in 16 bits), so a
    file cut short reads without error: fewer frames, and coordinates taken for confidences. Its v0.2 reader fails
    without saying what is missing. A header that cannot be read is left to pose-format's reader, which names it.
    """
    try:
        from pose_format.pose_header import PoseHeader
        from pose_format.utils.reader import BufferReader

        reader = BufferReader(data)
        header = PoseHeader.read(reader)
        start, version = reader.read_offset, round(float(header.version), 3)
        body_format = {0.1: "<HHH", 0.2: "<fIH"}.get(version)
        if body_format is None:
            return
        _, frames, people = struct.unpack_from(body_format, data, start)
        start += struct.calcsize(body_format)
        points, dims = sum(len(c.points) for c in header.components), header.num_dims()
    except Exception:  # noqa: BLE001 - a damaged header: pose-format's own read reports it
        return
    frame_size = people * points * (dims + 1) * 4  # float32 coordinates, then a confidence per point
    held = len(data) - start
    if not frame_size:
        return
    if version == 0.1:  # the 16-bit count wraps for files of 65536 frames or more
        whole = held % frame_size == 0 and (held // frame_size) % 65536 == frames
    else:
        whole = held >= frames * frame_size  # pose-format ignores bytes after the frames
    if whole:
        return
    expected = frames * frame_size
    short = held < expected
    missing = f"{expected - held:,} bytes are missing" if short else f"{held - expected:,} bytes too many"
    raise ValueError(
        f"{source} {'is cut short' if short else 'does not match its header'}: its header says {frames} frames of {people} person(s) x {points} points "
        f"({expected:,} bytes of coordinates and confidences), the file holds {held:,} bytes, the size of "
        f"{held / frame_size:.1f} frames ({missing}). Its writing was cut off or it was damaged: re-extract it "
        "from the video."
    )


def pose_format_to_sign_pose(pose, source: str = "", layout: str = "msmae") -> SignPose:
    """Convert a `pose_format.Pose` of MediaPipe Holistic landmarks (see `read_pose_file`) into a `SignPose` of
    `layout` ("msmae": the 160 keypoints of the streams, "holistic": all 543 landmarks)."""
    if layout not in LAYOUT_POINT_NAMES:
        raise ValueError(f"Unknown keypoint layout {layout!r}; use one of {sorted(LAYOUT_POINT_NAMES)}.")
    point_names = LAYOUT_POINT_NAMES[layout]
    header = pose.header
    index, offset = {}, 0
    for component in header.components:
        for position, name in enumerate(component.points):
            index[(component.name, name)] = offset + position
        offset += len(component.points)

    sources = np.array([index.get(key, -1) for key in point_names])
    # Every point but the face's is required (the body and both hands of `REQUIRED_STREAMS`).
    missing = [f"{component}.{name}" for (component, name), found in zip(point_names, sources)
               if found < 0 and component != "FACE_LANDMARKS"]
    if missing:
        found = ", ".join(f"{c.name} ({len(c.points)} points)" for c in header.components) or "none"
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ValueError(
            f"{source or 'pose'}: this pose layout cannot be mapped to MediaPipe Holistic. Components found: {found}. "
            f"Expected MediaPipe Holistic components {', '.join(HOLISTIC_COMPONENTS)} (FACE_LANDMARKS optional) "
            f"named as pose-format's holistic export names them; missing points: {shown}. Re-extract the video "
            "with MediaPipe Holistic (`msmae extract`)."
        )

    data = np.ma.getdata(pose.body.data)
    confidence = np.asarray(pose.body.confidence)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"{source or 'pose'} holds no frames (or no person); nothing to read.")
    data, confidence = data[:, 0], confidence[:, 0]  # first person
    found = sources >= 0
    columns = np.where(found, sources, 0)
    coords = data[:, columns, : min(data.shape[-1], 3)]
    # Only the pose landmarks' confidence is a visibility; pose-format writes 1 for every detected hand or face point.
    is_pose = np.array([component == "POSE_LANDMARKS" for component, _ in point_names])
    visibility = np.where(is_pose, confidence[:, columns], 0.0)
    values = np.concatenate([_pad_coords(coords, 3), visibility[..., None]], axis=-1)
    present = (confidence[:, columns] > 0) & found[None, :]
    return _build_sign_pose(
        values, present, source=source, fps=pose.body.fps,
        width=header.dimensions.width, height=header.dimensions.height,
        metadata={"num_people": int(pose.body.data.shape[1])} if pose.body.data.shape[1] > 1 else None,
    )


# ---- landmark arrays (.npy / .npz / in-memory) -----------------------------------------------------------------------


def infer_layout(shape, name) -> str:
    if len(shape) == 3 and 2 <= shape[2] <= 4:
        if shape[1] == NUM_STORED_KEYPOINTS:
            return "msmae"
        if shape[1] in HOLISTIC_ARRAY_SIZES:
            return "holistic"
    if len(shape) == 2 and shape[1] == MSL150_VECTOR_SIZE:
        return "msl150"
    known = "; ".join(f"{key}: {text}" for key, text in LANDMARK_LAYOUTS.items())
    raise ValueError(f"{name}: a landmark array of shape {tuple(shape)} matches no known layout ({known}).")


def _load_array_file(path: Path):
    """An array (from .npy or a one-array .npz) or, for an .npz holding `keypoints`, a dict of its arrays."""
    if not path.is_file():
        raise FileNotFoundError(f"No such landmark file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(
            f"{path} cannot be read as a numeric array without unpickling ({error}). Save landmarks as a plain "
            "float array (np.save / np.savez)."
        ) from error
    except Exception as error:
        raise ValueError(f"{path} is not a readable .npy/.npz file ({type(error).__name__}: {error}).") from error
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        try:  # an .npz reads its arrays lazily: name the file when one holds objects
            arrays = {key: loaded[key] for key in loaded.files}
        except ValueError as error:
            raise ValueError(f"{path} cannot be read as numeric arrays without unpickling ({error}). Save landmarks "
                             "as plain float arrays (np.save / np.savez).") from error
    if "keypoints" in arrays:
        return arrays
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise ValueError(
        f"{path} holds arrays {sorted(arrays)}; expected one landmark array, or `keypoints` (+ `keypoint_mask`, "
        "`fps`, `width`, `height`) as written by `SignPose.to_example`."
    )


def read_landmark_array(source, layout: str = "auto", *, fps: float = 0.0, width: int = 0, height: int = 0) -> SignPose:
    """Read MediaPipe landmarks from an array or a `.npy`/`.npz` file into a `SignPose`.

    Args:
        source: a path to `.npy`/`.npz` (loaded with `allow_pickle=False`), or an array. An `.npz` with a `keypoints`
            array (and optionally `keypoint_mask`, `fps`, `width`, `height`) is read as a saved `SignPose` row.
        layout: `"auto"` (from the shape) or one of `LANDMARK_LAYOUTS`: `"msmae"` `(T, 160, C)` in stored order,
            `"holistic"` `(T, 543|553|576|586, C)` in MediaPipe order (pose, face, left hand, right hand, [world]),
            `"msl150"` `(T, 226)`. C is 2-4: x, y[, z[, visibility]].
        fps, width, height: of the source video. Needed to normalise pixel coordinates (detected automatically);
            MSL-150 arrays default to 29.97 fps, 1280x720.

    Keypoints that are NaN/inf or exactly (0, 0) count as undetected: they are masked and hold 0.

    Raises:
        ValueError: the shape matches no layout, the array is not numeric, or it holds no finite coordinate.
    """
    path = str(source) if isinstance(source, (str, os.PathLike)) else ""
    name = path or "landmark array"
    if isinstance(source, (str, os.PathLike)):
        source = _load_array_file(Path(source))
    if isinstance(source, dict):
        return _sign_pose_from_arrays(source, path, fps, width, height)
    if hasattr(source, "detach"):  # torch tensor
        source = source.detach().cpu().numpy()
    array = np.asarray(source)
    if array.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected a numeric landmark array, got dtype {array.dtype}.")
    array = array.astype(np.float64)
    if array.shape[:1] == (0,):
        raise ValueError(f"{name} has zero frames.")
    layout = infer_layout(array.shape, name) if layout == "auto" else layout
    if layout not in LANDMARK_LAYOUTS:
        raise ValueError(f"{name}: unknown layout {layout!r}; use 'auto' or one of {sorted(LANDMARK_LAYOUTS)}.")
    if infer_layout(array.shape, name) != layout:
        raise ValueError(f"{name}: shape {array.shape} does not fit layout {layout!r} ({LANDMARK_LAYOUTS[layout]}).")
    if not np.isfinite(array).any():
        raise ValueError(f"{name} holds no finite coordinate (all NaN/inf); nothing was detected or the file is broken.")

    if layout == "msmae":
        values = _pad_coords(array)
    elif layout == "holistic":
        face_size = HOLISTIC_ARRAY_SIZES[array.shape[1]]
        hands = NUM_POSE_LANDMARKS + face_size
        values = _gather_holistic(
            pose=array[:, :NUM_POSE_LANDMARKS],
            face=array[:, NUM_POSE_LANDMARKS:hands],
            left_hand=array[:, hands : hands + NUM_HAND_LANDMARKS],
            right_hand=array[:, hands + NUM_HAND_LANDMARKS : hands + 2 * NUM_HAND_LANDMARKS],
        )
    else:  # msl150
        fps, width, height = fps or MSL150_FPS, width or MSL150_WIDTH, height or MSL150_HEIGHT
        frames, hands = array.shape[0], MSL150_NUM_POSE_LANDMARKS * 4
        pose = np.full((frames, NUM_POSE_LANDMARKS, 4), np.nan)
        pose[:, :MSL150_NUM_POSE_LANDMARKS] = array[:, :hands].reshape(frames, -1, 4)
        values = _gather_holistic(
            pose=pose,
            left_hand=array[:, hands : hands + 63].reshape(frames, -1, 3),
            right_hand=array[:, hands + 63 :].reshape(frames, -1, 3),
        )
    return _build_sign_pose(values, _present(values), source=path, fps=fps, width=width, height=height)


def _sign_pose_from_arrays(arrays: dict, name, fps, width, height) -> SignPose:
    """A SignPose saved as arrays (`np.savez(path, **pose.to_example())`)."""
    keypoints = np.asarray(arrays["keypoints"], dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1] != NUM_STORED_KEYPOINTS or not 2 <= keypoints.shape[2] <= 4:
        raise ValueError(f"{name}: `keypoints` must have shape (frames, {NUM_STORED_KEYPOINTS}, 2-4), got {keypoints.shape}.")
    present = _present(keypoints)
    if "keypoint_mask" in arrays:
        present &= np.asarray(arrays["keypoint_mask"], dtype=bool).reshape(keypoints.shape[:2])
    scalar = lambda key, default: arrays[key].item() if key in arrays else default  # noqa: E731
    return _build_sign_pose(
        _pad_coords(keypoints), present, source=name, fps=fps or scalar("fps", 0.0),
        width=width or scalar("width", 0), height=height or scalar("height", 0),
    )


def read_frame_folder(folder, layout: str = "auto", *, fps: float = 0.0, width: int = 0, height: int = 0) -> SignPose:
    """Read a folder of per-frame `.npy` landmark vectors (`0.npy`, `1.npy`, ... in numeric order) as one clip.

    Each file holds one frame of a layout accepted by `read_landmark_array` (e.g. MSL-150's `(226,)` vectors).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder of frame .npy files: {folder}")
    files = sorted(folder.glob("*.npy"), key=lambda f: (0, int(f.stem), "") if f.stem.isdigit() else (1, 0, f.stem))
    if not files:
        raise ValueError(f"{folder} holds no .npy frame files.")
    frames = []
    for file in files:
        frame = _load_array_file(file)
        if not isinstance(frame, np.ndarray) or (frames and frame.shape != frames[0].shape):
            raise ValueError(f"{file}: every frame file must hold one array of the same shape as {files[0].name}.")
        frames.append(frame)
    pose = read_landmark_array(np.stack(frames), layout, fps=fps, width=width, height=height)
    pose.source = str(folder)
    return pose




# ---- ASL-App JSON ----------------------------------------------------------------------------------------------------


def read_asl_app_json(path, *, width: int = 0, height: int = 0) -> SignPose:
    """Read an ASL-App landmark file (`{"sign", "fps", "frames": [{"pose", "face", "left_hand", "right_hand"}]}`).

    Coordinates are normalised to the frame already. A hand that was not detected is a list of nulls. The file keeps
    only 33 face-mesh points (`ASL_APP_FACE_INDICES`); those among the MS-MAE face points are used, the rest of the
    face stream is masked. The sign name goes to `metadata["sign"]`. The frame size is not recorded: pass `width` and
    `height` if known (for the aspect-ratio correction of normalisation).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such landmark JSON file: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}).") from error
    frames = document.get("frames") if isinstance(document, dict) else None
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) and "pose" in f for f in frames):
        raise ValueError(
            f"{path}: expected an ASL-App landmark file, an object with a non-empty `frames` list of "
            '{"pose", "left_hand", "right_hand", "face"} landmark lists.'
        )

    def part(key, size):
        out = np.full((len(frames), size, 3), np.nan)
        for t, frame in enumerate(frames):
            points = (frame.get(key) or [])[:size]
            try:  # fast path: every point present with 3 coordinates
                out[t, : len(points)] = np.asarray(points, dtype=np.float64)
            except (TypeError, ValueError):
                for i, point in enumerate(points):
                    if point is not None:
                        out[t, i, : len(point[:3])] = point[:3]
        return out

    face = None
    if all(len(f.get("face") or []) == len(ASL_APP_FACE_INDICES) for f in frames):
        face = np.full((len(frames), NUM_FACE_LANDMARKS, 3), np.nan)
        face[:, list(ASL_APP_FACE_INDICES)] = part("face", len(ASL_APP_FACE_INDICES))
    values = _gather_holistic(
        pose=part("pose", NUM_POSE_LANDMARKS),
        left_hand=part("left_hand", NUM_HAND_LANDMARKS),
        right_hand=part("right_hand", NUM_HAND_LANDMARKS),
        face=face,
    )
    metadata = {"sign": document["sign"]} if "sign" in document else None
    return _build_sign_pose(
        values, _present(values), source=str(path), fps=document.get("fps") or 0.0,
        width=width, height=height, metadata=metadata,
    )
