"""msmae from a built wheel: the wheel carries the recipes and the packaged signing, and `msmae demo --quick` runs
from it in a fresh virtual environment, from a folder with no `../shared` and no checkout in reach.

The fresh environment gets msmae only from the wheel (installed with --no-deps); its third-party dependencies come
from this environment's site-packages through a `.pth` line (a plain path line: that folder's own `.pth` files,
including msmae's editable install, are not run), so the test needs no network. A `sitecustomize.py` there makes
any read of the source tree or of the shared data fail, so the demo can only work from what the wheel installed.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

GUARD = """\
import os, sys
FORBIDDEN = {forbidden!r}
def _guard(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if any(path == f or path.startswith(f + os.sep) for f in FORBIDDEN):
            raise PermissionError(f"the installed msmae read {{path}} (outside the wheel)")
sys.addaudithook(_guard)
"""


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the project (no build/ or egg-info left in the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    project = root / "project"
    shutil.copytree(REPO_ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, project / name)
    # Build with this environment's setuptools when it is recent enough (offline); else pip fetches one from PyPI.
    try:
        import setuptools

        offline = int(setuptools.__version__.split(".")[0]) >= 69
    except ImportError:
        offline = False
    build = ["--no-build-isolation", "--no-index"] if offline else []
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", *build, "-q", "-w", str(root / "dist"), str(project)],
        timeout=600)
    (built,) = (root / "dist").glob("msmae-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_recipes_and_packaged_signing(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("signs.npz", "README.md", "LICENSE-asl-app-100", "LICENSE-msl150", "CITATION-msl150.cff"):
        assert f"msmae/sample_data/{name}" in names, name
    for name in ("__init__.py", "pretraining.py", "sign_classification.py", "sign_translation.py"):
        assert f"msmae/recipes/{name}" in names, name
    assert "msmae/recipes/demo.py" in names
    assert not any("signsuisse" in n.lower() or "phoenix14t-sample" in n.lower() for n in names)


@pytest.mark.slow
def test_quick_demo_from_the_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=300)
    python = venv / "bin" / "python"
    packages = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (packages / "project_dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    forbidden = [str(REPO_ROOT / d) for d in ("src", "examples", "tools", "tests")] + [str(REPO_ROOT.parent / "shared")]
    (packages / "sitecustomize.py").write_text(GUARD.format(forbidden=[os.path.realpath(f) for f in forbidden]))
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        timeout=300)
    assert (packages / "msmae" / "sample_data" / "signs.npz").is_file()

    workdir = tmp_path / "work"  # no ../shared beside it
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MSMAE_SHARED_DATA")}
    env.update({"HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"})
    done = run([str(venv / "bin" / "msmae"), "demo", "--quick", "--output_dir", "out"],
               cwd=workdir, env=env, timeout=900)

    summary = json.loads((workdir / "out" / "summary.json").read_text())
    assert summary["data_source"] == "packaged" and "real, packaged with msmae" in done.stdout
    assert summary["sign_classification"]["num_signs"] == 5
    assert all(p["source"].startswith("msmae.sample_data:msl150/") for p in summary["predictions"])
    assert summary["pretraining"]["eval_masked_keypoint_mse"] > 0
    assert (workdir / "out" / "sign-classification" / "model.safetensors").is_file()
