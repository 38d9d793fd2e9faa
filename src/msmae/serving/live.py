"""Live sign recognition: MediaPipe Holistic in streaming (tracking) mode, frame by frame from a camera or a video,
a sliding window over the last seconds of pose, and a running top-k as the person signs.

    msmae live --model CKPT --camera 0
    msmae live --model CKPT --video signing.mp4 --realtime

`LiveRecognizer.push(frame, timestamp)` takes one RGB frame and, every `every` frames, returns an `Update` with the
top-k of the last `window` seconds and the latency from the frame's arrival to that answer. `--realtime` plays a
video at its own pace and, as a live camera does, skips frames that arrive while the previous one is still being
processed, so latency and dropped frames are what a person in front of a camera would see.
"""

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
from ..pose_io import SignPose


class StreamingHolistic:
    """One MediaPipe Holistic graph in video mode (landmarks tracked from frame to frame), fed one frame at a time."""

    def __init__(self, **settings):
        # msmae.holistic's helpers: the same checked settings and landmark layout as `msmae extract`.
        from ..holistic import _copy_landmarks, _import_mediapipe, holistic_settings

        _, holistic = _import_mediapipe()
        self.settings = holistic_settings(**settings)
        self._copy_landmarks = _copy_landmarks
        self.graph = holistic.Holistic(
            static_image_mode=False,
            model_complexity=self.settings["model_complexity"],
            smooth_landmarks=self.settings["smooth_landmarks"],
            refine_face_landmarks=False,
            min_detection_confidence=self.settings["min_detection_confidence"],
            min_tracking_confidence=self.settings["min_tracking_confidence"],
        )
        # MediaPipe loads its models on the first frame (seconds): pay that before the stream starts, then forget it.
        self.graph.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self.graph.reset()

    def process(self, frame):
        """`(keypoints (160, 4), keypoint_mask (160,))` of one RGB uint8 frame `(H, W, 3)`, in the stored layout."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"A live frame must be an RGB uint8 array (H, W, 3), got {getattr(frame, 'dtype', type(frame))} "
                             f"{getattr(frame, 'shape', '')}; convert camera frames with cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).")
        keypoints = np.zeros((NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
        mask = np.zeros(NUM_STORED_KEYPOINTS, dtype=bool)
        self._copy_landmarks(self.graph.process(np.ascontiguousarray(frame)), keypoints, mask)
        return keypoints, mask

    def close(self):
        self.graph.close()


@dataclass
class Update:
    """The running answer after one frame: `predictions` (`[{"label", "score"}]`, best first; empty when nobody is in
    view), the stream `time` (seconds) and `frame` index it ends at, and `latency` (seconds from the frame's arrival
    to this answer: pose extraction, the model, and any wait in between)."""

    frame: int
    time: float
    predictions: list = field(default_factory=list)
    latency: float = 0.0

    def line(self) -> str:
        shown = " | ".join(f"{p['label']} {p['score']:.2f}" for p in self.predictions) or "(no signer in view)"
        return f"{self.time:7.2f} s  {shown}   [{1000 * self.latency:.0f} ms]"


class LiveRecognizer:
    """A recognition checkpoint over a sliding window of streamed frames.

    Args:
        model: a sign-recognition checkpoint (folder or Hub id) or a loaded recognition pipeline.
        window: seconds of signing each answer looks at (the frames of the last `window` seconds).
        every: frames between answers (1: an answer after every frame).
        top_k: labels in each answer.
        min_fraction: no answer until the frames span this fraction of the window (the stream's first moments).
    """

    def __init__(self, model, *, window=2.0, every=4, top_k=5, min_fraction=0.5, device=None, holistic=None):
        if window <= 0 or every < 1 or top_k < 1:
            raise ValueError(f"window must be positive and every, top_k at least 1; got window={window}, "
                             f"every={every}, top_k={top_k}.")
        from ..pipeline_msmae import SignLanguageRecognitionPipeline

        self.pipeline = model if isinstance(model, SignLanguageRecognitionPipeline) else self._load(model, device)
        self.window, self.every, self.top_k = float(window), int(every), int(top_k)
        self.min_span = min_fraction * self.window
        self.holistic = holistic or StreamingHolistic()
        self.frames = deque()  # (timestamp, keypoints, mask) of the last `window` seconds
        self.count = 0
        self.size = (0, 0)
        body = stream_slices()["body"]
        self._body = slice(body.start, body.stop)

    @staticmethod
    def _load(model, device):
        from transformers import pipeline

        from ..hub_packaging import RECOGNITION_TASK, checkpoint_task

        task = checkpoint_task(model)
        if task != RECOGNITION_TASK:
            raise ValueError(f"{model} serves {task}; live recognition needs a sign recognition checkpoint.")
        return pipeline(RECOGNITION_TASK, model=str(model), device=device)

    def push(self, frame, timestamp, arrival=None):
        """Adds one RGB frame taken at `timestamp` (seconds into the stream); returns an `Update` every `every` frames
        once the frames span enough of the window, else None. `arrival` (a `time.perf_counter()` value) is when the
        frame reached the program (default: now)."""
        arrival = time.perf_counter() if arrival is None else arrival
        keypoints, mask = self.holistic.process(frame)
        self.size = frame.shape[1], frame.shape[0]
        self.frames.append((float(timestamp), keypoints, mask))
        while self.frames[0][0] <= timestamp - self.window:
            self.frames.popleft()
        index, self.count = self.count, self.count + 1
        span = timestamp - self.frames[0][0]
        if span < self.min_span or (index + 1) % self.every:
            return None
        update = Update(frame=index, time=float(timestamp))
        keypoints = np.stack([k for _, k, _ in self.frames])
        masks = np.stack([m for _, _, m in self.frames])
        if masks[:, self._body].any():  # somebody in view: hands alone give no body to normalise by
            fps = (len(self.frames) - 1) / span if span > 0 else 0.0
            pose = SignPose(keypoints, masks, fps=fps, width=self.size[0], height=self.size[1], source="live")
            update.predictions = self.pipeline(pose, top_k=self.top_k)
        update.latency = time.perf_counter() - arrival
        return update

    def close(self):
        self.holistic.close()


# ---- frame sources ------------------------------------------------------------------------------------------------


def video_frames(path, realtime=False, stats=None):
    """`(frame, timestamp, arrival)` for each frame of a video file; `realtime` paces them at the video's frame rate
    and skips frames that are already late (a camera would have replaced them), counting them in `stats["dropped"]`."""
    from ..holistic import VideoReader

    with VideoReader(path) as video:
        fps = video.fps or 30.0
        start = time.perf_counter()
        for index, frame in enumerate(video):
            if not realtime:
                yield frame, index / fps, time.perf_counter()
                continue
            due = start + index / fps
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            elif now - due > 1.0 / fps:  # the next frame is already due: this one would never have been seen
                if stats is not None:
                    stats["dropped"] = stats.get("dropped", 0) + 1
                continue
            yield frame, index / fps, due


def camera_frames(index=0):
    """`(frame, timestamp, arrival)` from a camera (OpenCV), RGB, until the camera stops or Ctrl-C."""
    import cv2

    camera = cv2.VideoCapture(index)
    if not camera.isOpened():
        raise OSError(f"Camera {index} could not be opened; check --camera (0 is the first camera) and that no other "
                      "program is using it.")
    camera.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued while the last was processed
    start = time.perf_counter()
    try:
        while True:
            ok, frame = camera.read()
            if not ok:
                return
            arrival = time.perf_counter()
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), arrival - start, arrival
    finally:
        camera.release()


def run_live(recognizer, frames, on_update=print):
    """Feeds `frames` (`(frame, timestamp, arrival)`) to `recognizer`; calls `on_update(update)` for each answer and
    returns them all."""
    updates = []
    for frame, timestamp, arrival in frames:
        update = recognizer.push(frame, timestamp, arrival)
        if update is not None:
            updates.append(update)
            on_update(update)
    return updates


__all__ = ["LiveRecognizer", "StreamingHolistic", "Update", "run_live", "video_frames", "camera_frames"]
