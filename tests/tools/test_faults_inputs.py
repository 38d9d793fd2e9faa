"""tools/fault_injection_inputs.py (issue 26, point 5): a few trials of each kind of ordinary input gone wrong (a
`.pose` file cut short, weights damaged in place, another spelling of the input folder, a bad manifest row fixed
afterwards), each ending with nothing lost, nothing twice and no answer given silently. The randomised run is the
tool itself (RELIABILITY.md)."""

import importlib.util
from pathlib import Path

import pytest

from conftest import SHARED_DATA

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_injection_inputs.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("fault_injection_inputs", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.skipif(not (SHARED_DATA / "pose-format-samples").is_dir(),
                                reason=f"real signing data not found at {SHARED_DATA}")


def test_cut_pose_files_and_damaged_weights_are_refused_and_the_good_clip_answered(tmp_path):
    tool = load_tool()
    report = tool.run_trials(4, seed=3, workdir=tmp_path, kinds=("truncated_pose", "weights_in_place"))
    assert report["bad"] == [], report["bad"]
    assert {r["kind"] for r in report["records"]} == {"truncated_pose", "weights_in_place"}


def test_a_damaged_weight_file_keeps_its_length(tmp_path):
    tool = load_tool()
    weights = tool.save_classifier(tmp_path / "classifier") / "model.safetensors"
    for how in ("random_bytes", "nan", "checksum"):
        before = weights.read_bytes()
        tool.damage_weights(weights, how, seed=5)
        after = weights.read_bytes()
        assert len(after) == len(before) and after != before


@pytest.mark.slow
def test_path_spellings_and_a_fixed_bad_row_keep_each_clip_once(tmp_path):
    pytest.importorskip("mediapipe")
    tool = load_tool()
    report = tool.run_trials(2, seed=3, workdir=tmp_path, kinds=("path_spelling", "bad_row"))
    assert report["bad"] == [], report["bad"]


@pytest.mark.slow
def test_a_symlink_of_another_name_to_the_input_folder_keeps_each_clip_once(tmp_path):
    pytest.importorskip("mediapipe")
    tool = load_tool()
    bench = tool.Bench(tmp_path, ("path_spelling",))
    record = tool.trial(0, {"kind": "path_spelling", "spellings": ["as_given", "symlink"], "workers": 1,
                            "text": "as given, then a symlink"}, bench)
    assert record["outcome"] == "ok", record
