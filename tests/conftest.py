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
"""


def run_without_msmae(script: str, *args, cwd, timeout=300, env=None):
    """Run `script` (Python source) in a fresh interpreter where msmae cannot be imported: trust_remote_code and
    Hub-user paths. Remote code is copied into a fresh modules cache under `cwd`; the Hub stays offline.
    Returns the `subprocess.CompletedProcess` (text output)."""
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update({"HF_HOME": str(Path(cwd) / "hf_home"), "HF_HUB_OFFLINE": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MSMAE_PREAMBLE + script, *map(str, args)],
        capture_output=True, text=True, env=environment, cwd=cwd, timeout=timeout,
    )


def write_video(path, frames, fps=10, codec="libx264", rotation=None) -> str:
    """Encode RGB uint8 frames `(T, H, W, 3)` (even H, W) to a video file (needs PyAV); returns the path as text."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return str(path)
