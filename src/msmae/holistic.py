"""MediaPipe Holistic pose extraction from videos and decoded frames: what inference needs (pipelines, the
processor, `msmae predict`); checkpoints carry it.

`extract_video(path)` / `extract_frames(frames, fps)` return a `SignPose` (all four streams of `ALL_STREAMS`);
`HolisticExtractor.extract_ranges` gives the clips of several frame ranges of one video (or frame folder: `open_frames`)
from a single decode, each tracked from scratch.
The `msmae extract` machinery that writes datasets from many videos lives in `msmae.data.extract`.

Handedness: MediaPipe Holistic's `left_hand_landmarks` are the signer's own left hand on an unmirrored video (its
wrist sits at pose landmark 15, LEFT_WRIST; checked on the MSL-150 and pose-format sample videos by
tests/data/test_extraction.py), so they are stored as `left_hand` unchanged.
"""

import atexit
import bisect
import io
import logging
import os
import queue
import re
import sys
import threading
from pathlib import Path

import numpy as np

from .keypoint_layout import (
    BODY_POSE_INDICES,
    FACE_MESH_INDICES,
    HOLISTIC_COMPONENT_STARTS,
    KEYPOINT_LAYOUTS,
    NUM_FACE_LANDMARKS,
    NUM_HAND_LANDMARKS,
    NUM_POSE_LANDMARKS,
    stream_slices,
)
from .pose_io import IMAGE_SUFFIXES, SignPose

logger = logging.getLogger(__name__)

# One landmark copy per stream and frame: slices into the stored (160, 4) layout.
_SLICES = stream_slices()
_BODY, _LEFT, _RIGHT, _FACE = (_SLICES[name] for name in ("body", "left_hand", "right_hand", "face"))
# `keep_landmarks`: "model" keeps the 160 keypoints of the streams, "all" every Holistic landmark (543: pose 33,
# face 468, hands 21 + 21, pose-format's holistic order); refined irises are not computed (refine_face_landmarks off).
KEEP_LANDMARKS = {"model": "msmae", "all": "holistic"}

class ExtractionError(ValueError):
    """A video that cannot give a pose clip (missing, empty, unreadable, no frames); the message names the file."""


class OutOfRangeError(ExtractionError):
    """A clip's frame range lies outside its video."""


# ----------------------------------------------------------------------------------------------------------------------
# Reading videos
# ----------------------------------------------------------------------------------------------------------------------


class VideoReader:
    """Decode a video into RGB uint8 frames `(H, W, 3)` with PyAV, upright (display rotation applied).

    The video is a path, its bytes (`bytes`, `bytearray`, `memoryview`) or a binary file object (seekable, e.g.
    `open(path, "rb")`, `io.BytesIO`); bytes and file objects are decoded from memory, with `name` naming them in
    errors. Usage: `with VideoReader(path) as video: for frame in video: ...`; `video.fps` and `video.frame_count`
    (from the container header, 0 if it does not say) are known after opening.
    """

    def __init__(self, video, name=None):
        import av  # optional dependency (msmae[video])

        if isinstance(video, (str, os.PathLike)):
            self.path = Path(video)
            self.name = name or str(self.path)
            if not self.path.exists():
                raise ExtractionError(f"Video file not found: {self.path}")
            if self.path.is_dir():
                raise ExtractionError(f"{self.path} is a folder, not a video file.")
            if not self.path.is_file():
                import stat

                kind = "a FIFO" if stat.S_ISFIFO(self.path.stat().st_mode) else "a socket or device"
                raise ExtractionError(f"{self.path} is not a regular file ({kind}): give a video file saved on disk "
                                      "(a stream or camera can be recorded to a file first).")
            if self.path.stat().st_size == 0:
                raise ExtractionError(f"Video file {self.path} is empty (0 bytes); re-download or re-export it.")
            video = str(self.path)
        else:
            self.path = None
            if isinstance(video, (bytes, bytearray, memoryview)):
                self.name = name or f"{len(video)} bytes of video"
                if not len(video):
                    raise ExtractionError(f"{self.name}: empty (0 bytes); send the whole video file.")
                video = io.BytesIO(video)
            else:
                self.name = name or str(getattr(video, "name", "") or f"the {type(video).__name__} object")
        try:
            self._container = av.open(video)
        except (av.FFmpegError, OSError) as error:
            raise ExtractionError(f"{self.name} is not a readable video ({error}); check that it is a complete "
                                  "video file (mp4, webm, mov, ...).") from error
        if not self._container.streams.video:
            self._container.close()
            raise ExtractionError(f"{self.name} has no video stream (audio-only or another kind of file).")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame and slice threads, as the ffmpeg command line decodes
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.frame_count = int(self._stream.frames or 0)
        self.frames_read = 0
        self._av_error = av.FFmpegError

    def __iter__(self):
        return self.frames()

    def frames(self, wanted=None):
        """Yield every frame in order; where `wanted(index)` is False, yield None instead (decoded, not converted)."""
        try:
            for frame in self._container.decode(self._stream):
                index, self.frames_read = self.frames_read, self.frames_read + 1
                if wanted is not None and not wanted(index):
                    yield None
                    continue
                image = frame.to_ndarray(format="rgb24")
                if frame.rotation:  # counterclockwise degrees from the display matrix (phone videos)
                    image = np.ascontiguousarray(np.rot90(image, frame.rotation // 90))
                yield image
        except self._av_error as error:
            raise ExtractionError(f"{self.name}: decoding failed after {self.frames_read} frames ({error}); the "
                                  "file is probably truncated or corrupt.") from error

    def close(self):
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _natural_key(path):
    """Name order with digit runs compared as numbers (`frame2.png` before `frame10.png`)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name)]


class FrameFolderReader:
    """A folder of frame images (`.png`/`.jpg`, in name order with numbers compared as numbers) read as a video
    recorded at `fps` (e.g. PHOENIX-2014-T's per-sentence PNG folders at 25 fps); same interface as `VideoReader`."""

    def __init__(self, path, fps):
        self.path = Path(path)
        if not self.path.is_dir():
            raise ExtractionError(f"Frame folder not found: {self.path}")
        self._files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not self._files:
            raise ExtractionError(f"{self.path} is a folder without frame images ({', '.join(IMAGE_SUFFIXES)}); give a "
                                  "video file or a folder of frames.")
        if not fps or fps <= 0:
            raise ExtractionError(f"{self.path} is a frame folder: give its frame rate (fps), which images do not "
                                  "record.")
        self.fps = float(fps)
        self.frame_count = len(self._files)
        self.frames_read = 0

    def __iter__(self):
        return self.frames()

    def frames(self, wanted=None):
        try:
            from PIL import Image
        except ImportError as error:
            raise ImportError("Reading frame images needs Pillow: pip install pillow") from error

        size = None
        for index, file in enumerate(self._files):
            self.frames_read = index + 1
            if wanted is not None and not wanted(index):
                yield None
                continue
            try:
                with Image.open(file) as image:
                    frame = np.asarray(image.convert("RGB"))
            except OSError as error:
                raise ExtractionError(f"{file}: not a readable image ({error}).") from error
            if size is not None and frame.shape != size:
                raise ExtractionError(f"{file}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the "
                                      f"folder's first frame ({size[1]}x{size[0]}).")
            size = frame.shape
            yield frame

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_frames(path, fps=None):
    """A `VideoReader` for a video (a file, its bytes or a file object) or a `FrameFolderReader` for a folder of
    frames (which needs `fps`)."""
    folder = isinstance(path, (str, os.PathLike)) and Path(path).is_dir()
    return FrameFolderReader(path, fps) if folder else VideoReader(path)


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
                      smooth_landmarks=True, keep_landmarks="model") -> dict:
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
    if keep_landmarks not in KEEP_LANDMARKS:
        raise ValueError(f"keep_landmarks must be one of {sorted(KEEP_LANDMARKS)}, got {keep_landmarks!r}.")
    # Recorded only when not the default, so that folders extracted before the option existed still resume.
    kept = {} if keep_landmarks == "model" else {"keep_landmarks": keep_landmarks}
    return {
        "extractor": "mediapipe-holistic",
        "mediapipe_version": mediapipe.__version__,
        "model_complexity": model_complexity,
        "min_detection_confidence": min_detection_confidence,
        "min_tracking_confidence": min_tracking_confidence,
        "smooth_landmarks": smooth_landmarks,
        **kept,
    }


def num_kept_keypoints(keep_landmarks="model") -> int:
    """Keypoints per frame that `keep_landmarks` stores: 160 ("model") or 543 ("all")."""
    return KEYPOINT_LAYOUTS[KEEP_LANDMARKS[keep_landmarks]]


class HolisticExtractor:
    """MediaPipe Holistic graphs, reused across videos; every clip starts with fresh tracking state.

    A graph is restarted (`Holistic.reset()`: its calculators are rebuilt, the models stay loaded) before each new
    clip, which gives the same landmarks as a new graph without paying its start-up again. Clips that overlap in
    one video run side by side, each on its own graph.

    Args:
        model_complexity: pose model size. MediaPipe ships only the model of 1 in its wheel; 0 and 2 are downloaded
            on first use, so they work only where that download has already happened.
        min_detection_confidence, min_tracking_confidence, smooth_landmarks: passed to `Holistic`.
        keep_landmarks: "model" (the 160 keypoints of the streams) or "all" (all 543 Holistic landmarks).
        decode_ahead: decode a video's next frames in a background thread while MediaPipe works on the current one
            (MediaPipe releases the GIL), so decoding uses a spare core instead of waiting its turn.
    """

    def __init__(self, *, model_complexity=1, min_detection_confidence=0.5, min_tracking_confidence=0.5,
                 smooth_landmarks=True, decode_ahead=True, keep_landmarks="model"):
        self.decode_ahead = decode_ahead
        self.settings = holistic_settings(
            model_complexity=model_complexity, min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence, smooth_landmarks=smooth_landmarks,
            keep_landmarks=keep_landmarks,
        )
        self.keep_landmarks = keep_landmarks
        self._graphs, self._used = [], []
        self._new_graph()

    def _new_graph(self):
        _, holistic = _import_mediapipe()
        self._graphs.append(holistic.Holistic(
            static_image_mode=False,  # video mode: track landmarks from frame to frame
            model_complexity=self.settings["model_complexity"],
            smooth_landmarks=self.settings["smooth_landmarks"],
            refine_face_landmarks=False,
            min_detection_confidence=self.settings["min_detection_confidence"],
            min_tracking_confidence=self.settings["min_tracking_confidence"],
        ))
        self._used.append(False)

    def _fresh_graph(self, busy):
        """A graph not in `busy` (slot numbers), restarted if it tracked an earlier clip."""
        slot = next((i for i in range(len(self._graphs)) if i not in busy), None)
        if slot is None:
            self._new_graph()
            slot = len(self._graphs) - 1
        if self._used[slot]:
            self._graphs[slot].reset()  # a new clip: forget the previous clip's tracked landmarks
        self._used[slot] = True
        return slot

    def extract_video(self, path, fps=None, source=None) -> SignPose:
        """Pose clip of a video (a file, its bytes or a binary file object: see `VideoReader`) or a folder of frame
        images (recorded at `fps`; for a video, `fps` overrides its own). `source` names it (default: the path).
        Raises `ExtractionError` naming the video when it gives no frames."""
        with open_frames(path, fps) as video:
            source = source or getattr(video, "name", None) or str(path)
            ((_, pose),) = self.extract_ranges(video, [(0, None)], source=source, fps=fps)
        if isinstance(pose, ExtractionError):
            raise pose
        pose.metadata["header_frame_count"] = video.frame_count
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
        ((_, pose),) = self.extract_ranges(_InMemoryFrames(frames, fps), [(0, None)], source=source)
        return pose

    def extract_ranges(self, reader, ranges, *, source, fps=None):
        """Pose clips of frame ranges of one video, decoding it once: yields `(i, result)` for each `ranges[i]`
        as soon as its last frame is processed (in order of range ends).

        `reader` is a `VideoReader`, `FrameFolderReader` (see `open_frames`) or any object with `fps`, `frame_count`
        and `frames(wanted)`. A range is `(start, stop)` in 0-based frame indices, `stop` exclusive, None for the
        end of the video. `fps` overrides the reader's. `result` is a `SignPose` (`metadata["start_frame"]` and
        `["end_frame"]` give the frames it holds; fewer than asked where the video ends first), or an
        `ExtractionError` for a range with no frame in the video or a truncated video. Frames outside every range
        are decoded but never converted or processed. Decoding errors are raised.
        """
        for start, stop in ranges:
            if start < 0 or (stop is not None and stop <= start):
                raise ValueError(f"{source}: frame range [{start}, {stop}) is empty or negative.")
        fps = float(fps or reader.fps or 0.0)
        order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
        last = None if any(stop is None for _, stop in ranges) else max(stop for _, stop in ranges)
        wanted = _RangeSet(ranges)
        frames = reader.frames(wanted)
        frames = _decode_ahead(frames) if self.decode_ahead else frames
        active, pending, index = {}, iter(order), -1
        upcoming = next(pending, None)
        try:
            for index, image in enumerate(frames):
                while upcoming is not None and ranges[upcoming][0] <= index:
                    start, stop = ranges[upcoming]
                    capacity = (stop if stop is not None else max(reader.frame_count, index + 1)) - start
                    active[upcoming] = (self._fresh_graph({slot for slot, _ in active.values()}),
                                        _PoseBuilder(capacity, start, self.keep_landmarks))
                    upcoming = next(pending, None)
                if image is None:
                    continue
                for slot, builder in active.values():
                    builder.add(self._graphs[slot].process(image), image)
                for i in [i for i in active if ranges[i][1] == index + 1]:
                    yield i, active.pop(i)[1].finish(fps, source, self.settings)
                if last is not None and index + 1 >= last and upcoming is None and not active:
                    return  # every range is done: the rest of the video is not decoded
        finally:
            if hasattr(frames, "close"):
                frames.close()  # stops the decoding thread before the reader closes
        decoded = index + 1
        # FFmpeg stops quietly at the cut of a truncated file; the header still counts every frame (a few frames of
        # slack for edit lists and encoder delay).
        header = reader.frame_count
        truncated = header and decoded < header - max(2, 0.02 * header)
        for i in list(active) + ([upcoming] if upcoming is not None else []) + list(pending):
            builder = active[i][1] if i in active else None
            if decoded == 0:
                yield i, ExtractionError(f"{source} contains no decodable video frames.")
            elif truncated:
                yield i, ExtractionError(f"{source}: decoded only {decoded} of the {header} frames its header "
                                         "announces; the file is probably truncated (re-download or re-export it).")
            elif builder is None:
                yield i, OutOfRangeError(f"{source}: frames [{ranges[i][0]}, {ranges[i][1]}) lie outside the "
                                         f"video's {decoded} frames (check the clip's range and fps).")
            else:
                yield i, builder.finish(fps, source, self.settings)

    def close(self):
        for graph in self._graphs:
            graph.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _RangeSet:
    """`index in ranges` for frame ranges `(start, stop or None)`, as the merged sorted intervals."""

    def __init__(self, ranges):
        merged = []
        for start, stop in sorted(ranges, key=lambda r: r[0]):
            stop = float("inf") if stop is None else stop
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        self._starts = [start for start, _ in merged]
        self._stops = [stop for _, stop in merged]

    def __call__(self, index):
        i = bisect.bisect_right(self._starts, index) - 1
        return i >= 0 and index < self._stops[i]


class _InMemoryFrames:
    """Decoded frames in the reader interface of `extract_ranges`."""

    def __init__(self, frames, fps):
        self._frames, self.fps, self.frame_count = frames, fps, len(frames)

    def frames(self, wanted=None):
        return iter(self._frames)


class _PoseBuilder:
    """Landmarks of one clip, frame by frame, in the stored layout."""

    def __init__(self, capacity, start_frame, keep_landmarks="model"):
        self.copy = _copy_all_landmarks if keep_landmarks == "all" else _copy_landmarks
        self.keypoints = np.zeros((max(capacity, 1), num_kept_keypoints(keep_landmarks), 4), dtype=np.float32)
        self.mask = np.zeros(self.keypoints.shape[:2], dtype=bool)
        self.num_frames, self.height, self.width, self.start_frame = 0, 0, 0, start_frame

    def add(self, results, image):
        if self.num_frames == 0:
            self.height, self.width = image.shape[:2]
        if self.num_frames == len(self.keypoints):  # the header undercounted: grow by half
            extra = max(len(self.keypoints) // 2, 16)
            self.keypoints = np.concatenate([self.keypoints, np.zeros((extra,) + self.keypoints.shape[1:], np.float32)])
            self.mask = np.concatenate([self.mask, np.zeros((extra, self.mask.shape[1]), bool)])
        self.copy(results, self.keypoints[self.num_frames], self.mask[self.num_frames])
        self.num_frames += 1

    def finish(self, fps, source, settings) -> SignPose:
        keypoints, mask = self.keypoints[: self.num_frames], self.mask[: self.num_frames]
        finite = np.isfinite(keypoints).all(-1)
        if not finite.all():  # never seen from MediaPipe, but the dataset contract forbids NaN
            mask &= finite
            keypoints[~finite] = 0.0
        metadata = {"person_detected": bool(mask.any()), "start_frame": self.start_frame,
                    "end_frame": self.start_frame + self.num_frames, **settings}
        return SignPose(keypoints=keypoints, keypoint_mask=mask, fps=float(fps or 0.0), width=self.width,
                        height=self.height, source=str(source), metadata=metadata)


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


def _component_rows(name, size):
    start = HOLISTIC_COMPONENT_STARTS[name]
    return slice(start, start + size)


_ALL_COMPONENTS = (  # (Holistic result attribute, rows of the holistic layout, has visibility)
    ("pose_landmarks", _component_rows("POSE_LANDMARKS", NUM_POSE_LANDMARKS), True),
    ("face_landmarks", _component_rows("FACE_LANDMARKS", NUM_FACE_LANDMARKS), False),
    ("left_hand_landmarks", _component_rows("LEFT_HAND_LANDMARKS", NUM_HAND_LANDMARKS), False),
    ("right_hand_landmarks", _component_rows("RIGHT_HAND_LANDMARKS", NUM_HAND_LANDMARKS), False),
)


def _copy_all_landmarks(results, keypoints, mask):
    """`_copy_landmarks` for the holistic layout: every landmark of every detected component."""
    for attribute, rows, visible in _ALL_COMPONENTS:
        found = getattr(results, attribute)
        if found is None:
            continue
        points = found.landmark[: rows.stop - rows.start]  # 478 face points if irises were refined: keep 468
        if visible:
            keypoints[rows] = [(p.x, p.y, p.z, p.visibility) for p in points]
        else:
            keypoints[rows, :3] = [(p.x, p.y, p.z) for p in points]
        mask[rows] = True


def extract_video(path, fps=None, **extractor_kwargs) -> SignPose:
    """Run MediaPipe Holistic over a video file or a folder of frame images (recorded at `fps`); see
    `HolisticExtractor` for the keyword arguments.

    `pose.metadata["person_detected"]` is False when no landmark was found in any frame (everything masked).
    For many videos, keep one `HolisticExtractor` (graph start-up is paid once) or use `run_extraction`.
    """
    with HolisticExtractor(**extractor_kwargs) as extractor:
        return extractor.extract_video(path, fps=fps)


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
