"""Which MediaPipe Holistic landmarks make up each MS-MAE stream.

Model inputs (`pose_values`) hold the keypoints of the configured streams concatenated in the config's
`streams` order; stored clips hold all streams in `ALL_STREAMS` order. This module is the single place that says
which streams there are, in what order they are stored, how many keypoints each has, and which MediaPipe Holistic
landmarks fill them. It imports nothing, so the data-only modules (`pose_io`) stay free of torch.

Handedness: `left_hand` is the signer's own left hand. MediaPipe Holistic's `left_hand_landmarks` already
follow that convention on an unmirrored video (its wrist sits at pose landmark 15, LEFT_WRIST), so no
swap is made. Mirrored (selfie) videos swap both the hands and the pose's left/right.
"""

# Keypoints per stream (the one definition: configuration, processor and pose readers import it from here).
STREAM_NUM_KEYPOINTS = {"body": 6, "left_hand": 21, "right_hand": 21, "face": 112}

# Every stored clip keeps all four streams in this order, whatever a model uses: a model's `streams`
# picks its subset at load time, so one extraction serves body+hands and body+hands+face models alike.
ALL_STREAMS = ("body", "left_hand", "right_hand", "face")
# What a model uses unless told otherwise: the paper's body and both hands (the face stream is its option).
DEFAULT_STREAMS = ("body", "left_hand", "right_hand")
NUM_STORED_KEYPOINTS = sum(STREAM_NUM_KEYPOINTS[name] for name in ALL_STREAMS)  # 160


def check_streams(streams) -> list[str]:
    """`streams` as a list, or a `ValueError` unless they are distinct known stream names (config and processor)."""
    streams = list(streams)
    if not streams or len(set(streams)) != len(streams) or any(name not in STREAM_NUM_KEYPOINTS for name in streams):
        raise ValueError(f"`streams` must be distinct names from {list(ALL_STREAMS)}, got {streams}.")
    return streams


def stream_slices(streams=ALL_STREAMS) -> dict[str, slice]:
    """Keypoint slice of each stream when `streams` are concatenated in order."""
    slices, start = {}, 0
    for name in streams:
        slices[name] = slice(start, start + STREAM_NUM_KEYPOINTS[name])
        start += STREAM_NUM_KEYPOINTS[name]
    return slices


# MediaPipe Holistic component sizes.
NUM_POSE_LANDMARKS = 33
NUM_FACE_LANDMARKS = 468  # 478 with refined iris landmarks; the extra 10 are never used here
NUM_HAND_LANDMARKS = 21

# Upper body: shoulders, elbows, wrists (pose 11-16), as in the paper.
BODY_POSE_INDICES = (11, 12, 13, 14, 15, 16)
BODY_POSE_NAMES = ("LEFT_SHOULDER", "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST")

# The 112 face-mesh landmarks of the MS-MAE paper's appendix, in its order:
# face contour (20), mouth outer and inner lips (40), nose (10), eyebrows (10), eyes (32).
FACE_MESH_INDICES = (
    234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323,
    0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61, 185, 40, 39, 37,
    13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78, 191, 80, 81, 82,
    98, 97, 2, 326, 327, 1, 4, 5, 195, 197,
    46, 53, 52, 65, 55, 285, 295, 282, 283, 276,
    33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7,
    362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382,
)

HAND_LANDMARK_NAMES = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)

# The stored layout in words, for dataset cards (built from the tables above so that it cannot drift from them).
STORED_STREAMS_TEXT = (
    f"body (pose landmarks {BODY_POSE_INDICES[0]}-{BODY_POSE_INDICES[-1]}), "
    f"left hand ({STREAM_NUM_KEYPOINTS['left_hand']}), right hand ({STREAM_NUM_KEYPOINTS['right_hand']}), "
    f"face ({STREAM_NUM_KEYPOINTS['face']} mesh points)"
)

# Stored keypoint layouts. "msmae" (the default) keeps the 160 keypoints of the four streams; "holistic" keeps every
# landmark MediaPipe Holistic gives (543), in pose-format's holistic order: pose 33, face 468, left hand 21, right
# hand 21, for other tools and for models that want the whole face mesh or the lower body. A row's layout is its
# number of keypoints per frame; models take their streams from either (`HOLISTIC_TO_STORED`).
NUM_HOLISTIC_KEYPOINTS = NUM_POSE_LANDMARKS + NUM_FACE_LANDMARKS + 2 * NUM_HAND_LANDMARKS  # 543
KEYPOINT_LAYOUTS = {"msmae": NUM_STORED_KEYPOINTS, "holistic": NUM_HOLISTIC_KEYPOINTS}
HOLISTIC_COMPONENT_STARTS = {
    "POSE_LANDMARKS": 0,
    "FACE_LANDMARKS": NUM_POSE_LANDMARKS,
    "LEFT_HAND_LANDMARKS": NUM_POSE_LANDMARKS + NUM_FACE_LANDMARKS,
    "RIGHT_HAND_LANDMARKS": NUM_POSE_LANDMARKS + NUM_FACE_LANDMARKS + NUM_HAND_LANDMARKS,
}
# Index in the holistic layout of each keypoint of the stored ("msmae") layout, in stored order.
HOLISTIC_TO_STORED = (
    tuple(HOLISTIC_COMPONENT_STARTS["POSE_LANDMARKS"] + i for i in BODY_POSE_INDICES)
    + tuple(HOLISTIC_COMPONENT_STARTS["LEFT_HAND_LANDMARKS"] + i for i in range(NUM_HAND_LANDMARKS))
    + tuple(HOLISTIC_COMPONENT_STARTS["RIGHT_HAND_LANDMARKS"] + i for i in range(NUM_HAND_LANDMARKS))
    + tuple(HOLISTIC_COMPONENT_STARTS["FACE_LANDMARKS"] + i for i in FACE_MESH_INDICES)
)


def keypoint_layout(num_keypoints) -> str:
    """The layout ("msmae" or "holistic") of keypoints with `num_keypoints` per frame, or a `ValueError`."""
    for name, size in KEYPOINT_LAYOUTS.items():
        if size == num_keypoints:
            return name
    raise ValueError(f"{num_keypoints} keypoints per frame match no stored layout "
                     f"({', '.join(f'{n}: {s}' for n, s in KEYPOINT_LAYOUTS.items())}).")


assert len(HOLISTIC_TO_STORED) == NUM_STORED_KEYPOINTS
assert len(BODY_POSE_INDICES) == STREAM_NUM_KEYPOINTS["body"]
assert len(FACE_MESH_INDICES) == STREAM_NUM_KEYPOINTS["face"] == len(set(FACE_MESH_INDICES))
assert len(HAND_LANDMARK_NAMES) == STREAM_NUM_KEYPOINTS["left_hand"] == STREAM_NUM_KEYPOINTS["right_hand"]
