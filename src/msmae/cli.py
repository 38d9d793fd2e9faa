"""The `msmae` command line: `msmae demo`, `extract`, `visualize`, `predict` and `export-onnx` (see `COMMANDS`).

Each subcommand is a pair of functions: `add_<name>_arguments(parser)` declares its arguments and
`run_<name>(args, parser) -> int` runs it (returning the exit code). Heavy imports (MediaPipe, datasets,
matplotlib) happen inside the `run_` functions so that `msmae --help` stays fast.
"""

import argparse
import logging
import sys
from pathlib import Path

from .cli_compact import COMPACT_HELP, add_compact_arguments, run_compact
from .cli_predict import PREDICT_HELP, add_predict_arguments, run_predict
from .cli_prepare import PREPARE_HELP, add_prepare_arguments, run_prepare
from .onnx_export import EXPORT_ONNX_HELP, add_export_onnx_arguments, run_export_onnx

logger = logging.getLogger("msmae")


# ---- msmae extract ---------------------------------------------------------------------------------------------------


def add_extract_arguments(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="video files, folders (searched recursively for videos) or .txt files listing video "
                             "paths; may be omitted when --manifest lists the videos")
    parser.add_argument("--output_dir", required=True, help="dataset folder (created; re-running resumes in it)")
    parser.add_argument("--manifest", help="CSV/TSV/JSON/JSONL with a 'path' column (relative to the manifest) and "
                                           "per-clip columns (label, text, signer, ...) copied into the dataset; "
                                           "start/end (seconds) or start_frame/end_frame cut clips from long videos")
    parser.add_argument("--num_workers", type=int, default=1, help="processes, one MediaPipe graph each")
    parser.add_argument("--shard_index", type=int, default=0, help="this machine's shard (0-based)")
    parser.add_argument("--num_shards", type=int, default=1,
                        help="split the sorted video list into this many disjoint shards (run one per machine, "
                             "from the same folder with the same inputs)")
    parser.add_argument("--overwrite", action="store_true", help="re-extract videos that are already done")
    parser.add_argument("--retry_failed", action="store_true",
                        help="retry videos in the failure log (by default they are skipped on re-runs)")
    parser.add_argument("--model_complexity", type=int, default=1, choices=(0, 1, 2),
                        help="MediaPipe pose model (only 1 ships with MediaPipe; 0 and 2 download on first use)")
    parser.add_argument("--min_detection_confidence", type=float, default=0.5)
    parser.add_argument("--min_tracking_confidence", type=float, default=0.5)
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def run_extract(args, parser) -> int:
    if not args.inputs and not args.manifest:
        parser.error("give videos, folders or list files to extract, or a --manifest listing them")
    if args.num_workers < 1:
        parser.error(f"--num_workers must be at least 1, got {args.num_workers}")
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        parser.error(f"--shard_index must be in [0, --num_shards), got {args.shard_index} of {args.num_shards}")
    from .data.extract import clips_from_inputs, run_extraction
    from .holistic import filter_native_stderr, holistic_settings

    extractor_kwargs = {"model_complexity": args.model_complexity,
                        "min_detection_confidence": args.min_detection_confidence,
                        "min_tracking_confidence": args.min_tracking_confidence}
    try:  # argument errors (missing input, bad manifest or settings) exit with 2 before any work starts
        clips = clips_from_inputs(args.inputs, args.manifest)
        holistic_settings(**extractor_kwargs)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    filter_native_stderr()
    summary = run_extraction(
        clips=clips, output_dir=args.output_dir, num_workers=args.num_workers,
        shard_index=args.shard_index, num_shards=args.num_shards, overwrite=args.overwrite,
        retry_failed=args.retry_failed, progress=not args.no_progress, quiet=True, extractor_kwargs=extractor_kwargs,
    )
    shard = f" (shard {args.shard_index} of {args.num_shards})" if args.num_shards > 1 else ""
    if summary.num_videos == 0:
        logger.error("No videos found in %s%s.", " ".join(args.inputs) or args.manifest, shard)
        return 1
    logger.info(
        "%d videos, %d clips%s: %d extracted (%d frames, %.1f frames/s), %d already done, %d without a person, "
        "%d failed.", summary.num_videos, summary.num_clips, shard, summary.num_extracted, summary.num_frames, summary.frames_per_second,
        summary.num_already_done, summary.num_no_person, summary.num_failed,
    )
    if summary.failures:
        logger.info("Failures are listed in %s.", Path(args.output_dir) / "failures*.jsonl")
    logger.info("Load the dataset with msmae.data.extract.load_extracted(%r) or "
                "datasets.load_dataset(%r, split='train').", args.output_dir, args.output_dir)
    return 0 if summary.num_extracted + summary.num_already_extracted > 0 else 1


# ---- msmae visualize -------------------------------------------------------------------------------------------------


def add_visualize_arguments(parser):
    parser.add_argument("input", metavar="INPUT",
                        help="a pose clip (.pose, .npy/.npz, ASL-App .json, a folder of per-frame .npy), a video "
                             "(extracted with MediaPipe first) or an `msmae extract` output folder (see --index)")
    parser.add_argument("--output", required=True, help="out.png (one frame), out.gif or out.mp4 (the clip)")
    parser.add_argument("--index", type=int, default=None,
                        help="row of an `msmae extract` output folder to draw (default: the first)")
    parser.add_argument("--frame", type=int, default=None, help="frame drawn into a .png (default: the middle one)")
    parser.add_argument("--streams", nargs="+", default=None,
                        help="streams to draw (default: body left_hand right_hand face)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate of a .gif/.mp4 (default: the clip's)")
    parser.add_argument("--size", type=int, default=512, help="height of the image in pixels")


def run_visualize(args, parser) -> int:
    from .pose_io import load_pose
    from .visualization import render

    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".gif", ".mp4"):
        parser.error(f"--output must end in .png, .gif or .mp4, got {output.name}")
    try:
        pose = load_pose(args.input, index=args.index)
    except (OSError, ValueError) as error:
        logger.error("%s", error)
        return 1
    render(pose, output, streams=args.streams, frame=args.frame, fps=args.fps, height=args.size)
    logger.info("Wrote %s (%d frames of %s).", output, pose.num_frames, args.input)
    return 0


# ---- the program -----------------------------------------------------------------------------------------------------

def run_demo(args, parser) -> int:
    from .training import demo

    return demo.run(args)


def add_demo_arguments(parser):
    from .training import demo

    demo.add_arguments(parser)


# name -> (help, add_arguments, run). Add a subcommand by adding its two functions and one entry here.
COMMANDS = {
    "demo": ("pretrain, fine-tune, evaluate and predict end to end, offline (the main job)", add_demo_arguments,
             run_demo),
    "extract": ("extract MediaPipe Holistic poses from videos into a datasets dataset", add_extract_arguments,
                run_extract),
    "visualize": ("draw a pose clip as a skeleton to .png, .gif or .mp4", add_visualize_arguments, run_visualize),
    "predict": (PREDICT_HELP, add_predict_arguments, run_predict),
    "compact": (COMPACT_HELP, add_compact_arguments, run_compact),
    "prepare": (PREPARE_HELP, add_prepare_arguments, run_prepare),
    "export-onnx": (EXPORT_ONNX_HELP, add_export_onnx_arguments, run_export_onnx),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msmae", description="Multi-Stream Masked Autoencoders for sign language.")
    parser.add_argument("--log_level", default="info", choices=("debug", "info", "warning", "error"))
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_arguments(subparser)
        subparser.set_defaults(run=run, subparser=subparser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our messages at --log_level; other libraries' only from warnings up.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        level=logging.WARNING, stream=sys.stderr)
    logger.setLevel(getattr(logging, args.log_level.upper()))
    return args.run(args, args.subparser)


if __name__ == "__main__":
    sys.exit(main())
