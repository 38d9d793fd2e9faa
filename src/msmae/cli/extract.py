"""`msmae extract`: MediaPipe Holistic poses of videos (whole, or clips given by a manifest) into a resumable
`datasets` dataset (`msmae.data.extract.run_extraction`)."""

import logging
import os

logger = logging.getLogger("msmae")

EXTRACT_HELP = "extract MediaPipe Holistic poses from videos into a datasets dataset"


def add_extract_arguments(parser):
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="video files, folders (searched recursively for videos) or .txt files listing video "
                             "paths; may be omitted when --manifest lists the videos")
    parser.add_argument("--output_dir", required=True, help="dataset folder (created; re-running resumes in it), or an object-store URL "
                             "(s3://bucket/prefix, gs://...; credentials from the environment)")
    parser.add_argument("--manifest", help="CSV/TSV/JSON/JSONL with a 'path' column (relative to the manifest) and "
                                           "per-clip columns (label, text, signer, ...) copied into the dataset; "
                                           "start/end (seconds) or start_frame/end_frame cut clips from long videos")
    parser.add_argument("--num_workers", type=int, default=1,
                        help="processes, one MediaPipe graph each (--engine ray: sources at once; 0 = every CPU "
                             "of the Ray cluster)")
    add_engine_arguments(parser)
    parser.add_argument("--shard_index", type=int, default=None,
                        help="this machine's shard (0-based; default: the Slurm array task, else 0)")
    parser.add_argument("--num_shards", type=int, default=None,
                        help="split the sorted video list into this many disjoint shards (run one per machine, "
                             "from the same folder with the same inputs; default: the Slurm array size, else 1)")
    parser.add_argument("--overwrite", action="store_true", help="re-extract videos that are already done")
    parser.add_argument("--retry_failed", action="store_true",
                        help="retry videos in the failure log (by default they are skipped on re-runs)")
    parser.add_argument("--model_complexity", type=int, default=1, choices=(0, 1, 2),
                        help="MediaPipe pose model (only 1 ships with MediaPipe; 0 and 2 download on first use)")
    parser.add_argument("--keep_landmarks", choices=("model", "all"), default="model",
                        help="model: the 160 keypoints MS-MAE models use (body, hands, 112 face points); all: every "
                             "MediaPipe Holistic landmark (543: pose 33, face 468, hands 21+21), for other tools or "
                             "models that want the whole face mesh or the lower body (about 2.7x the storage; see the "
                             "README)")
    parser.add_argument("--min_detection_confidence", type=float, default=0.5)
    parser.add_argument("--min_tracking_confidence", type=float, default=0.5)
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def add_engine_arguments(parser):
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: a process pool on this machine; ray: Ray tasks on a local Ray or the cluster "
                             "at --ray_address (pip install 'msmae[cluster]')")
    parser.add_argument("--ray_address", default=None,
                        help="--engine ray: the cluster to join (HOST:6379, or 'auto' for the one this node is "
                             "part of); default: start a local Ray on 127.0.0.1")


def check_engine_arguments(args, parser):
    if args.ray_address is not None and args.engine != "ray":
        parser.error("--ray_address needs --engine ray")
    if args.num_workers < (0 if args.engine == "ray" else 1):
        parser.error(f"--num_workers must be at least 1 (0 only with --engine ray), got {args.num_workers}")


def resolve_shard(args, parser):
    """Fill in --shard_index/--num_shards: as given, else from a Slurm job array's variables (said in the log),
    else the whole input."""
    from ..data.extract import slurm_shard

    if args.shard_index is None and args.num_shards is None:
        try:
            shard = slurm_shard()
        except ValueError as error:
            parser.error(str(error))
        if shard is not None:
            args.shard_index, args.num_shards = shard
            logger.info("Shard %d of %d, from the Slurm job array (SLURM_ARRAY_TASK_ID=%s).", args.shard_index,
                        args.num_shards, os.environ.get("SLURM_ARRAY_TASK_ID"))
    args.shard_index = 0 if args.shard_index is None else args.shard_index
    args.num_shards = 1 if args.num_shards is None else args.num_shards
    if args.num_shards < 1 or not 0 <= args.shard_index < args.num_shards:
        parser.error(f"--shard_index must be in [0, --num_shards), got {args.shard_index} of {args.num_shards}")


def run_extract(args, parser) -> int:
    if not args.inputs and not args.manifest:
        parser.error("give videos, folders or list files to extract, or a --manifest listing them")
    check_engine_arguments(args, parser)
    resolve_shard(args, parser)
    from ..data.extract import OutputError, run_extraction
    from ..data.parts import ExtractionBusy
    from ..data.sources import clips_from_inputs, printable
    from ..holistic import filter_native_stderr, holistic_settings

    extractor_kwargs = {"model_complexity": args.model_complexity,
                        "min_detection_confidence": args.min_detection_confidence,
                        "min_tracking_confidence": args.min_tracking_confidence,
                       "keep_landmarks": args.keep_landmarks}
    try:  # argument errors (missing input, bad manifest or settings) exit with 2 before any work starts
        clips = clips_from_inputs(args.inputs, args.manifest)
        holistic_settings(**extractor_kwargs)
    except (OSError, ValueError) as error:
        parser.error(printable(error))
    filter_native_stderr()
    try:
        summary = run_extraction(
            clips=clips, output_dir=args.output_dir, num_workers=args.num_workers,
            shard_index=args.shard_index, num_shards=args.num_shards, overwrite=args.overwrite,
            retry_failed=args.retry_failed, progress=not args.no_progress, quiet=True,
            extractor_kwargs=extractor_kwargs, engine=args.engine, ray_address=args.ray_address,
        )
    except (OutputError, ExtractionBusy, ConnectionError, ImportError) as error:  # the machine's fault: say what
        # to fix; the next run resumes
        logger.error("%s", error)
        return 1
    except ValueError as error:  # the folder does not fit these inputs or settings: say how to proceed
        logger.error("%s", printable(error))
        return 2
    shard = f" (shard {args.shard_index} of {args.num_shards})" if args.num_shards > 1 else ""
    if summary.num_videos == 0:
        logger.error("No videos found in %s%s.", printable(" ".join(args.inputs) or args.manifest), shard)
        return 1
    logger.info(
        "%d videos, %d clips%s: %d extracted (%d frames, %.1f frames/s), %d already done, %d without a person, "
        "%d failed.", summary.num_videos, summary.num_clips, shard, summary.num_extracted, summary.num_frames,
        summary.frames_per_second, summary.num_already_done, summary.num_no_person, summary.num_failed,
    )
    if summary.num_damaged or summary.num_updated:
        logger.info("%d damaged or outdated parts were extracted again; %d rows got their changed columns.",
                    summary.num_damaged, summary.num_updated)
    if summary.failures:
        logger.info("Failures are listed in %s/failures*.jsonl.", args.output_dir.rstrip("/"))
    logger.info("Load the dataset with msmae.data.parts.load_extracted(%r) or "
                "datasets.load_dataset(%r, split='train').", args.output_dir, args.output_dir)
    return 0 if summary.num_extracted + summary.num_already_extracted > 0 else 1
