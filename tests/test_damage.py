"""Damage is detected, not consumed (issue 26, point 3): a `.pose` file cut short is refused with what is missing,
weights changed in place after saving fail their checksum on load (also in a checkpoint's own code, without msmae),
and the pipeline and `msmae predict` never answer a NaN score."""

import argparse
import json
import struct

import numpy as np
import pytest
import torch

from conftest import damage_in_place, run_without_msmae, sample_pose_file, save_tiny_classifier, save_tiny_translator

from msmae import MSMAEForSignClassification
from msmae.cli.predict import EXIT_INPUT, EXIT_MODEL, add_predict_arguments, run_predict
from msmae.clips import load_pose
from msmae.pose_io import read_pose_data, read_pose_file


def predict(argv):
    parser = argparse.ArgumentParser(prog="msmae predict")
    add_predict_arguments(parser)
    return run_predict(parser.parse_args(argv), parser)


# ---- .pose files cut short ------------------------------------------------------------------------------------------


def _header_end(data: bytes) -> int:
    from pose_format.pose_header import PoseHeader
    from pose_format.utils.reader import BufferReader

    reader = BufferReader(data)
    PoseHeader.read(reader)
    return reader.read_offset


def as_version_0_1(data: bytes) -> bytes:
    """The same pose as a pose-format v0.1 file (ushort fps and frame count), the version of many files in the wild,
    whose reader takes the frame count from the file's length instead of its header."""
    end = _header_end(data)
    fps, frames, people = struct.unpack_from("<fIH", data, end)
    header = struct.pack("<f", 0.1) + data[4:end]
    return header + struct.pack("<HHH", round(fps), frames, people) + data[end + 10:]


@pytest.fixture
def pose_bytes(tmp_path):
    return sample_pose_file(tmp_path, "msl150/doctor/2").read_bytes()  # 30 frames, pose-format v0.2


def test_a_cut_v0_1_pose_file_is_refused_with_what_is_missing(pose_bytes, tmp_path):
    whole = tmp_path / "whole.pose"
    whole.write_bytes(as_version_0_1(pose_bytes))
    reference = read_pose_file(whole)
    assert reference.num_frames == 30
    np.testing.assert_allclose(reference.keypoints, read_pose_data(pose_bytes).keypoints, atol=1e-5)

    data = whole.read_bytes()
    for length in (len(data) // 2, len(data) - 4, len(data) - 1):  # frames lost; the last confidence; one byte
        cut = tmp_path / "cut.pose"
        cut.write_bytes(data[:length])
        # pose-format reads such a file silently: fewer frames, coordinates taken for confidences
        with pytest.raises(ValueError, match=r"cut\.pose is cut short: its header says 30 frames.*holds"):
            read_pose_file(cut)
        with pytest.raises(ValueError, match=r"cut\.pose is cut short"):
            load_pose(cut)


def test_a_cut_v0_2_pose_file_names_what_is_missing(pose_bytes, tmp_path):
    cut = tmp_path / "cut2.pose"
    cut.write_bytes(pose_bytes[: len(pose_bytes) * 2 // 3])
    with pytest.raises(ValueError, match=r"cut2\.pose is cut short: its header says 30 frames.*bytes are missing"):
        read_pose_file(cut)


def test_the_issues_file_cut_short_is_refused(shared_data, tmp_path):
    """The file of the report: pose-format's v0.1 sample of 170 frames, of which a cut copy read as 84."""
    data = (shared_data / "pose-format-samples" / "mediapipe.pose").read_bytes()
    cut = tmp_path / "mediapipe-cut.pose"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="mediapipe-cut.pose is cut short: its header says 170 frames"):
        read_pose_file(cut)
    assert read_pose_data(data).num_frames == 170  # the whole file still reads


def test_msmae_predict_refuses_a_cut_pose_file(pose_bytes, tmp_path, capsys, caplog):
    classifier = save_tiny_classifier(tmp_path / "classifier")
    cut = tmp_path / "cut.pose"
    cut.write_bytes(as_version_0_1(pose_bytes)[:-4000])
    assert predict([str(cut), "--model", str(classifier), "--format", "json", "--device", "cpu"]) == EXIT_INPUT
    result = json.loads(capsys.readouterr().out)[0]
    assert "predictions" not in result and "cut short" in result["error"]
    assert f"Cannot read {cut}" in caplog.text


# ---- weights damaged in place ---------------------------------------------------------------------------------------


def test_saved_weights_carry_a_checksum_of_their_tensors(tmp_path):
    from safetensors import safe_open

    from msmae.hub_packaging import WEIGHTS_CHECKSUM_KEY, weights_checksum_problem

    folder = save_tiny_classifier(tmp_path / "classifier")
    with safe_open(folder / "model.safetensors", "pt") as f:
        assert len(f.metadata()[WEIGHTS_CHECKSUM_KEY]) == 64
    assert weights_checksum_problem(folder / "model.safetensors") is None


def test_weights_damaged_in_place_are_refused_on_load(tmp_path):
    folder = save_tiny_classifier(tmp_path / "classifier")
    size = (folder / "model.safetensors").stat().st_size
    damage_in_place(folder / "model.safetensors")
    assert (folder / "model.safetensors").stat().st_size == size
    with pytest.raises(ValueError, match=r"model\.safetensors.*do not match the checksum"):
        MSMAEForSignClassification.from_pretrained(folder)


def test_msmae_predict_on_damaged_weights_exits_1_naming_them(pose_bytes, tmp_path, capsys, caplog):
    folder = save_tiny_classifier(tmp_path / "classifier")
    damage_in_place(folder / "model.safetensors")
    clip = tmp_path / "clip.pose"
    clip.write_bytes(pose_bytes)
    assert predict([str(clip), "--model", str(folder), "--device", "cpu"]) == EXIT_MODEL
    assert capsys.readouterr().out == ""
    assert f"Could not load a model from {folder}" in caplog.text and "checksum" in caplog.text


def test_sharded_weights_are_checked_shard_by_shard(tmp_path):
    from safetensors import safe_open

    torch.manual_seed(0)
    model = MSMAEForSignClassification.from_pretrained(save_tiny_classifier(tmp_path / "classifier"))
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="20KB")
    shards = sorted(sharded.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and (sharded / "model.safetensors.index.json").is_file()
    for shard in shards:
        with safe_open(shard, "pt") as f:
            assert "msmae_weights_sha256" in f.metadata()
    reloaded = MSMAEForSignClassification.from_pretrained(sharded)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    damage_in_place(shards[-1])
    with pytest.raises(ValueError, match=rf"{shards[-1].name}.*do not match the checksum"):
        MSMAEForSignClassification.from_pretrained(sharded)


@pytest.mark.slow
def test_a_damaged_translation_model_is_refused(tmp_path):
    from msmae.modeling_sign_translation import SignTranslationModel

    folder = save_tiny_translator(tmp_path / "translator")
    damage_in_place(folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors.*do not match the checksum"):
        SignTranslationModel.from_pretrained(folder)


def test_fine_tuning_from_damaged_weights_stops_before_training(tmp_path):
    """The report: fine-tuning from such weights "succeeded" with loss 0."""
    from conftest import tiny_config

    from msmae import MSMAEForPreTraining
    from msmae.processing_msmae import MSMAEPoseProcessor
    from msmae.recipes import sign_classification
    from msmae.training.synthetic import synthetic_sign_dataset

    pretrained = tmp_path / "pretrained"
    torch.manual_seed(0)
    MSMAEForPreTraining(tiny_config()).save_pretrained(pretrained)
    MSMAEPoseProcessor.from_preset("pretraining").save_pretrained(pretrained)
    damage_in_place(pretrained / "model.safetensors")
    signs = synthetic_sign_dataset(num_classes=3, clips_per_class=4, num_signers=2, seed=0,
                                   cache_dir=str(tmp_path / "cache"))
    signs.save_to_disk(str(tmp_path / "signs"))
    output = tmp_path / "out"
    with pytest.raises(ValueError, match=rf"{pretrained}.*model\.safetensors.*do not match the checksum"):
        sign_classification.main([
            "--output_dir", str(output), "--do_train", "--model_name_or_path", str(pretrained), "--dataset_name",
            str(tmp_path / "signs"), "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_frames", "16",
            "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--log_level", "warning",
        ])
    assert not (output / "model.safetensors").exists()


CHECK_WITHOUT_MSMAE = """
import sys
from transformers import AutoModelForVideoClassification
try:
    AutoModelForVideoClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
except ValueError as error:
    print("REFUSED", error)
else:
    print("LOADED")
"""


def test_the_checkpoints_own_code_refuses_damaged_weights(tmp_path):
    folder = save_tiny_classifier(tmp_path / "classifier")
    damage_in_place(folder / "model.safetensors")
    result = run_without_msmae(CHECK_WITHOUT_MSMAE, folder, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REFUSED" in result.stdout and "do not match the checksum" in result.stdout, result.stdout[-2000:]


# ---- non-finite outputs ---------------------------------------------------------------------------------------------


@pytest.fixture
def nan_classifier(tmp_path):
    """A checkpoint saved with NaN weights (its checksum is right: the damage happened before the save)."""
    folder = save_tiny_classifier(tmp_path / "nan-classifier")
    model = MSMAEForSignClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    model.save_pretrained(folder)
    return folder


def test_the_pipeline_never_returns_a_nan_score(nan_classifier, pose_bytes):
    from transformers import pipeline

    from msmae.pipeline_msmae import RECOGNITION_TASK

    recognizer = pipeline(RECOGNITION_TASK, model=MSMAEForSignClassification.from_pretrained(nan_classifier),
                          device="cpu")
    with pytest.raises(ValueError, match=rf"{nan_classifier}.*not finite"):
        recognizer(pose_bytes, top_k=3)


@pytest.mark.slow
def test_the_translation_pipeline_refuses_nan_weights(tmp_path):
    """Generated token ids do not show NaN logits: the translation pipeline checks the weights it is given."""
    from transformers import pipeline

    from msmae.modeling_sign_translation import SignTranslationModel
    from msmae.pipeline_msmae import TRANSLATION_TASK

    folder = save_tiny_translator(tmp_path / "translator")
    model = SignTranslationModel.from_pretrained(folder)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match=rf"{folder}.*weights that are not finite"):
        pipeline(TRANSLATION_TASK, model=model, device="cpu")


def test_msmae_predict_with_nan_outputs_exits_1_naming_the_checkpoint(nan_classifier, pose_bytes, tmp_path, capsys,
                                                                      caplog):
    clip = tmp_path / "clip.pose"
    clip.write_bytes(pose_bytes)
    assert predict([str(clip), "--model", str(nan_classifier), "--format", "json", "--device", "cpu"]) == EXIT_MODEL
    assert "NaN" not in capsys.readouterr().out
    assert str(nan_classifier) in caplog.text and "not finite" in caplog.text
