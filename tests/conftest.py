import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the Hub: fail fast instead of waiting on a network that isn't there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny test models gain nothing from threads, and on a busy 2-core machine (or with the 2-process accelerate tests)
# oversubscribed OpenMP threads slow them down many times over. Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
# CI and developers keep the real data beside the checkout; MSMAE_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("MSMAE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real signing data not found at {SHARED_DATA} (set MSMAE_SHARED_DATA)"
)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real signing data not found at {SHARED_DATA} (set MSMAE_SHARED_DATA)")
    return SHARED_DATA


# Preamble of every script run by `run_without_msmae`: drop the source tree and editable installs from sys.path and
# make any `import msmae` fail, so the script sees what a user without the package sees.
WITHOUT_MSMAE_PREAMBLE = """\
import sys
sys.path = [p for p in sys.path if not p.rstrip('/').endswith('src') and '__editable__' not in p]
sys.modules['msmae'] = None
try:  # what every caller relies on: a test passing on the installed package would not show the checkpoint's code works
    import msmae
except ImportError:
    pass
else:
    raise SystemExit('msmae is importable in the fresh process: the test would not show it works without msmae')
"""


def run_without_msmae(script: str, *args, cwd, timeout=300, env=None):
    """Run `script` (Python source) in a fresh interpreter where msmae cannot be imported: trust_remote_code and
    Hub-user paths. Remote code is copied into a fresh modules cache under `cwd`; the Hub stays offline.
    Returns the `subprocess.CompletedProcess` (text output)."""
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    hf_home = Path(cwd) / "hf_home"
    environment.update({"HF_HOME": str(hf_home), "HF_MODULES_CACHE": str(hf_home / "modules"), "HF_HUB_OFFLINE": "1",
                        **(env or {})})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MSMAE_PREAMBLE + script, *map(str, args)],
        capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout,
    )


def write_video(path, frames, fps=10, codec="libx264", rotation=None) -> str:
    """Encode RGB uint8 frames `(T, H, W, 3)` (even H, W) to a video file with msmae's one writer
    (`msmae.serving.visualization.write_video`, needs PyAV); returns the path as text."""
    from msmae.serving.visualization import write_video as write

    return str(write(frames, path, fps, codec=codec, rotation=rotation))


# ---- clip builders shared by several test files ----------------------------------------------------------------------


def synthetic_clip(frames, seed, source=""):
    """A `SignPose` with level shoulders (so shoulder normalisation is defined) and random other keypoints (10%
    undetected)."""
    import numpy as np

    from msmae.keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
    from msmae.pose_io import SignPose

    rng = np.random.default_rng(seed)
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    keypoints[..., :2] = rng.uniform(0.3, 0.7, size=(frames, NUM_STORED_KEYPOINTS, 2))
    body = stream_slices()["body"]
    keypoints[:, body.start, :2], keypoints[:, body.start + 1, :2] = [0.6, 0.4], [0.4, 0.4]
    mask = rng.random((frames, NUM_STORED_KEYPOINTS)) > 0.1
    mask[:, body.start : body.start + 2] = True
    return SignPose(keypoints * mask[..., None], mask, fps=25.0, width=640, height=480, source=source)


def random_pose_inputs(config, batch_size=2, frames=12, second_clip_frames=None, generator=0):
    """Model inputs for `batch_size` clips of Gaussian keypoints, 20% of them missing (zero), the second clip padded
    after `second_clip_frames` frames. `generator`: a seed, or a `torch.Generator` to draw more from afterwards."""
    import torch

    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    shape = (batch_size, frames, config.num_keypoints, config.num_coordinates)
    pose_values = torch.randn(shape, generator=generator)
    keypoint_mask = torch.rand(shape[:3], generator=generator) > 0.2
    attention_mask = torch.ones(shape[:2], dtype=torch.long)
    if second_clip_frames is not None:
        attention_mask[1, second_clip_frames:] = 0
    return {"pose_values": pose_values * keypoint_mask.unsqueeze(-1), "keypoint_mask": keypoint_mask,
            "attention_mask": attention_mask}
