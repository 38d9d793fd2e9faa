"""Write pose clips as pose-format `.pose` files (`msmae export-pose`), for the tools of the pose-format ecosystem.

A clip becomes the `Pose` that pose-format's own MediaPipe Holistic export (`pose_format.utils.holistic`) would
write: components `POSE_LANDMARKS`, `FACE_LANDMARKS`, `LEFT_HAND_LANDMARKS`, `RIGHT_HAND_LANDMARKS` with its point
names and limbs, x and y in pixels of the header's frame size, z as MediaPipe gives it, and as confidence the pose
landmarks' visibility and 1 for detected hand and face points (0 where undetected: pose-format's mask).
A clip in the stored layout (160 keypoints) keeps the points it has: pose landmarks 11-16, the 112 face-mesh points
and both hands; a clip extracted with `--keep_landmarks all` keeps all 543. `msmae.pose_io.read_pose_file` reads
them back to the same arrays (x and y to float32 rounding of the pixel conversion).
"""

from pathlib import Path
import re

import numpy as np

from ..keypoint_layout import (BODY_POSE_NAMES, FACE_MESH_INDICES, HOLISTIC_TO_STORED, NUM_HOLISTIC_KEYPOINTS,
                               NUM_POSE_LANDMARKS)
from ..pose_io import HOLISTIC_COMPONENTS, HOLISTIC_POINT_NAMES, SignPose

# The smallest positive float32: a detected pose landmark whose visibility rounds to 0 keeps a confidence above 0,
# so that pose-format (and our reader) still count it as detected.
_MIN_CONFIDENCE = np.finfo(np.float32).tiny


def holistic_header_components():
    """pose-format's MediaPipe Holistic components (names, points, limbs, colours), without the world landmarks
    (msmae does not keep them). Taken from pose-format itself where MediaPipe is installed (it builds the limbs
    from MediaPipe's connection tables); otherwise the same names and points without limbs."""
    from pose_format.pose_header import PoseHeaderComponent

    try:
        from pose_format.utils.holistic import holistic_components
    except ImportError:  # pose-format's holistic module imports mediapipe; the names do not need it
        return [PoseHeaderComponent(name=name, points=[point for component, point in HOLISTIC_POINT_NAMES
                                                       if component == name], limbs=[], colors=[(255, 0, 0)],
                                    point_format="XYZC") for name in HOLISTIC_COMPONENTS]
    components = [c for c in holistic_components() if c.name in HOLISTIC_COMPONENTS]
    names = [(c.name, point) for c in components for point in c.points]
    if names != list(HOLISTIC_POINT_NAMES):  # a pose-format release that renamed or reordered them
        raise RuntimeError("pose-format's MediaPipe Holistic components differ from msmae's (pose_io."
                           "HOLISTIC_POINT_NAMES); update msmae or install the pose-format version it supports.")
    return components


def to_pose_format(pose: SignPose):
    """The `pose_format.Pose` of a clip (one person), in pose-format's MediaPipe Holistic layout (see above)."""
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    values, mask = _holistic_arrays(pose)
    # Pixels, as pose-format's export writes them; a clip of unknown frame size keeps 0-1 coordinates.
    scale = np.array([pose.width, pose.height], np.float64) if pose.width and pose.height else np.ones(2)
    data = values[..., :3].astype(np.float64)
    data[..., :2] *= scale
    confidence = np.where(mask, 1.0, 0.0)
    pose_rows = slice(0, NUM_POSE_LANDMARKS)  # the holistic layout starts with the pose landmarks
    confidence[:, pose_rows] = np.where(mask[:, pose_rows], np.maximum(values[:, pose_rows, 3], _MIN_CONFIDENCE), 0)
    data[~mask] = 0.0
    body = NumPyPoseBody(fps=float(pose.fps), data=data[:, None].astype(np.float32),
                         confidence=confidence[:, None].astype(np.float32))
    header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(width=int(pose.width), height=int(pose.height),
                                                                        depth=0),
                        components=holistic_header_components())
    full = Pose(header=header, body=body)
    if pose.layout == "holistic":
        return full
    # The stored layout has 160 of the 543 points: write those, in the components' own point order.
    return full.get_components(list(HOLISTIC_COMPONENTS), {
        "POSE_LANDMARKS": list(BODY_POSE_NAMES),
        "FACE_LANDMARKS": [str(index) for index in sorted(FACE_MESH_INDICES)],
    })


def _holistic_arrays(pose: SignPose):
    """`(T, 543, 4)` values and `(T, 543)` mask of a clip in either layout (stored points placed, the rest masked)."""
    if pose.layout == "holistic":
        return np.asarray(pose.keypoints), np.asarray(pose.keypoint_mask)
    values = np.zeros((pose.num_frames, NUM_HOLISTIC_KEYPOINTS, 4), np.float32)
    mask = np.zeros((pose.num_frames, NUM_HOLISTIC_KEYPOINTS), bool)
    values[:, list(HOLISTIC_TO_STORED)] = pose.keypoints
    mask[:, list(HOLISTIC_TO_STORED)] = pose.keypoint_mask
    return values, mask


def write_pose_file(pose: SignPose, path) -> Path:
    """Write a clip to `path` (a `.pose` file) with pose-format's writer; returns the path."""
    path = Path(path)
    if pose.num_frames == 0:
        raise ValueError(f"{pose.source or 'the clip'} has zero frames; a .pose file needs at least one.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        to_pose_format(pose).write(file)
    return path


def file_name(clip_id: str, taken: set) -> str:
    """A file name for a clip id (its path separators and odd characters made `_`), unique among `taken`."""
    clip_id = re.sub(r"\.(pose|npy|npz|json|mp4|webm|avi|mov|mkv)$", "", str(clip_id), flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_id).strip("._") or "clip"
    stem = stem[-150:]  # long source paths: keep the distinctive end
    name, number = f"{stem}.pose", 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}.pose"
    taken.add(name)
    return name


def export_rows(rows, output_dir) -> list[Path]:
    """Write every row (msmae's schema: `SignPose.to_example` columns) to `output_dir/<clip id>.pose`."""
    output_dir, taken, written = Path(output_dir), set(), []
    for row in rows:
        pose = SignPose.from_example(row)
        clip_id = row.get("clip_id") or row.get("source") or f"clip-{len(written)}"
        written.append(write_pose_file(pose, output_dir / file_name(clip_id, taken)))
    return written
