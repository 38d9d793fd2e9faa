"""Pose extraction from sign-language videos with MediaPipe Holistic, and the resumable dataset writer behind
`msmae extract`.

`extract_video(path)` / `extract_frames(frames, fps)` return a `SignPose` (all four streams of `ALL_STREAMS`).
`run_extraction(...)` turns many videos into a Hugging Face `datasets` dataset on disk:

    OUTPUT_DIR/data/train-<16 hex>.parquet   one file per video (id = hash of its source path), written atomically
    OUTPUT_DIR/failures.jsonl                 one line per video that gave no clip: {"path", "kind", "error"}
                                              (failures-<i>-of-<n>.jsonl per shard when sharded)
    OUTPUT_DIR/extraction_info.json           features, MediaPipe settings and version
    OUTPUT_DIR/README.md                      dataset card whose `configs` point `datasets` at data/*.parquet

Load it as one dataset with `load_extracted(OUTPUT_DIR)`, `datasets.load_dataset(OUTPUT_DIR, split="train")`
or `datasets.load_dataset("parquet", data_files=f"{OUTPUT_DIR}/data/*.parquet", split="train")`.

Handedness: MediaPipe Holistic's `left_hand_landmarks` are the signer's own left hand on an unmirrored video (its
wrist sits at pose landmark 15, LEFT_WRIST; checked on the MSL-150 and pose-format sample videos by
tests/test_extraction.py), so they are stored as `left_hand` unchanged.
"""

import atexit
import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .keypoint_layout import BODY_POSE_INDICES, FACE_MESH_INDICES
from .pose_io import VIDEO_SUFFIXES, SignPose, stream_slices

logger = logging.getLogger(__name__)

# One landmark copy per stream and frame: slices into the stored (160, 4) layout.
_SLICES = stream_slices()
_BODY, _LEFT, _RIGHT, _FACE = (_SLICES[name] for name in ("body", "left_hand", "right_hand", "face"))

LIST_SUFFIXES = (".txt", ".lst", ".list")
DATA_DIR = "data"
INFO_FILE = "extraction_info.json"


class ExtractionError(ValueError):
    """A video that cannot give a pose clip (missing, empty, unreadable, no frames); the message names the file."""


# ----------------------------------------------------------------------------------------------------------------------
# Reading videos
# ----------------------------------------------------------------------------------------------------------------------


class VideoReader:
    """Decode a video file into RGB uint8 frames `(H, W, 3)` with PyAV, upright (display rotation applied).

    Usage: `with VideoReader(path) as video: for frame in video: ...`; `video.fps` and `video.frame_count` (from
    the container header, 0 if it does not say) are known after opening.
    """

    def __init__(self, path):
        import av  # optional dependency (msmae[video])

        self.path = Path(path)
        if not self.path.exists():
            raise ExtractionError(f"Video file not found: {self.path}")
        if self.path.is_dir():
            raise ExtractionError(f"{self.path} is a folder, not a video file.")
        if self.path.stat().st_size == 0:
            raise ExtractionError(f"Video file {self.path} is empty (0 bytes); re-download or re-export it.")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as error:
            raise ExtractionError(f"{self.path} is not a readable video ({error}); check that it is a complete "
                                  "video file (mp4, webm, mov, ...).") from error
        if not self._container.streams.video:
            self._container.close()
            raise ExtractionError(f"{self.path} has no video stream (audio-only or another kind of file).")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame and slice threads, as the ffmpeg command line decodes
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.frame_count = int(self._stream.frames or 0)
        self.frames_read = 0
        self._av_error = av.FFmpegError

    def __iter__(self):
        try:
            for frame in self._container.decode(self._stream):
                image = frame.to_ndarray(format="rgb24")
                if frame.rotation:  # counterclockwise degrees from the display matrix (phone videos)
                    image = np.ascontiguousarray(np.rot90(image, frame.rotation // 90))
                self.frames_read += 1
                yield image
        except self._av_error as error:
            raise ExtractionError(f"{self.path}: decoding failed after {self.frames_read} frames ({error}); the "
                                  "file is probably truncated or corrupt.") from error

    def close(self):
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------------------------------------------------
# MediaPipe Holistic
# ----------------------------------------------------------------------------------------------------------------------


def _import_mediapipe():
    try:
        import mediapipe
        from mediapipe.python.solutions import holistic
    except ImportError as error:
        raise ImportError(
            "Pose extraction needs MediaPipe 0.10.21 (the last release with the offline Holistic solution): "
            "pip install 'msmae[video]'"
        ) from error
    return mediapipe, holistic


def holistic_settings(*, model_complexity=1, min_detection_confidence=0.5, min_tracking_confidence=0.5,
                      smooth_landmarks=True) -> dict:
    """Check Holistic's settings (before any worker starts) and return them with the MediaPipe version."""
    mediapipe, _ = _import_mediapipe()
    model_files = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
    if model_complexity not in model_files:
        raise ValueError(f"model_complexity must be 0, 1 or 2, got {model_complexity!r}.")
    model_path = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / model_files[model_complexity]
    if not model_path.exists():
        raise ExtractionError(
            f"model_complexity={model_complexity} needs {model_path.name}, which MediaPipe downloads on first use "
            f"and is not in {model_path.parent}; use model_complexity=1 (bundled) or download it once online."
        )
    for name, value in (("min_detection_confidence", min_detection_confidence),
                        ("min_tracking_confidence", min_tracking_confidence)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value}.")
    return {
        "extractor": "mediapipe-holistic",
        "mediapipe_version": mediapipe.__version__,
        "model_complexity": model_complexity,
        "min_detection_confidence": min_detection_confidence,
        "min_tracking_confidence": min_tracking_confidence,
        "smooth_landmarks": smooth_landmarks,
    }


class HolisticExtractor:
    """One MediaPipe Holistic graph, reused across videos (tracking state is reset between clips).

    Args:
        model_complexity: pose model size. MediaPipe ships only the model of 1 in its wheel; 0 and 2 are downloaded
            on first use, so they work only where that download has already happened.
        min_detection_confidence, min_tracking_confidence, smooth_landmarks: passed to `Holistic`.
        decode_ahead: decode a video's next frames in a background thread while MediaPipe works on the current one
            (MediaPipe releases the GIL), so decoding uses a spare core instead of waiting its turn.
    """

    def __init__(self, *, model_complexity=1, min_detection_confidence=0.5, min_tracking_confidence=0.5,
                 smooth_landmarks=True, decode_ahead=True):
        self.decode_ahead = decode_ahead
        self.settings = holistic_settings(
            model_complexity=model_complexity, min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence, smooth_landmarks=smooth_landmarks,
        )
        _, holistic = _import_mediapipe()
        self._holistic = holistic.Holistic(
            static_image_mode=False,  # video mode: track landmarks from frame to frame
            model_complexity=model_complexity,
            smooth_landmarks=smooth_landmarks,
            refine_face_landmarks=False,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._used = False

    def extract_video(self, path) -> SignPose:
        """Pose clip of a video file. Raises `ExtractionError` naming the file when it gives no frames."""
        with VideoReader(path) as video:
            frames = _decode_ahead(video) if self.decode_ahead else iter(video)
            try:
                pose = self._run(frames, fps=video.fps, source=str(path), capacity=video.frame_count)
            finally:
                frames.close()  # stops the decoding thread before the container closes
            header_frames = video.frame_count
        if pose.num_frames == 0:
            raise ExtractionError(f"{path} contains no decodable video frames.")
        # FFmpeg stops quietly at the cut of a truncated file; the header still counts every frame (a few frames of
        # slack for edit lists and encoder delay).
        if header_frames and pose.num_frames < header_frames - max(2, 0.02 * header_frames):
            raise ExtractionError(f"{path}: decoded only {pose.num_frames} of the {header_frames} frames its header "
                                  "announces; the file is probably truncated (re-download or re-export it).")
        pose.metadata["header_frame_count"] = header_frames
        return pose

    def extract_frames(self, frames, fps, source="") -> SignPose:
        """Pose clip of `frames`: `(T, H, W, 3)` RGB uint8 (an array or a sequence of `(H, W, 3)` arrays)."""
        name = source or "frames"
        if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8):
            raise ValueError(f"{name}: expected RGB uint8 frames of shape (T, H, W, 3), got {frames.dtype} "
                             f"{frames.shape}; convert with frames.astype(np.uint8) or cv2.cvtColor(..., BGR2RGB).")
        frames = [np.ascontiguousarray(frame) for frame in frames]
        if not frames:
            raise ValueError(f"{name}: no frames given.")
        for frame in frames:
            if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"{name}: every frame must be an RGB uint8 (H, W, 3) array, got {frame.dtype} "
                                 f"{frame.shape}.")
        return self._run(frames, fps=fps, source=source, capacity=len(frames))

    def _run(self, images, *, fps, source, capacity) -> SignPose:
        if self._used:
            self._holistic.reset()  # a new clip: forget the previous clip's tracked landmarks
        self._used = True
        keypoints = np.zeros((max(capacity, 1), _FACE.stop, 4), dtype=np.float32)
        mask = np.zeros(keypoints.shape[:2], dtype=bool)
        num_frames, height, width = 0, 0, 0
        process = self._holistic.process
        for image in images:
            if num_frames == 0:
                height, width = image.shape[:2]
            if num_frames == len(keypoints):  # the header undercounted: grow by half
                extra = max(len(keypoints) // 2, 16)
                keypoints = np.concatenate([keypoints, np.zeros((extra,) + keypoints.shape[1:], np.float32)])
                mask = np.concatenate([mask, np.zeros((extra, mask.shape[1]), bool)])
            _copy_landmarks(process(image), keypoints[num_frames], mask[num_frames])
            num_frames += 1
        keypoints, mask = keypoints[:num_frames], mask[:num_frames]
        finite = np.isfinite(keypoints).all(-1)
        if not finite.all():  # never seen from MediaPipe, but the dataset contract forbids NaN
            mask &= finite
            keypoints[~finite] = 0.0
        person_detected = bool(mask.any())
        return SignPose(
            keypoints=keypoints, keypoint_mask=mask, fps=float(fps or 0.0), width=width, height=height,
            source=str(source), metadata={"person_detected": person_detected, **self.settings},
        )

    def close(self):
        self._holistic.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _decode_ahead(frames, depth=4):
    """Yield from `frames`, which a background thread keeps up to `depth` items ahead. Close the generator to stop
    the thread (it is joined); decoding errors are raised here."""
    ready, stop, end = queue.Queue(maxsize=depth), threading.Event(), object()

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def decode():
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(end)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    thread = threading.Thread(target=decode, name="msmae-decode", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _copy_landmarks(results, keypoints, mask):
    """Write one frame's Holistic results into the stored layout; undetected parts stay 0 and unmasked."""
    if results.pose_landmarks is not None:
        points = results.pose_landmarks.landmark
        keypoints[_BODY] = [(points[i].x, points[i].y, points[i].z, points[i].visibility) for i in BODY_POSE_INDICES]
        mask[_BODY] = True
    if results.left_hand_landmarks is not None:
        keypoints[_LEFT, :3] = [(p.x, p.y, p.z) for p in results.left_hand_landmarks.landmark]
        mask[_LEFT] = True
    if results.right_hand_landmarks is not None:
        keypoints[_RIGHT, :3] = [(p.x, p.y, p.z) for p in results.right_hand_landmarks.landmark]
        mask[_RIGHT] = True
    if results.face_landmarks is not None:
        points = results.face_landmarks.landmark
        keypoints[_FACE, :3] = [(points[i].x, points[i].y, points[i].z) for i in FACE_MESH_INDICES]
        mask[_FACE] = True


def extract_video(path, **extractor_kwargs) -> SignPose:
    """Run MediaPipe Holistic over a video file; see `HolisticExtractor` for the keyword arguments.

    `pose.metadata["person_detected"]` is False when no landmark was found in any frame (everything masked).
    For many videos, keep one `HolisticExtractor` (graph start-up is paid once) or use `run_extraction`.
    """
    with HolisticExtractor(**extractor_kwargs) as extractor:
        return extractor.extract_video(path)


def extract_frames(frames, fps, *, source="", **extractor_kwargs) -> SignPose:
    """Run MediaPipe Holistic over in-memory RGB uint8 frames `(T, H, W, 3)` recorded at `fps`."""
    with HolisticExtractor(**extractor_kwargs) as extractor:
        return extractor.extract_frames(frames, fps, source=source)


# ----------------------------------------------------------------------------------------------------------------------
# MediaPipe's native log noise
# ----------------------------------------------------------------------------------------------------------------------

# MediaPipe's C++ side prints these on every graph start (so on every video); absl writes them straight to fd 2
# before any Python logging setup can intervene, and GLOG_minloglevel no longer applies.
_NATIVE_NOISE = (b"inference_feedback_manager", b"XNNPACK delegate", b"absl::InitializeLog",
                 b"landmark_projection_calculator")


def filter_native_stderr():
    """Drop MediaPipe's per-graph start-up lines from this process's stderr (fd 2); everything else passes.

    Python's `sys.stderr` (and logging handlers using it) is pointed at the original stream so that progress bars
    stay live; only native writes go through the filter. For command-line programs and worker processes: it
    rewires the process's file descriptors (undone at exit).
    """
    if getattr(filter_native_stderr, "installed", False):
        return
    filter_native_stderr.installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    old_stderr, sys.stderr = sys.stderr, open(original, "w", buffering=1, closefd=False)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is old_stderr:
            handler.setStream(sys.stderr)

    def forward():
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not any(noise in line for noise in _NATIVE_NOISE))
            if kept:
                os.write(original, kept)
        if pending:
            os.write(original, pending)

    thread = threading.Thread(target=forward, name="msmae-stderr-filter", daemon=True)
    thread.start()

    def restore():  # closing the pipe's last write end lets the thread forward what is left, then stop
        os.dup2(original, 2)
        thread.join(timeout=2)

    atexit.register(restore)


# ----------------------------------------------------------------------------------------------------------------------
# Inputs, manifests and shards
# ----------------------------------------------------------------------------------------------------------------------


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def collect_videos(inputs) -> list[str]:
    """Video paths from `inputs`: video files, folders (searched recursively by video suffix) and text files
    listing one path per line (relative to the list; `#` starts a comment). Sorted, without duplicates.

    A path listed in a text file need not exist (it is then reported as a failure when extracted); a command-line
    input that does not exist raises `FileNotFoundError`.
    """
    found = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [str(p) for p in sorted(path.rglob("*")) if p.is_file() and _is_video(p)]
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    found.append(os.path.normpath(os.path.join(path.parent, line)))
        elif path.exists():
            found.append(os.path.normpath(path))
        else:
            raise FileNotFoundError(f"Input not found: {item} (give video files, folders or .txt lists of paths).")
    # One entry per file, even when reached by two spellings (e.g. a folder and a list).
    unique = {}
    for source in sorted(set(found)):
        unique.setdefault(os.path.realpath(source), source)
    return sorted(unique.values())


def shard_paths(paths, shard_index=0, num_shards=1) -> list:
    """This shard's share of the sorted `paths` (every `num_shards`-th item from `shard_index`): shards are
    disjoint, together cover every path, and agree across machines given the same inputs."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards) and num_shards >= 1, got {shard_index}/{num_shards}.")
    return sorted(paths)[shard_index::num_shards]


RESERVED_COLUMNS = ("keypoints", "keypoint_mask", "fps", "width", "height", "num_frames", "source")


def read_manifest(path) -> dict[str, dict]:
    """Per-video columns from a CSV/TSV (header row) or JSON (list of objects, or JSON lines) file with a `path`
    column; paths are relative to the manifest. Returns {source path: {column: value}}.

    CSV cells are typed per column: all integers -> int, all numbers -> float, otherwise strings; empty -> None.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest not found: {path}")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix in (".csv", ".tsv"):
        rows = list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))
        rows = _type_csv_columns(rows)
    elif suffix in (".json", ".jsonl"):
        try:
            data = json.loads(text) if suffix == ".json" else [json.loads(l) for l in text.splitlines() if l.strip()]
        except json.JSONDecodeError as error:
            raise ValueError(f"Manifest {path} is not valid JSON: {error}") from error
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"Manifest {path} must hold a list of objects (one per video, with a 'path' key).")
    else:
        raise ValueError(f"Manifest {path}: unsupported format {suffix!r}; use .csv, .tsv, .json or .jsonl.")
    manifest = {}
    for number, row in enumerate(rows, 1):
        if not row.get("path"):
            raise ValueError(f"Manifest {path}, row {number}: no 'path' value (columns: {sorted(row)}).")
        clash = sorted(set(row) & set(RESERVED_COLUMNS))
        if clash:
            raise ValueError(f"Manifest {path}: columns {clash} clash with extracted columns; rename them.")
        source = os.path.normpath(os.path.join(path.parent, str(row["path"])))
        manifest[source] = {key: _plain(value) for key, value in row.items() if key != "path"}
    return manifest


def _type_csv_columns(rows):
    columns = {key for row in rows for key in row if key is not None}
    for column in columns - {"path"}:
        values = [row.get(column) for row in rows]
        present = [v for v in values if v not in (None, "")]
        for cast in (int, float):
            try:
                typed = [cast(v) if v not in (None, "") else None for v in values]
            except ValueError:
                continue
            if present:
                break
        else:
            typed = [v if v not in (None, "") else None for v in values]
        for row, value in zip(rows, typed):
            row[column] = value
    return rows


def _plain(value):
    """JSON values that Arrow can store in one column type; nested ones become JSON strings."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _manifest_features(manifest):
    """One `datasets` type per manifest column, from all its values (so every part and shard agrees)."""
    from datasets import Value

    kinds = {}
    for row in manifest.values():
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    features = {}
    for key in sorted({key for row in manifest.values() for key in row}):
        types = kinds.get(key, {str})
        if types == {bool}:
            features[key] = Value("bool")
        elif types <= {int}:
            features[key] = Value("int64")
        elif types <= {int, float}:
            features[key] = Value("float64")
        else:
            features[key] = Value("string")
    return features


def dataset_features(extra_columns=None):
    """`datasets.Features` of an extracted dataset: `SignPose.to_example()` columns plus manifest columns."""
    from datasets import Array2D, Array3D, Features, Value

    num_keypoints = _FACE.stop
    return Features({
        "keypoints": Array3D(shape=(None, num_keypoints, 4), dtype="float32"),
        "keypoint_mask": Array2D(shape=(None, num_keypoints), dtype="bool"),
        "fps": Value("float32"),
        "width": Value("int32"),
        "height": Value("int32"),
        "num_frames": Value("int32"),
        "source": Value("string"),
        **(extra_columns or {}),
    })


# ----------------------------------------------------------------------------------------------------------------------
# The dataset on disk
# ----------------------------------------------------------------------------------------------------------------------


def part_path(output_dir, source) -> Path:
    """Where the row of the video `source` is written: a stable name, so re-runs find what is already done.
    Hex only: split keywords such as 'test' in a video's name must not look like a dataset split to `datasets`."""
    digest = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:16]
    return Path(output_dir) / DATA_DIR / f"train-{digest}.parquet"


def write_part(path, example, features):
    """Write one dataset row to `path` atomically (temporary file, fsync, rename): a killed run leaves either the
    whole file or none."""
    import pyarrow.parquet as pq

    path = Path(path)
    table = _row_table(example, features)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")  # never matches *.parquet or *.json
    try:
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _row_table(example, features):
    """A one-row Arrow table of `features` (with the schema metadata `datasets` reads back).

    Built from the arrays' buffers: `datasets.Dataset.from_list` goes through Python lists and costs more than the
    Parquet write itself."""
    import pyarrow as pa

    schema = features.arrow_schema
    columns = []
    for field_ in schema:
        value = example.get(field_.name)
        if isinstance(field_.type, pa.ExtensionType):  # Array2D / Array3D: nested lists over the flat values
            array = np.ascontiguousarray(value)
            storage = pa.array(array.ravel())
            for size in reversed(array.shape[1:]):
                storage = pa.ListArray.from_arrays(pa.array(np.arange(0, len(storage) + 1, size, dtype=np.int32)),
                                                   storage)
            storage = pa.ListArray.from_arrays(pa.array([0, len(storage)], pa.int32()), storage)
            columns.append(pa.ExtensionArray.from_storage(field_.type, storage.cast(field_.type.storage_type)))
        else:
            columns.append(pa.array([value], type=field_.type))
    return pa.Table.from_arrays(columns, schema=schema)


def failures_path(output_dir, shard_index=0, num_shards=1) -> Path:
    name = "failures.jsonl" if num_shards == 1 else f"failures-{shard_index:05d}-of-{num_shards:05d}.jsonl"
    return Path(output_dir) / name


def read_failures(output_dir) -> dict[str, dict]:
    """{source: last failure record} from every shard's failure log; a line cut off by a kill is skipped."""
    failures = {}
    for log in sorted(Path(output_dir).glob("failures*.jsonl")):
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "path" in record:
                failures[record["path"]] = record
    return failures


def load_extracted(output_dir, *, cache_dir=None):
    """The videos extracted into `output_dir` (by any number of runs and shards) as one `datasets.Dataset`.

    Same as `datasets.load_dataset("parquet", data_files=f"{output_dir}/data/*.parquet", split="train")`;
    `cache_dir` is where `datasets` keeps its Arrow copy (its default cache when None).
    """
    from datasets import load_dataset

    files = sorted(str(p) for p in (Path(output_dir) / DATA_DIR).glob("*.parquet"))
    if not files:
        raise ExtractionError(f"No extracted videos in {output_dir} (expected {DATA_DIR}/*.parquet); "
                              "run `msmae extract VIDEOS --output_dir ...` first.")
    return load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=cache_dir)


# ----------------------------------------------------------------------------------------------------------------------
# Running over many videos
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class ExtractionSummary:
    """What one `run_extraction` call did (this shard only)."""

    output_dir: str
    num_videos: int = 0  # in this shard
    num_already_extracted: int = 0
    num_already_failed: int = 0
    num_extracted: int = 0
    num_no_person: int = 0
    num_failed: int = 0
    num_frames: int = 0
    seconds: float = 0.0  # wall time of the run, worker start-up included
    processing_seconds: float = 0.0  # from the first video's start to the last one's end (in any worker)
    cpu_seconds: float = 0.0  # CPU time of the workers (all their threads) spent on videos
    failures: list = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def num_already_done(self) -> int:
        return self.num_already_extracted + self.num_already_failed


_worker_extractor = None
_worker_state = {}


def _init_worker(extractor_kwargs, features, quiet):
    global _worker_extractor
    if quiet:
        filter_native_stderr()
    _worker_extractor = HolisticExtractor(**extractor_kwargs)
    _worker_state["features"] = features


def _extract_one(source, extra, destination):
    """Extract and write one video; never raises (a failure is returned as a record for the log)."""
    started, cpu = time.time(), time.process_time()  # wall clock: comparable across worker processes
    result = {"path": source, "frames": 0, "started": started}
    try:
        pose = _worker_extractor.extract_video(source)
        result["frames"] = pose.num_frames
        if not pose.metadata["person_detected"]:
            result.update(kind="no_person", error=f"no person detected in any of the {pose.num_frames} frames")
        else:
            example = pose.to_example()
            example.update({key: extra.get(key) for key in _worker_state["features"] if key not in example})
            write_part(destination, example, _worker_state["features"])
            result["kind"] = "ok"
    except ExtractionError as error:
        result.update(kind="unreadable", error=str(error))
    except Exception as error:  # one bad video (e.g. a MediaPipe RuntimeError) must not stop the run
        result.update(kind="error", error=f"{type(error).__name__}: {error}")
    result["finished"], result["cpu_seconds"] = time.time(), time.process_time() - cpu
    return result


def run_extraction(inputs, output_dir, *, manifest=None, num_workers=1, shard_index=0, num_shards=1,
                   overwrite=False, retry_failed=False, progress=True, quiet=False,
                   extractor_kwargs=None) -> ExtractionSummary:
    """Extract every video of `inputs` (see `collect_videos`; with a `manifest` and no inputs, the manifest's
    videos) into `output_dir` as a resumable dataset (layout in the module docstring).

    Videos whose part file exists are skipped, as are ones in the failure log unless `retry_failed`; `overwrite`
    re-extracts everything (replacing each part atomically). `num_workers` processes each run one Holistic graph.
    Videos without a person and unreadable ones are logged to the failure log, never written, never fatal.
    `quiet` filters MediaPipe's native start-up messages from stderr (see `filter_native_stderr`).
    """
    manifest = read_manifest(manifest) if manifest else {}
    sources = collect_videos(inputs) if inputs else sorted(manifest)
    manifest_by_file = {os.path.realpath(source): row for source, row in manifest.items()}
    unlabelled = [s for s in sources if manifest and os.path.realpath(s) not in manifest_by_file]
    if unlabelled:
        logger.warning("%d videos are not in the manifest (their manifest columns are empty), e.g. %s",
                       len(unlabelled), unlabelled[0])
    features = dataset_features(_manifest_features(manifest))
    extractor_kwargs = dict(extractor_kwargs or {})
    settings = holistic_settings(**extractor_kwargs)  # bad settings fail here, not in every worker

    output_dir = Path(output_dir)
    (output_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    shard = shard_paths(sources, shard_index, num_shards)
    summary = ExtractionSummary(output_dir=str(output_dir), num_videos=len(shard))
    failed_before = {} if (overwrite or retry_failed) else read_failures(output_dir)
    todo = []
    for source in shard:
        if not overwrite and part_path(output_dir, source).exists():
            summary.num_already_extracted += 1
        elif source in failed_before:
            summary.num_already_failed += 1
        else:
            todo.append(source)
    if summary.num_already_done:
        logger.info("%d of %d videos already done (extracted or logged as failed); skipping them.",
                    summary.num_already_done, len(shard))
    if not todo:
        return summary

    _write_info(output_dir, features, settings)
    tasks = [(s, manifest_by_file.get(os.path.realpath(s), {}), part_path(output_dir, s)) for s in todo]
    log = failures_path(output_dir, shard_index, num_shards)
    bar = _progress_bar(len(todo), progress)
    started, first_start, last_finish = time.perf_counter(), float("inf"), float("-inf")
    try:
        for result in _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet):
            if "started" in result:
                first_start, last_finish = min(first_start, result["started"]), max(last_finish, result["finished"])
                summary.processing_seconds = last_finish - first_start
                summary.cpu_seconds += result["cpu_seconds"]
            summary.num_frames += result["frames"]
            if result["kind"] == "ok":
                summary.num_extracted += 1
            else:
                summary.num_no_person += result["kind"] == "no_person"
                summary.num_failed += result["kind"] != "no_person"
                summary.failures.append(result)
                _append_failure(log, result)
                logger.warning("%s: %s", result["path"], result["error"])
            summary.seconds = time.perf_counter() - started
            if bar is not None:
                bar.set_postfix_str(f"{summary.frames_per_second:.1f} frames/s", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return summary


def _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet):
    """Yield `_extract_one` results as videos finish: in this process for one worker, else in a process pool."""
    if num_workers <= 1:
        _init_worker(extractor_kwargs, features, quiet)
        try:
            for task in tasks:
                yield _extract_one(*task)
        finally:
            _worker_extractor.close()
        return
    context = _worker_context()
    pending, suspects = list(reversed(tasks)), {}  # pop() from the end keeps the sorted order
    while pending:
        pool = concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=context, initializer=_init_worker, initargs=(extractor_kwargs, features, quiet)
        )
        in_flight, broken = {}, False
        try:
            while (pending or in_flight) and not broken:
                # After a worker died, the videos that were in flight are retried one at a time to find the culprit.
                isolate = (pending and pending[-1][0] in suspects) or any(t[0] in suspects for t in in_flight.values())
                limit = 1 if isolate else num_workers
                while pending and len(in_flight) < limit:
                    future = pool.submit(_extract_one, *pending[-1])
                    in_flight[future] = pending.pop()
                done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    if isinstance(future.exception(), BrokenProcessPool):
                        broken = True
                        continue
                    task = in_flight.pop(future)
                    if future.exception() is not None:
                        error = future.exception()
                        yield {"path": task[0], "frames": 0, "kind": "error",
                               "error": f"{type(error).__name__}: {error}"}
                    else:
                        yield future.result()
        except BrokenProcessPool:  # from submit(): the pool broke between two waits
            broken = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for task in in_flight.values():  # a worker died (e.g. a native crash in MediaPipe)
            if task[0] in suspects and len(in_flight) == 1:
                yield {"path": task[0], "frames": 0, "kind": "error",
                       "error": "the worker process died while extracting this video"}
            else:
                suspects[task[0]] = True
                pending.append(task)


def _worker_context():
    """Workers start from a fork server that has imported this module once (never a fork of this process, whose
    threads need not survive a fork), so they skip `msmae`'s imports (torch, transformers: seconds of CPU each);
    spawn where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _append_failure(log, result):
    record = {"path": result["path"], "kind": result["kind"], "error": result["error"]}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_info(output_dir, features, settings):
    info = {
        "features": features.to_dict(),
        "extractor": settings,
        "layout": f"one row per video in {DATA_DIR}/train-<sha1(source)[:16]>.parquet; failures in failures*.jsonl",
    }
    _write_text(Path(output_dir) / INFO_FILE, json.dumps(info, indent=2) + "\n")
    if not (Path(output_dir) / "README.md").exists():  # a card the user edited stays
        _write_text(Path(output_dir) / "README.md", _DATASET_CARD)


# The card's `configs` make `datasets.load_dataset(OUTPUT_DIR)` (and the Hub, once pushed) read exactly the parts,
# whatever else lies in the folder.
_DATASET_CARD = f"""---
configs:
- config_name: default
  data_files:
  - split: train
    path: {DATA_DIR}/*.parquet
---

# Sign-language poses extracted by `msmae extract`

MediaPipe Holistic landmarks, one row per video. Columns: `keypoints` (frames, 160, 4) float32 x, y (normalised
to the frame), z, visibility of the streams body (pose 11-16), left hand (21), right hand (21), face (112 mesh
points), in that order; `keypoint_mask` (frames, 160) bool, True where detected; `fps`, `width`, `height`,
`num_frames`, `source` (the video), and the manifest's columns if one was given. See `{INFO_FILE}`.

Load with `msmae.extraction.load_extracted(folder)` or `datasets.load_dataset(folder, split="train")`.
"""


def _write_text(path, text):
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")  # never matches *.parquet or *.json
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc="extract", dynamic_ncols=True)
