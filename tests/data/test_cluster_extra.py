"""`pip install msmae[video,cluster]` keeps MediaPipe working: the installed Ray and s3fs are the pinned ones, pip
finds no broken requirement, and MediaPipe's Holistic (which needs protobuf 4) runs beside Ray in one interpreter."""

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def cluster_pins() -> dict:
    import tomllib

    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", pin).groups() for pin in extras["cluster"])


def test_the_cluster_extra_is_installed_as_pinned_and_pip_is_content():
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    for name, version in cluster_pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed: pip install -e '.[cluster]'")
        assert installed == version, f"{name} {installed} installed, pyproject pins {version}"
    assert "msmae[video,viz,onnx,app,cluster]" in PYPROJECT.read_text(), "the dev extra must pull the cluster extra"
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_mediapipe_holistic_runs_with_ray_imported():
    pytest.importorskip("mediapipe")
    pytest.importorskip("ray")
    script = ("import ray, numpy, google.protobuf as pb\n"
              "from msmae.holistic import extract_frames\n"
              "pose = extract_frames(numpy.zeros((2, 64, 64, 3), numpy.uint8), fps=25)\n"
              "print(pb.__version__.split('.')[0], pose.num_frames, ray.__version__)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    major, frames, ray_version = result.stdout.split()[-3:]
    assert (major, frames) == ("4", "2") and ray_version == cluster_pins()["ray"]
