"""`msmae export-onnx`: a sign classifier, or with `--encoder` any checkpoint's encoder, to ONNX (`msmae.serving.onnx_export`)."""

from pathlib import Path

EXPORT_ONNX_HELP = "export a sign classifier or an encoder to ONNX"


def add_export_onnx_arguments(parser):
    parser.description = (
        "Export an MS-MAE sign classifier to ONNX (dynamic batch and frame axes). Inputs: pose_values float32 "
        "(batch, frames, keypoints, 2), keypoint_mask bool (batch, frames, keypoints), attention_mask int64 "
        "(batch, frames); output: logits (batch, num_labels), or with --encoder last_hidden_state, pooler_output and "
        "token_mask. The model's config.json is written beside the .onnx file; label names are also in the file's "
        "metadata (id2label). Exit codes: 0 written, 1 the model could not be loaded, 2 bad arguments."
    )
    parser.add_argument("--model", required=True, help="checkpoint folder of an MSMAEForSignClassification model "
                        "(with --encoder: of any MS-MAE model)")
    parser.add_argument("--encoder", action="store_true",
                        help="export the encoder (MSMAEModel: embeddings) instead of the classifier")
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    parser.add_argument("--dynamo", action="store_true", help="use the torch.export-based exporter (needs onnxscript)")
    parser.add_argument("--no_check", dest="check", action="store_false",
                        help="skip comparing onnxruntime's outputs with PyTorch's after export")


def run_export_onnx(args, parser) -> int:
    """`msmae export-onnx`: 0 on success, 1 if the model cannot be loaded, 2 for bad arguments (via parser.error)."""
    import logging

    logger = logging.getLogger("msmae")
    if Path(args.output).suffix != ".onnx":
        parser.error(f"--output {args.output}: the file name must end in .onnx")
    if not (Path(args.model) / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there; pass the folder of a saved sign classifier")
    from ..serving.onnx_export import (
        ONNX_INPUT_NAMES, export_onnx, load_classifier, load_encoder, max_abs_difference, output_names,
    )

    try:
        model = load_encoder(args.model) if args.encoder else load_classifier(args.model)
    except Exception as error:  # noqa: BLE001 - any load failure is reported with the path
        kind = "an MS-MAE encoder" if args.encoder else "a sign classifier"
        logger.error("Could not load %s from %s: %s", kind, args.model, error)
        return 1
    path = export_onnx(model, args.output, opset_version=args.opset, dynamo=args.dynamo)
    message = (
        f"Wrote {path} and config.json beside it (inputs: {', '.join(ONNX_INPUT_NAMES)}; "
        f"outputs: {', '.join(output_names(model))})."
    )
    if args.check:
        message += f" onnxruntime vs PyTorch: max |logit difference| {max_abs_difference(model, path):.2e}."
    logger.info("%s", message)
    print(path)
    return 0
