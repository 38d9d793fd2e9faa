"""The real signing packaged with msmae (msmae.sample_data): what it holds, its licence notices, that it is what the
readers make of ../shared/data (tools/build_sample_data.py), and that loading it needs no ../shared."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from msmae import sample_data
from msmae.keypoint_layout import NUM_STORED_KEYPOINTS

REPO_ROOT = Path(__file__).resolve().parents[2]
MSL150_COUNTS = {"ambulancia": 11, "doctor": 15, "dolor": 20, "hoy": 20, "yo": 20}


def load_tool():
    spec = importlib.util.spec_from_file_location("build_sample_data", REPO_ROOT / "tools" / "build_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_holds_the_two_mit_sets_only():
    with np.load(sample_data.SAMPLE_FILE, allow_pickle=False) as stored:
        datasets, labels = list(stored["dataset"]), list(stored["label"])
        assert set(datasets) == {"asl-app-100", "msl150"}
        assert all(not str(s).startswith(("signsuisse", "phoenix")) for s in stored["source"])
    msl = [label for d, label in zip(datasets, labels) if d == "msl150"]
    assert {g: msl.count(g) for g in set(msl)} == MSL150_COUNTS
    assert len({label for d, label in zip(datasets, labels) if d == "asl-app-100"}) == 100
    # Only the data, its notices and the reader ship in this folder (no other set's files).
    shipped = {p.name for p in sample_data.SAMPLE_FILE.parent.iterdir() if p.name != "__pycache__"}
    assert shipped == {"__init__.py", "README.md", "signs.npz", "LICENSE-asl-app-100", "LICENSE-msl150",
                       "CITATION-msl150.cff"}
    assert sample_data.SAMPLE_FILE.stat().st_size < 3e6


def test_licence_notices_and_citation():
    folder = sample_data.SAMPLE_FILE.parent
    asl = (folder / "LICENSE-asl-app-100").read_text()
    assert "MIT License" in asl and "Shravan Chandra" in asl and "Permission is hereby granted" in asl
    assert "MIT" in (folder / "LICENSE-msl150").read_text()
    assert 'doi: "10.5281/zenodo.17783312"' in (folder / "CITATION-msl150.cff").read_text()
    notice = (folder / "README.md").read_text()
    assert "https://doi.org/10.5281/zenodo.17783312" in notice and "Becerril Carrillo" in notice
    assert "10.5281/zenodo.17783312" in sample_data.__doc__


def test_clips():
    pose = sample_data.load_clip("msl150/doctor/2")
    assert pose.keypoints.shape == (30, NUM_STORED_KEYPOINTS, 4) and pose.keypoints.dtype == np.float32
    assert pose.metadata["label"] == "doctor" and pose.metadata["upstream_file"] == "msl150/data/sample_npy/doctor/2"
    assert (pose.fps, pose.width, pose.height) == (pytest.approx(29.97), 1280, 720)
    assert pose.keypoint_mask[:, :6].mean() > 0.9  # MSL-150's body is there in almost every frame
    assert not pose.keypoint_mask[:, -112:].any()  # and it has no face points
    assert np.all(pose.keypoints[~pose.keypoint_mask] == 0)
    book = sample_data.load_clip("asl-app-100/book")
    assert book.metadata == {"label": "book", "dataset": "asl-app-100", "upstream_file": "asl-app-100/signs/book.json"}
    assert 28 <= book.num_frames <= 84 and book.keypoint_mask[:, -112:].any()  # ASL-App keeps some face points
    assert len(sample_data.load_clips("msl150")) == 86 and len(sample_data.clip_names()) == 186


def test_bad_names_say_what_exists():
    with pytest.raises(KeyError, match="msl150/<gloss>/<sample>.*clip_names"):
        sample_data.load_clip("msl150/doctor/999")
    with pytest.raises(ValueError, match="asl-app-100, msl150"):
        sample_data.load_clips("signsuisse")
    with pytest.raises(ValueError, match="asl-app-100, msl150"):
        sample_data.sample_dataset("phoenix14t")


def test_sample_dataset_is_the_clips_in_msmae_schema(tmp_path):
    dataset = sample_data.sample_dataset("msl150", cache_dir=str(tmp_path)).with_format("numpy")
    assert dataset.features["label"].names == sorted(MSL150_COUNTS)
    clips = sample_data.load_clips("msl150")
    assert len(dataset) == len(clips)
    for i in (0, 50, 85):
        row, pose = dataset[i], clips[i]
        assert dataset.features["label"].names[int(row["label"])] == pose.metadata["label"]
        np.testing.assert_array_equal(row["keypoints"], pose.keypoints)
        np.testing.assert_array_equal(row["keypoint_mask"], pose.keypoint_mask)
        assert row["source"] == pose.source


def test_shipped_file_is_what_the_readers_make_of_shared_data(shared_data):
    clips = load_tool().read_clips(shared_data)
    with np.load(sample_data.SAMPLE_FILE, allow_pickle=False) as stored:
        shipped = {key: stored[key] for key in stored.files}
    for key in ("dataset", "name", "label", "source"):
        assert shipped[key].tolist() == [c[key] for c in clips], key
    assert shipped["num_frames"].tolist() == [len(c["keypoints"]) for c in clips]
    assert shipped["width"].tolist() == [c["width"] for c in clips]
    assert shipped["height"].tolist() == [c["height"] for c in clips]
    np.testing.assert_allclose(shipped["fps"], [c["fps"] for c in clips], rtol=1e-6)
    np.testing.assert_array_equal(shipped["keypoint_mask"], np.concatenate([c["keypoint_mask"] for c in clips]))
    # float16 keeps 11 significant bits: a relative error of at most 2^-11 (plus subnormals near 0).
    expected = np.concatenate([c["keypoints"] for c in clips])
    np.testing.assert_allclose(shipped["keypoints"].astype(np.float32), expected, rtol=2**-11, atol=1e-7)


# Any open of a file under the shared data folder fails; the package must load its clips from itself.
NO_SHARED_SCRIPT = """
import os, sys
forbidden = os.path.realpath(sys.argv[1])
def guard(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.realpath(os.fsdecode(args[0])).startswith(forbidden):
            raise PermissionError(f"read {args[0]}")
sys.addaudithook(guard)
from msmae import sample_data
clips = sample_data.load_clips()
print(len(clips), sum(c.num_frames for c in clips), sample_data.SAMPLE_FILE)
"""


def test_loading_needs_no_shared_data(tmp_path):
    forbidden = REPO_ROOT.parent / "shared"
    env = {"MSMAE_SHARED_DATA": str(tmp_path / "missing"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", NO_SHARED_SCRIPT, str(forbidden)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    count, frames, path = done.stdout.split()
    assert (int(count), int(frames)) == (186, 7337) and Path(path) == sample_data.SAMPLE_FILE


@pytest.mark.slow
def test_readme_snippets_run_on_packaged_clips(tmp_path, monkeypatch):
    import re

    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)
    snippets = [block for block in blocks if "sample_data" in block]
    assert len(snippets) >= 3  # quick start, using the models, from pose files to model inputs
    monkeypatch.chdir(tmp_path)  # the snippets save models into the current folder
    for snippet in snippets:
        namespace = {}
        exec(compile(snippet, "README.md", "exec"), namespace)
        if "inputs" in namespace:
            assert namespace["inputs"]["pose_values"].shape[0] == 2


def test_a_clip_is_the_callers_own():
    clip = sample_data.load_clip("msl150/doctor/2")
    clip.keypoints[:] = 7.0
    clip.keypoint_mask[:] = False
    again = sample_data.load_clip("msl150/doctor/2")
    assert again.keypoint_mask.any() and not np.any(again.keypoints == 7.0)
