"""ONNX export of `MSMAEForSignClassification` or of the encoder `MSMAEModel` (embeddings), for serving without
PyTorch (onnxruntime, TensorRT, ...).

The exported graph takes the processor's outputs as they are:

    pose_values     float32 (batch, frames, num_keypoints, 2)
    keypoint_mask   bool    (batch, frames, num_keypoints)
    attention_mask  int64   (batch, frames)       1 = real frame, 0 = padding

and returns the classifier's `logits (batch, num_labels)`, or the encoder's `last_hidden_state (batch, tokens,
hidden)`, `pooler_output (batch, hidden)` and token `token_mask (batch, tokens)` (see `MSMAEModelOutput`).
Batch and frame axes are dynamic. The model's `config.json` is written beside the `.onnx` file (as in a
checkpoint folder), and the label names are also in the file's metadata (`id2label`, JSON).

We use PyTorch's TorchScript-based exporter (`dynamo=False`): it exports this model in about a second and needs no
extra package, while the `torch.export`-based one (`dynamo=True`) needs `onnxscript` and takes ~30 s. Both give the
same outputs here. Data-dependent Python branches are frozen at trace time, so the wrapper below pads the frames to a
multiple of the cubelet size with tensor ops; the model's own padding branch then never fires and odd frame counts
export correctly. Clips are limited to `max_position_embeddings * cubelet_size` frames (2048 by default), the span of
the precomputed position table.
"""

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ONNX_INPUT_NAMES = ("pose_values", "keypoint_mask", "attention_mask")


ENCODER_OUTPUT_NAMES = ("last_hidden_state", "pooler_output", "token_mask")


def output_names(model) -> tuple[str, ...]:
    """The graph's outputs: `("logits",)` for a classifier, `ENCODER_OUTPUT_NAMES` for an encoder."""
    return ("logits",) if hasattr(model, "classifier") else ENCODER_OUTPUT_NAMES


class _ModelForExport(nn.Module):
    """Pads frames to a multiple of the cubelet size in-graph, then runs the model and returns its outputs as a
    tuple in `output_names(model)` order."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.cubelet_size = model.config.cubelet_size

    def forward(self, pose_values, keypoint_mask, attention_mask):
        extra = self.cubelet_size - 1
        if extra:
            frames = pose_values.shape[1]
            padded = (frames + extra) // self.cubelet_size * self.cubelet_size
            # Zero frames shaped from the first frame, so they follow the dynamic batch size.
            pose_values = torch.cat([pose_values, _zero_frames(pose_values, extra)], 1)[:, :padded]
            keypoint_mask = torch.cat([keypoint_mask, _zero_frames(keypoint_mask, extra)], 1)[:, :padded]
            attention_mask = torch.cat([attention_mask, _zero_frames(attention_mask, extra)], 1)[:, :padded]
        outputs = self.model(
            pose_values=pose_values, keypoint_mask=keypoint_mask, attention_mask=attention_mask, return_dict=True
        )
        if hasattr(self.model, "classifier"):
            return outputs.logits
        return outputs.last_hidden_state, outputs.pooler_output, outputs.attention_mask


def _zero_frames(tensor, count):
    zeros = torch.zeros_like(tensor[:, :1])
    return zeros.expand(-1, count, *zeros.shape[2:])


def example_inputs(config, batch_size: int = 2, num_frames: int = 32, seed: int = 0) -> dict:
    """Random inputs in the ONNX graph's layout; the last sample's second half is padding, as in a real batch."""
    generator = torch.Generator().manual_seed(seed)
    pose_values = torch.rand(batch_size, num_frames, config.num_keypoints, config.num_coordinates, generator=generator)
    keypoint_mask = torch.rand(batch_size, num_frames, config.num_keypoints, generator=generator) > 0.1
    attention_mask = torch.ones(batch_size, num_frames, dtype=torch.long)
    if batch_size > 1:
        attention_mask[-1, max(1, num_frames // 2) :] = 0
    return {"pose_values": pose_values, "keypoint_mask": keypoint_mask, "attention_mask": attention_mask}


def to_onnx_inputs(inputs) -> dict:
    """Converts processor outputs (tensors or arrays) to the numpy dtypes the ONNX graph expects."""

    def array(value):
        return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

    return {
        "pose_values": array(inputs["pose_values"]).astype(np.float32),
        "keypoint_mask": array(inputs["keypoint_mask"]).astype(bool),
        "attention_mask": array(inputs["attention_mask"]).astype(np.int64),
    }


def export_onnx(model, output_path, *, opset_version: int = 17, dynamo: bool = False, num_frames: int = 32) -> Path:
    """Exports a sign classifier or an encoder to ONNX with dynamic batch and frame axes, and writes the model's
    `config.json` beside it.

    Args:
        model: an `MSMAEForSignClassification` or `MSMAEModel`, or the path of a saved classifier checkpoint.
        output_path: the `.onnx` file to write (parent folders are created; its folder receives `config.json`).
        opset_version: ONNX opset (17 has LayerNormalization; onnxruntime >= 1.14 runs it).
        dynamo: use the `torch.export`-based exporter (needs `pip install onnxscript`) instead of the TorchScript one.
        num_frames: frames of the example input used for tracing (any value works for inference).

    Returns: the path written.
    """
    if isinstance(model, (str, Path)):
        model = load_classifier(model)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    wrapper = _ModelForExport(model).eval()
    names = output_names(model)
    inputs = example_inputs(model.config, num_frames=num_frames)
    args = tuple(inputs[name].to(model.device) for name in ONNX_INPUT_NAMES)
    common = {"input_names": list(ONNX_INPUT_NAMES), "output_names": list(names), "opset_version": opset_version}
    # The tracer warns about every shape check it freezes; the wrapper above makes those constants safe.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # Raised for the mask's index arithmetic, whose indices are never negative.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        if dynamo:
            dims = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
            torch.onnx.export(wrapper, args, str(output_path), dynamo=True, dynamic_shapes=(dims, dims, dims), **common)
        else:
            axes = {"pose_values": {0: "batch", 1: "frames"}, "keypoint_mask": {0: "batch", 1: "frames"}}
            axes["attention_mask"] = {0: "batch", 1: "frames"}
            axes.update({"logits": {0: "batch"}, "pooler_output": {0: "batch"}})
            axes.update({name: {0: "batch", 1: "tokens"} for name in ("last_hidden_state", "token_mask")})
            axes = {name: value for name, value in axes.items() if name in (*ONNX_INPUT_NAMES, *names)}
            torch.onnx.export(wrapper, args, str(output_path), dynamo=False, dynamic_axes=axes, **common)
    _write_metadata(output_path, model.config)
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]  # as `save_pretrained` records it: which model the graph is
    config.save_pretrained(output_path.parent)
    return output_path


def _write_metadata(path: Path, config) -> None:
    import onnx

    onnx_model = onnx.load(str(path))
    metadata = {
        "id2label": json.dumps({str(k): v for k, v in (config.id2label or {}).items()}),
        "streams": json.dumps(list(config.streams)),
        "cubelet_size": str(config.cubelet_size),
        "max_frames": str(config.max_position_embeddings * config.cubelet_size),
    }
    del onnx_model.metadata_props[:]
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(onnx_model, str(path))


def load_encoder(path):
    """Loads the encoder (`MSMAEModel`, with the [CLS] token the checkpoint was trained with) of any MS-MAE
    checkpoint: pretraining, classifier or encoder."""
    from ..modeling_msmae import MSMAEModel

    return MSMAEModel.from_pretrained(str(path))


def load_classifier(path):
    """Loads a saved `MSMAEForSignClassification`; raises ValueError if the folder holds another architecture."""
    from transformers import PreTrainedConfig

    from ..modeling_msmae import MSMAEForSignClassification

    config, _ = PreTrainedConfig.get_config_dict(str(path))
    architectures = config.get("architectures") or []
    if "MSMAEForSignClassification" not in architectures:
        raise ValueError(f"{path} holds {', '.join(architectures) or 'no architecture'}, not an MSMAEForSignClassification.")
    return MSMAEForSignClassification.from_pretrained(str(path))


def max_abs_difference(model, onnx_path, batch_size: int = 2, num_frames: int = 33) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's outputs on random padded inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = example_inputs(model.config, batch_size=batch_size, num_frames=num_frames, seed=1)
    with torch.no_grad():
        expected = _ModelForExport(model.eval())(*(inputs[name].to(model.device) for name in ONNX_INPUT_NAMES))
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = session.run(list(output_names(model)), to_onnx_inputs(inputs))
    return max(float(abs(a - e.float().cpu().numpy()).max()) for a, e in zip(actual, expected))


__all__ = [
    "export_onnx",
    "to_onnx_inputs",
    "example_inputs",
    "max_abs_difference",
    "load_classifier",
    "load_encoder",
    "output_names",
    "ONNX_INPUT_NAMES",
    "ENCODER_OUTPUT_NAMES",
]
