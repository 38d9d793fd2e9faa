"""MSL-150 (Mexican Sign Language, armandobecerril/MSL-150-Dataset): one sample is a folder of 30 per-frame
landmark vectors (`data/sample_npy/<gloss>/<sample>/`), read with the generic frame-folder reader in its "msl150"
layout (`pose_io.LANDMARK_LAYOUTS`)."""

from pathlib import Path

from ...pose_io import MSL150_FPS, MSL150_HEIGHT, MSL150_WIDTH, SignPose, read_frame_folder


def read_msl150_sample(folder) -> SignPose:
    """Read one MSL-150 sample folder (`data/sample_npy/<gloss>/<sample>/`, 30 frame files); the gloss is kept in
    `metadata["gloss"]`."""
    pose = read_frame_folder(folder, layout="msl150", fps=MSL150_FPS, width=MSL150_WIDTH, height=MSL150_HEIGHT)
    pose.metadata["gloss"] = Path(folder).resolve().parent.name
    return pose


__all__ = ["read_msl150_sample"]
