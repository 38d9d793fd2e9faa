"""The one clip loader of msmae: `load_pose` turns anything a user may hand over into a `SignPose`.

It stands above the pose readers (`pose_io`) and the video reader (`holistic`), which do not know each other: paths
and arrays of poses go to `pose_io`, videos, frame images and RGB frames to MediaPipe Holistic, rows of an
`msmae extract` folder to its part files, and bytes, file objects and http(s) URLs are recognised by their signature.
The processor, the pipelines, `msmae predict`, `msmae visualize` and the dataset builders all read clips through it.
"""

import os
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .pose_io import (
    IMAGE_SUFFIXES,
    LANDMARK_LAYOUTS,
    POSE_SUFFIXES,
    VIDEO_SUFFIXES,
    SignPose,
    infer_layout,
    read_asl_app_json,
    read_frame_folder,
    read_landmark_array,
    read_pose_data,
    read_pose_file,
)


# ---- clips given as bytes, file objects or URLs ----------------------------------------------------------------------

# Container signatures ((offset, bytes) pairs that must all match) -> the video's suffix; Matroska and WebM share EBML's.
VIDEO_SIGNATURES = (
    (((4, b"ftyp"),), ".mp4"),
    (((4, b"moov"),), ".mov"),
    (((4, b"mdat"),), ".mov"),
    (((4, b"wide"),), ".mov"),
    (((0, b"\x1a\x45\xdf\xa3"),), ".webm"),
    (((0, b"RIFF"), (8, b"AVI ")), ".avi"),
)
# A pose-format file starts with its format version, a little-endian float32 (0.1 and 0.2 so far).
POSE_VERSION_HEADERS = frozenset(struct.pack("<f", version / 10) for version in range(10))
URL_SCHEMES = ("http://", "https://")
DOWNLOAD_TIMEOUT = 60.0  # seconds a download may wait for the server


def _signature_suffix(data) -> str:
    head = bytes(data[:16])
    for marks, suffix in VIDEO_SIGNATURES:
        if all(head[offset : offset + len(mark)] == mark for offset, mark in marks):
            return suffix
    return ".pose" if head[:4] in POSE_VERSION_HEADERS else ""


def bytes_suffix(data, name="the bytes") -> str:
    """The file suffix of a clip given as bytes, from its signature: a video container (`VIDEO_SIGNATURES`) or a
    pose-format `.pose` file. Raises `ValueError` naming `name` for anything else."""
    suffix = _signature_suffix(data)
    if not suffix:
        raise ValueError(
            f"{name}: not a video or .pose file msmae reads (starts with {bytes(data[:12])!r}). Given as bytes, a "
            "file object or a URL, a clip must be a video (MP4/MOV, WebM/MKV or AVI, recognised by its container "
            "signature) or a pose-format .pose file; pass other files by their path."
        )
    return suffix


def is_byte_source(source) -> bool:
    """Whether `source` is a clip to read as bytes: `bytes`/`bytearray`/`memoryview`, a binary file object (anything
    with `read()`, e.g. `open(path, "rb")`, `io.BytesIO`) or an `http://`/`https://` URL."""
    if isinstance(source, str):
        return source.lower().startswith(URL_SCHEMES)
    return isinstance(source, (bytes, bytearray, memoryview)) or callable(getattr(source, "read", None))


def download(url, timeout=DOWNLOAD_TIMEOUT) -> bytes:
    """The body of an http(s) URL, with the standard library (proxies from the environment apply). Raises `OSError`
    naming the URL when the download fails."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "msmae"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
    except (OSError, ValueError) as error:  # refused, unknown host, timed out, malformed address
        reason = str(getattr(error, "reason", None) or error)
    raise OSError(f"Could not download {url} ({reason}); check the address, or download the file and pass its path.")


def read_clip_bytes(source, timeout=DOWNLOAD_TIMEOUT) -> tuple[bytes, str]:
    """The bytes of a clip given as bytes, a binary file object or a URL (see `is_byte_source`; URLs are downloaded,
    waiting at most `timeout` seconds at a time), and a name for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data, f"the {len(data)} bytes given"
    if isinstance(source, str):
        return download(source, timeout), source
    name = str(getattr(source, "name", "") or f"the {type(source).__name__} object")
    data = source.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"{name} gave {type(data).__name__}, not bytes: open videos and .pose files in binary mode, "
                         "open(path, 'rb').")
    return bytes(data), name


# Every array layout a clip may have, for messages.
ARRAY_LAYOUTS = {"video frames": "(frames, height, width, 3) uint8 RGB (MediaPipe Holistic runs on them)",
                 **{f"landmarks (layout={name!r})": text for name, text in LANDMARK_LAYOUTS.items()}}


def check_clip_array(array):
    """Raise a `ValueError` naming the shape and dtype of an array that no clip layout (`ARRAY_LAYOUTS`) fits; uint8
    arrays are pixels, so only `(frames, height, width, 3)` fits them (a single image is not a clip)."""
    shape, dtype = tuple(array.shape), str(array.dtype).removeprefix("torch.")
    hint = ""
    if dtype == "uint8":
        if len(shape) == 4 and shape[-1] == 3:
            return
        if len(shape) == 3 and shape[-1] in (3, 4):
            hint = ": it looks like one image (height, width, channels); a clip is its frames, e.g. np.stack(images)"
        elif len(shape) == 4 and shape[-1] == 4:
            hint = ": RGBA frames; pass the RGB channels, frames[..., :3]"
    else:
        try:
            infer_layout(shape, "")
            return
        except ValueError:
            pass
        if len(shape) == 4 and shape[-1] == 3:
            hint = ": video frames must be uint8 RGB; for 0-1 floats use (frames * 255).round().astype(np.uint8)"
    layouts = "; ".join(f"{name}: {text}" for name, text in ARRAY_LAYOUTS.items())
    raise ValueError(f"An array of shape {shape} and dtype {dtype} matches no known layout{hint}. Accepted arrays: "
                     f"{layouts}.")



# ---- dispatcher ------------------------------------------------------------------------------------------------------


def is_video(source) -> bool:
    """Whether `source` is something MediaPipe must read: a video file, a folder of frame images, a video's bytes, or
    RGB uint8 frames `(T, H, W, 3)` (numpy or torch)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()) and not any(path.glob("*.npy"))
        return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _signature_suffix(source) in VIDEO_SUFFIXES
    return getattr(source, "ndim", 0) == 4 and source.shape[-1] == 3 and str(source.dtype) in ("uint8", "torch.uint8")


def video_extractor(**extractor_kwargs):
    """A MediaPipe Holistic extractor (`msmae.holistic.HolisticExtractor`); needs msmae's `video` extra."""
    try:  # guarded: video extraction is optional (MediaPipe); relative, so checkpoints carry holistic.py too
        from .holistic import HolisticExtractor
    except ImportError as error:
        raise ImportError(
            f"Reading a video needs MediaPipe and PyAV (msmae's video extra): pip install 'msmae[video]' ({error})."
        ) from error
    return HolisticExtractor(**extractor_kwargs)


def read_extracted_row(folder, index) -> SignPose:
    """Row `index` (in `load_extracted` order) of a dataset folder written by `msmae extract`, reading only the
    part file that holds it."""
    try:  # in a try: checkpoints carry this module, and transformers' check of their imports skips try blocks
        import pyarrow.parquet as pq
        from datasets import Dataset
        from datasets.table import InMemoryTable
    except ImportError as error:
        raise ImportError(f"Reading {folder} needs the datasets package: pip install datasets") from error
    folder = Path(folder)
    parts = sorted((folder / "data").glob("*.parquet"))
    rows = 0
    for part in parts:
        count = pq.ParquetFile(part).metadata.num_rows
        if 0 <= index < rows + count:
            table = InMemoryTable(pq.read_table(part))
            return SignPose.from_example(Dataset(table).with_format("numpy")[index - rows])
        rows += count
    raise ValueError(f"{folder} holds {rows} extracted clips; index {index} is out of range (0 to {rows - 1}).")


def load_pose(source, *, index=None, extractor=None, fps=None, **kwargs) -> SignPose:
    """Load one clip from whatever it is given as: the one clip loader of msmae (processor, pipelines, `msmae
    predict`, `msmae visualize` and the dataset builders all read clips through it).

    `source` may be:
    - a `SignPose` (returned as is) or a dataset row (`SignPose.to_example` format);
    - a landmark array (see `read_landmark_array`), or a path: `.pose` (pose-format), `.npy`/`.npz` (landmark
      arrays), `.json` (ASL-App), a folder of per-frame `.npy` files;
    - a folder written by `msmae extract`: its row `index`;
    - a video (`VIDEO_SUFFIXES`), a folder of frame images (`IMAGE_SUFFIXES`, recorded at `fps`) or RGB uint8
      frames `(T, H, W, 3)` (recorded at `fps`, default 30): MediaPipe Holistic runs on them, with `extractor` (a
      `HolisticExtractor`, to reuse one graph across clips) or a new one made with `kwargs`; needs msmae's `video`
      extra. A video without a person raises `ValueError`;
    - the bytes of a video or a `.pose` file, a binary file object holding one, or an `http://`/`https://` URL of
      one (see `read_clip_bytes`); the kind is read from the bytes' signature (`bytes_suffix`).

    An array no layout fits (`ARRAY_LAYOUTS`), e.g. a single image, raises `ValueError` naming its shape and dtype.

    Other `kwargs` go to the reader (`layout`, `width`, `height`, ...).
    """
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < float("inf")):
        raise ValueError(f"fps must be a positive number of frames per second (e.g. 25), got {fps!r}.")
    if isinstance(source, SignPose):
        return source
    if is_sign_pose(source):  # another copy of the class (a checkpoint's carried code, or msmae beside it)
        return SignPose(keypoints=source.keypoints, keypoint_mask=source.keypoint_mask, fps=source.fps,
                        width=source.width, height=source.height, source=source.source,
                        metadata=dict(getattr(source, "metadata", None) or {}))
    if isinstance(source, Mapping):
        if "keypoints" not in source:  # a row with keypoints only: from_example names the missing column
            raise ValueError(f"a dict clip needs `pose_values` (model-ready inputs, `keypoint_mask` optional) or "
                             f"`keypoints` and `keypoint_mask` (a dataset row); got the keys {sorted(map(str, source))}.")
        return SignPose.from_example(source)
    if is_byte_source(source):
        data, name = read_clip_bytes(source)
        if index is not None:
            raise ValueError(f"index={index} picks a row of an `msmae extract` folder; {name} is not one.")
        if bytes_suffix(data, name) == ".pose":
            return read_pose_data(data, source=name, **kwargs)
        return _extract_pose(data, extractor, fps, kwargs, name=name)
    path = Path(source) if isinstance(source, (str, os.PathLike)) else None
    extracted = path is not None and path.is_dir() and any((path / "data").glob("*.parquet"))
    if index is not None and not extracted:
        raise ValueError(f"index={index} picks a row of an `msmae extract` folder; {source} is not one.")
    if is_video(source):
        return _extract_pose(source, extractor, fps, kwargs)
    if path is None:
        if hasattr(source, "shape") and hasattr(source, "dtype"):
            check_clip_array(source)
        return read_landmark_array(source, **kwargs)
    suffix = path.suffix.lower()
    if path.is_dir():
        if extracted:
            return read_extracted_row(path, 0 if index is None else index)
        return read_frame_folder(path, **kwargs)
    if not path.exists():
        raise FileNotFoundError(f"No such pose or video file: {path}")
    if not path.is_file():
        raise ValueError(not_a_file_message(path))
    if suffix == ".pose":
        return read_pose_file(path, **kwargs)
    if suffix in (".npy", ".npz"):
        return read_landmark_array(path, **kwargs)
    if suffix == ".json":
        return read_asl_app_json(path, **kwargs)
    raise ValueError(
        f"{path}: unsupported file type {suffix or '(no suffix)'!r}. Supported: {', '.join(POSE_SUFFIXES)}, a folder of "
        f"per-frame .npy files or frame images, an `msmae extract` folder, or a video ({', '.join(VIDEO_SUFFIXES)})."
    )


SIGN_POSE_FIELDS = ("keypoints", "keypoint_mask", "fps", "width", "height", "source")


def is_sign_pose(value) -> bool:
    """Whether `value` is a clip as `SignPose` holds one, whichever copy of the class made it (msmae's, or the one a
    checkpoint carries): checked on the fields, not on the class."""
    return isinstance(value, SignPose) or (
        not isinstance(value, (Mapping, str, bytes)) and all(hasattr(value, name) for name in SIGN_POSE_FIELDS)
    )


def not_a_file_message(path) -> str:
    """What to say of a path that exists but is neither a file nor a folder (a FIFO, socket or device)."""
    import stat

    mode = os.stat(path).st_mode
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    return (f"{path} is not a regular file ({kind}): give a video or pose file saved on disk (a stream or camera "
            "can be recorded to a file first).")


def _extract_pose(source, extractor, fps, kwargs, name=None) -> SignPose:
    own = extractor is None
    extractor = video_extractor(**kwargs) if own else extractor
    try:
        if isinstance(source, (str, os.PathLike)):
            name = str(source)
            pose = extractor.extract_video(source, fps=fps)
        elif isinstance(source, bytes):  # a video's bytes, read from memory
            pose = extractor.extract_video(source, fps=fps, source=name)
        else:
            name = "the frames"
            frames = source.detach().cpu().numpy() if hasattr(source, "detach") else np.asarray(source)
            pose = extractor.extract_frames(frames, 30.0 if fps is None else fps)
    finally:
        if own:
            extractor.close()
    if not pose.keypoint_mask.any():
        raise ValueError(f"MediaPipe found no person in {name}; check that the signer is visible in the video.")
    return pose
