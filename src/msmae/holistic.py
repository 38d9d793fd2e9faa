"""MediaPipe Holistic pose extraction from videos and decoded frames: what inference needs (pipelines, the
processor, `msmae predict`), kept flat so that Hub checkpoints can carry it.

`extract_video(path)` / `extract_frames(frames, fps)` return a `SignPose` (all four streams of `ALL_STREAMS`).
The `msmae extract` machinery that writes datasets from many videos lives in `msmae.data.extract`.

Handedness: MediaPipe Holistic's `left_hand_landmarks` are the signer's own left hand on an unmirrored video (its
wrist sits at pose landmark 15, LEFT_WRIST; checked on the MSL-150 and pose-format sample videos by
tests/test_extraction.py), so they are stored as `left_hand` unchanged.
"""

import atexit
import logging
import os
import queue
import sys
import threading
from pathlib import Path

import numpy as np

from .keypoint_layout import BODY_POSE_INDICES, FACE_MESH_INDICES
from .pose_io import SignPose, stream_slices

logger = logging.getLogger(__name__)

# One landmark copy per stream and frame: slices into the stored (160, 4) layout.
_SLICES = stream_slices()
_BODY, _LEFT, _RIGHT, _FACE = (_SLICES[name] for name in ("body", "left_hand", "right_hand", "face"))

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
