"""ONNX export of the sign classifier and of the encoder: onnxruntime matches PyTorch, padding and odd frame counts included."""

import argparse
import json

import numpy as np
import pytest
import torch
from conftest import LABELS, labelled, tiny_config

from msmae import MSMAEForPreTraining, MSMAEForSignClassification, MSMAEModel
from msmae.cli.export_onnx import add_export_onnx_arguments, run_export_onnx
from msmae.serving.onnx_export import example_inputs, export_onnx, to_onnx_inputs

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")



def tiny_classifier(**overrides):
    torch.manual_seed(0)
    return MSMAEForSignClassification(tiny_config(**labelled(), **overrides)).eval()


def session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("overrides", [{}, {"cubelet_size": 3, "linear_probe": True, "streams": ["body", "right_hand"]}])
def test_onnxruntime_matches_pytorch(tmp_path, overrides):
    model = tiny_classifier(**overrides)
    path = export_onnx(model, tmp_path / "model.onnx")
    runtime = session(path)
    assert [i.name for i in runtime.get_inputs()] == ["pose_values", "keypoint_mask", "attention_mask"]
    # (batch, frames): no padding; padded rows; frame counts that are not a multiple of the cubelet; one frame.
    for batch, frames in [(1, 32), (3, 32), (4, 17), (2, 1), (2, 61)]:
        inputs = example_inputs(model.config, batch_size=batch, num_frames=frames, seed=frames)
        with torch.no_grad():
            expected = model(**inputs).logits.numpy()
        (logits,) = runtime.run(["logits"], to_onnx_inputs(inputs))
        assert logits.shape == (batch, len(LABELS))
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4, err_msg=f"batch {batch}, frames {frames}")


def test_padding_does_not_change_a_clip_in_onnx(tmp_path):
    model = tiny_classifier()
    runtime = session(export_onnx(model, tmp_path / "model.onnx"))
    long, short = example_inputs(model.config, batch_size=2, num_frames=40, seed=3), 23
    alone = {k: v[1:, :short] for k, v in long.items()}
    alone["attention_mask"] = torch.ones_like(alone["attention_mask"])
    padded = {k: v.clone() for k, v in long.items()}
    padded["attention_mask"][1] = 0
    padded["attention_mask"][1, :short] = 1
    padded["pose_values"][1, short:] = 123.0  # garbage in the padding must not leak into the real frames
    (batched,) = runtime.run(["logits"], to_onnx_inputs(padded))
    (single,) = runtime.run(["logits"], to_onnx_inputs(alone))
    np.testing.assert_allclose(batched[1], single[0], atol=1e-5)


def test_label_names_are_in_the_metadata(tmp_path):
    path = export_onnx(tiny_classifier(), tmp_path / "model.onnx")
    metadata = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["id2label"]) == {str(i): name for i, name in enumerate(LABELS)}
    assert json.loads(metadata["streams"]) == ["body", "left_hand", "right_hand"]
    assert metadata["cubelet_size"] == "2"


def parse(argv):
    parser = argparse.ArgumentParser(prog="msmae export-onnx")
    add_export_onnx_arguments(parser)
    return parser.parse_args(argv), parser


def test_export_onnx_command(tmp_path, capsys):
    checkpoint = tmp_path / "classifier"
    model = tiny_classifier()
    model.save_pretrained(checkpoint)
    output = tmp_path / "exported" / "classifier.onnx"
    args, parser = parse(["--model", str(checkpoint), "--output", str(output)])
    assert run_export_onnx(args, parser) == 0
    assert capsys.readouterr().out.strip() == str(output)
    inputs = example_inputs(model.config, batch_size=2, num_frames=9)
    (logits,) = session(output).run(["logits"], to_onnx_inputs(inputs))
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(**inputs).logits.numpy(), atol=1e-4)


def test_export_onnx_command_rejects_bad_arguments(tmp_path):
    checkpoint = tmp_path / "classifier"
    tiny_classifier().save_pretrained(checkpoint)
    for argv in (
        ["--model", str(checkpoint), "--output", str(tmp_path / "model.txt")],  # not .onnx
        ["--model", str(tmp_path / "missing"), "--output", str(tmp_path / "model.onnx")],  # no checkpoint
    ):
        args, parser = parse(argv)
        with pytest.raises(SystemExit) as exit_info:
            run_export_onnx(args, parser)
        assert exit_info.value.code == 2


def test_export_onnx_command_refuses_a_model_without_classifier(tmp_path, caplog):
    pretrained = tmp_path / "pretrained"
    MSMAEForPreTraining(tiny_config()).save_pretrained(pretrained)
    args, parser = parse(["--model", str(pretrained), "--output", str(tmp_path / "model.onnx")])
    assert run_export_onnx(args, parser) == 1
    assert "MSMAEForPreTraining" in caplog.text and not (tmp_path / "model.onnx").exists()


def test_config_json_is_written_beside_the_onnx_file(tmp_path):
    model = tiny_classifier()
    export_onnx(model, tmp_path / "classifier" / "model.onnx")
    saved = json.loads((tmp_path / "classifier" / "config.json").read_text())
    assert saved["architectures"] == ["MSMAEForSignClassification"] and saved["id2label"]["4"] == "yo"
    assert saved["streams"] == ["body", "left_hand", "right_hand"] and saved["hidden_size"] == 32


@pytest.mark.parametrize("source", [MSMAEForPreTraining, MSMAEForSignClassification])
def test_encoder_export_matches_pytorch(tmp_path, source):
    """The encoder of a pretraining or a classifier checkpoint (with its fine-tuned [CLS] token)."""
    torch.manual_seed(0)
    source(tiny_config()).save_pretrained(tmp_path / "checkpoint")
    output = tmp_path / "encoder" / "encoder.onnx"
    args, parser = parse(["--model", str(tmp_path / "checkpoint"), "--output", str(output), "--encoder"])
    assert run_export_onnx(args, parser) == 0
    encoder = MSMAEModel.from_pretrained(tmp_path / "checkpoint").eval()
    assert (encoder.cls_token is not None) == (source is MSMAEForSignClassification)
    assert json.loads((output.parent / "config.json").read_text())["architectures"] == ["MSMAEModel"]
    runtime = session(output)
    assert [o.name for o in runtime.get_outputs()] == ["last_hidden_state", "pooler_output", "token_mask"]
    for batch, frames in [(1, 8), (3, 17)]:
        inputs = example_inputs(encoder.config, batch_size=batch, num_frames=frames, seed=frames)
        with torch.no_grad():
            expected = encoder(**inputs)
        hidden, pooled, mask = runtime.run(None, to_onnx_inputs(inputs))
        np.testing.assert_allclose(hidden, expected.last_hidden_state.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(pooled, expected.pooler_output.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(mask, expected.attention_mask.numpy())
