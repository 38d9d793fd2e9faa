"""Draw pose clips as skeletons: one frame to PNG, a clip to GIF (Pillow) or MP4 (PyAV), and the
"original | masked input | reconstruction" view of MS-MAE pretraining.

Hands use MediaPipe's 21-point topology, the body its shoulders-elbows-wrists (pose 11-16, each body wrist joined to
its hand's wrist), the face its outline: jaw, lips, nose, eyebrows and eyes of the 112 face-mesh points. Needs the
`viz` extra (matplotlib, Pillow); MP4 also needs PyAV.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..keypoint_layout import ALL_STREAMS, stream_slices
from ..pose_io import SignPose, in_stored_layout

# MediaPipe hand landmarks (see keypoint_layout.HAND_LANDMARK_NAMES): thumb, four fingers, and the palm.
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (9, 10), (10, 11), (11, 12),
    (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
    (5, 9), (9, 13), (13, 17),
)
# Body stream order: LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST.
BODY_BONES = ((0, 1), (0, 2), (2, 4), (1, 3), (3, 5))
BODY_WRIST = {"left_hand": 4, "right_hand": 5}


def _polyline(start, stop, closed=False):
    pairs = [(i, i + 1) for i in range(start, stop - 1)]
    return pairs + [(stop - 1, start)] if closed else pairs


# Face stream order (keypoint_layout.FACE_MESH_INDICES): jaw contour 0-19 (cheek to cheek through the chin), outer
# lips 20-39 and inner lips 40-59 (loops), nostrils 60-64, nose bridge 65-69, eyebrows 70-74 and 75-79, eyes 80-95
# and 96-111 (loops): drawn as lines, the skeleton gets a head.
FACE_BONES = tuple(
    _polyline(0, 20) + _polyline(20, 40, closed=True) + _polyline(40, 60, closed=True) + _polyline(60, 65)
    + _polyline(65, 70) + _polyline(70, 75) + _polyline(75, 80) + _polyline(80, 96, closed=True)
    + _polyline(96, 112, closed=True)
)
STREAM_COLORS = {"body": "#4c72b0", "left_hand": "#dd8452", "right_hand": "#55a868", "face": "#8172b3"}
MASKED_COLOR = "#c8c8c8"
DEFAULT_FPS = 25.0


@dataclass
class Clip:
    """What is drawn: `xy (T, K, 2)` with y pointing down, `mask (T, K)`, the `streams` the keypoints belong to."""

    xy: np.ndarray
    mask: np.ndarray
    streams: tuple
    fps: float = 0.0

    @property
    def num_frames(self) -> int:
        return len(self.xy)


def _numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _default_streams(num_keypoints):
    for streams in (ALL_STREAMS, ALL_STREAMS[:3]):
        if stream_slices(streams)[streams[-1]].stop == num_keypoints:
            return streams
    raise ValueError(f"Cannot tell which streams {num_keypoints} keypoints belong to; pass streams= "
                     "(the model config's `streams`).")


def as_clip(pose, keypoint_mask=None, *, streams=None, fps=None) -> Clip:
    """A `Clip` from a `SignPose` (x scaled by width/height so that shapes keep their aspect; `streams` picks which
    to draw) or from arrays `(T, K, >=2)` of the keypoints of `streams` (default: guessed from K), e.g. a model's
    `pose_values`; a leading batch dimension of 1 is dropped. `keypoint_mask` defaults to all detected."""
    if isinstance(pose, SignPose):
        pose = in_stored_layout(pose)  # a clip of all 543 landmarks is drawn by its streams
        xy = pose.keypoints[..., :2].astype(np.float64)
        if pose.width > 0 and pose.height > 0:
            xy[..., 0] *= pose.width / pose.height
        slices = stream_slices(ALL_STREAMS)
        streams = tuple(streams or ALL_STREAMS)
        unknown = set(streams) - set(ALL_STREAMS)
        if unknown:
            raise ValueError(f"Unknown streams {sorted(unknown)}; choose from {ALL_STREAMS}.")
        keep = np.concatenate([np.arange(slices[s].start, slices[s].stop) for s in streams])
        return Clip(xy[:, keep], pose.keypoint_mask[:, keep], streams, fps if fps else pose.fps)
    xy = _numpy(pose).astype(np.float64)
    if xy.ndim == 4 and xy.shape[0] == 1:
        xy = xy[0]
    if xy.ndim != 3 or xy.shape[-1] < 2:
        raise ValueError(f"Expected keypoints of shape (frames, keypoints, 2), got {xy.shape}.")
    streams = tuple(streams or _default_streams(xy.shape[1]))
    expected = stream_slices(streams)[streams[-1]].stop
    if xy.shape[1] != expected:
        raise ValueError(f"Streams {streams} have {expected} keypoints but the array has {xy.shape[1]}.")
    mask = np.ones(xy.shape[:2], bool) if keypoint_mask is None else _numpy(keypoint_mask).astype(bool)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.shape != xy.shape[:2]:
        raise ValueError(f"keypoint_mask must have shape {xy.shape[:2]}, got {mask.shape}.")
    return Clip(xy[..., :2], mask & np.isfinite(xy[..., :2]).all(-1), streams, float(fps or 0.0))


def skeleton(streams):
    """Bones `(E, 2)` as keypoint indices into the concatenated `streams`, and each bone's stream."""
    slices = stream_slices(streams)
    bones, owners = [], []
    for stream in streams:
        start = slices[stream].start
        pairs = {"left_hand": HAND_BONES, "right_hand": HAND_BONES, "body": BODY_BONES, "face": FACE_BONES}[stream]
        bones += [(start + a, start + b) for a, b in pairs]
        owners += [stream] * len(pairs)
        if stream in BODY_WRIST and "body" in slices:
            bones.append((slices["body"].start + BODY_WRIST[stream], start))
            owners.append(stream)
    return np.array(bones, dtype=int).reshape(-1, 2), owners


class _Panel:
    """One matplotlib axes that draws a skeleton frame by frame (artists are reused, not re-created)."""

    def __init__(self, axes, streams, limits, title):
        from matplotlib.collections import LineCollection
        from matplotlib.colors import to_rgba

        self.axes, self.title = axes, title
        self.bones, owners = skeleton(streams)
        self.masked_color = to_rgba(MASKED_COLOR)
        self.bone_colors = np.array([to_rgba(STREAM_COLORS[s]) for s in owners]).reshape(-1, 4)
        self.bone_widths = np.array([1.0 if s == "face" else 2.0 for s in owners])  # the face's lines are fine
        self.point_colors = np.concatenate(
            [np.tile(to_rgba(STREAM_COLORS[s]), (n, 1)) for s, n in _stream_sizes(streams)]
        )
        self.point_sizes = np.concatenate([np.full(n, 4.0 if s == "face" else 14.0) for s, n in _stream_sizes(streams)])
        self.lines = LineCollection([], linewidths=2.0)
        axes.add_collection(self.lines)
        self.points = axes.scatter([], [], s=[], linewidths=0)
        (x0, x1), (y0, y1) = limits
        axes.set_xlim(x0, x1)
        axes.set_ylim(y1, y0)  # image coordinates: y grows downwards
        axes.set_aspect("equal")
        axes.set_xticks([])
        axes.set_yticks([])

    def draw(self, xy, mask, *, point_alpha=None, hidden=None, caption=""):
        """Draw detected keypoints `xy[mask]`; `point_alpha (K,)` fades some points; `hidden (K,)` points are
        drawn grey without bones (masked input)."""
        visible = mask if hidden is None else mask & ~hidden
        bones = self.bones[visible[self.bones].all(1)] if len(self.bones) else self.bones
        self.lines.set_segments(xy[bones])
        self.lines.set_color(self.bone_colors[visible[self.bones].all(1)] if len(self.bones) else [])
        if len(self.bones):
            self.lines.set_linewidths(self.bone_widths[visible[self.bones].all(1)])
        colors = self.point_colors.copy()
        if point_alpha is not None:
            colors[:, 3] = point_alpha
        if hidden is not None:
            colors[hidden] = self.masked_color
        self.points.set_offsets(xy[mask] if mask.any() else np.zeros((0, 2)))
        self.points.set_facecolors(colors[mask])
        self.points.set_sizes(self.point_sizes[mask])
        self.axes.set_title(f"{self.title}{caption}", fontsize=10)


def _stream_sizes(streams):
    slices = stream_slices(streams)
    return [(s, slices[s].stop - slices[s].start) for s in streams]


def _limits(clips, margin=0.08):
    points = np.concatenate([clip.xy[clip.mask] for clip in clips])
    if len(points) == 0:
        return (0.0, 1.0), (0.0, 1.0)
    low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    pad = np.maximum(high - low, 1e-3) * margin
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


class _Figure:
    """Panels side by side in one off-screen figure; `image()` returns the current frame as RGB uint8."""

    def __init__(self, streams, limits, titles, height):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        (x0, x1), (y0, y1) = limits
        panel_width = height * (x1 - x0) / (y1 - y0)
        width = int(round(panel_width * len(titles) / 2)) * 2  # even sizes for H.264
        height = int(round(height / 2)) * 2
        self.figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.figure)
        axes = self.figure.subplots(1, len(titles), squeeze=False)[0]
        self.panels = [_Panel(ax, streams, limits, title) for ax, title in zip(axes, titles)]
        top = 1 - 26 / height  # room for the titles in pixels, whatever the image size
        self.figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top, wspace=0.03)

    def image(self) -> np.ndarray:
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


def _frame_indices(num_frames, frame):
    if frame is None:
        return [num_frames // 2]
    if not -num_frames <= frame < num_frames:
        raise ValueError(f"Frame {frame} is out of range for a clip of {num_frames} frames.")
    return [frame % num_frames]


def render_frames(pose, keypoint_mask=None, *, streams=None, frames=None, height=512) -> list:
    """RGB uint8 images `(H, W, 3)` of the skeleton in the given `frames` (default: all)."""
    clip = as_clip(pose, keypoint_mask, streams=streams)
    if clip.num_frames == 0:
        raise ValueError("The clip has no frames to draw.")
    figure = _Figure(clip.streams, _limits([clip]), ["pose"], height)
    images = []
    for t in range(clip.num_frames) if frames is None else frames:
        figure.panels[0].draw(clip.xy[t], clip.mask[t], caption=f" - frame {t + 1}/{clip.num_frames}")
        images.append(figure.image())
    return images


def save_images(images, path, fps=DEFAULT_FPS) -> Path:
    """Write RGB uint8 images to `.png` (the first), `.gif` (Pillow) or `.mp4` (H.264 with PyAV)."""
    from PIL import Image

    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        Image.fromarray(images[0]).save(path)
    elif suffix == ".gif":
        frames = [Image.fromarray(image) for image in images]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(round(1000 / fps)), loop=0)
    elif suffix == ".mp4":
        write_video(images, path, fps)
    else:
        raise ValueError(f"Cannot write {path}: use .png, .gif or .mp4.")
    return path


def write_video(frames, path, fps=DEFAULT_FPS, codec="libx264", rotation=None) -> Path:
    """Encode RGB uint8 frames `(T, H, W, 3)` (even H and W) to a video file with PyAV (`codec`, yuv420p);
    `rotation` (degrees) is stored as the stream's display rotation. msmae's one video writer (renders, test and
    fault-injection videos)."""
    from fractions import Fraction

    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def render(pose, output, keypoint_mask=None, *, streams=None, frame=None, fps=None, height=512) -> Path:
    """Draw `pose` (a `SignPose` or keypoint arrays, see `as_clip`) to `output`: a `.png` of one frame (`frame`,
    default the middle one), or the whole clip as `.gif` / `.mp4` at `fps` (default the clip's)."""
    clip = as_clip(pose, keypoint_mask, streams=streams, fps=fps)
    still = Path(output).suffix.lower() == ".png"
    frames = _frame_indices(clip.num_frames, frame) if still else None
    images = render_frames(clip.xy, clip.mask, streams=clip.streams, frames=frames, height=height)
    return save_images(images, output, fps=clip.fps or DEFAULT_FPS)


def expand_token_mask(token_mask, cubelet_size, num_frames, streams) -> np.ndarray:
    """Keypoint-level `(num_frames, K)` bool mask from a model's token mask `(num_streams, num_cubelets)` (1 =
    masked): token (s, l) covers frames `l*S .. l*S+S-1` of stream s's keypoints."""
    token_mask = _numpy(token_mask).astype(bool)
    if token_mask.ndim == 3 and token_mask.shape[0] == 1:
        token_mask = token_mask[0]
    if token_mask.ndim != 2 or token_mask.shape[0] != len(streams):
        raise ValueError(f"token_mask must have shape (num_streams={len(streams)}, num_cubelets), got "
                         f"{token_mask.shape}.")
    frames = np.repeat(token_mask, cubelet_size, axis=1)[:, :num_frames]  # (num_streams, T)
    if frames.shape[1] < num_frames:
        raise ValueError(f"token_mask covers {token_mask.shape[1]} cubelets of {cubelet_size} frames, fewer than "
                         f"the clip's {num_frames} frames.")
    sizes = [n for _, n in _stream_sizes(streams)]
    return np.repeat(frames, sizes, axis=0).T


def render_reconstruction(pose_values, keypoint_mask, token_mask, cubelet_size, reconstruction, *, streams,
                          output=None, frame=None, fps=DEFAULT_FPS, height=384):
    """Side by side "original | masked input | reconstruction" for one pretraining example.

    Args:
        pose_values: `(T, K, 2)` model input (a batch dimension of 1 is dropped); `keypoint_mask`: `(T, K)`.
        token_mask: the model's `mask` `(num_streams, num_cubelets)`, 1 = masked; `cubelet_size`: frames per token.
        reconstruction: the model's `reconstruction` output (positions, `logits` de-normalised where the target
            is not positions) `(num_cubelets * cubelet_size, K, 2)` (frames past T are ignored).
        streams: the config's `streams` (the order of keypoints and of token_mask rows).
        output: `.png` (one frame), `.gif` or `.mp4`; None returns the image(s) instead of writing.
        frame: the frame of a `.png` or of the returned image (default: the middle one); all frames for gif/mp4.

    The masked input greys out keypoints of masked tokens; the reconstruction shows the prediction for them in full
    colour over the faded visible keypoints. Undetected keypoints are never drawn.
    """
    original = as_clip(pose_values, keypoint_mask, streams=streams)
    num_frames = original.num_frames
    predicted = _numpy(reconstruction).astype(np.float64)
    if predicted.ndim == 4 and predicted.shape[0] == 1:
        predicted = predicted[0]
    if predicted.ndim != 3 or predicted.shape[0] < num_frames or predicted.shape[1:] != original.xy.shape[1:]:
        raise ValueError(f"reconstruction must have shape (>= {num_frames}, {original.xy.shape[1]}, 2), got "
                         f"{predicted.shape}.")
    masked = expand_token_mask(token_mask, cubelet_size, num_frames, original.streams)
    combined = np.where(masked[..., None], predicted[:num_frames, :, :2], original.xy)
    limits = _limits([original])
    figure = _Figure(original.streams, limits, ["original", "masked input", "reconstruction"], height)
    still = output is None or Path(output).suffix.lower() == ".png"
    frames = _frame_indices(num_frames, frame) if still else range(num_frames)
    images = []
    for t in frames:
        detected = original.mask[t]
        figure.panels[0].draw(original.xy[t], detected, caption=f" - frame {t + 1}/{num_frames}")
        figure.panels[1].draw(original.xy[t], detected, hidden=masked[t],
                              caption=f" - {int(masked[t][detected].mean() * 100) if detected.any() else 0}% hidden")
        figure.panels[2].draw(combined[t], detected, point_alpha=np.where(masked[t], 1.0, 0.3))
        images.append(figure.image())
    if output is None:
        from PIL import Image

        return Image.fromarray(images[0]) if still else [Image.fromarray(image) for image in images]
    return save_images(images, output, fps=fps)
