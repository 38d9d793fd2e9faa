"""`msmae prepare`: a corpus as its publishers distribute it -> MediaPipe poses in its official splits.

Runs `msmae.data.prepare.prepare`. Exit codes: 0 rows were written; 1 no clip gave a row; 2 bad arguments or
annotation files (checked before any extraction starts).
"""

import argparse
import logging

logger = logging.getLogger("msmae")

PREPARE_HELP = "extract a downloaded sign-language corpus (WLASL, How2Sign, ...) into a datasets DatasetDict"

PREPARE_EPILOG = """\
corpora (ROOT is the folder the publisher's download unpacks to):
  wlasl        WLASL_v0.3.json or nslt_N.json + wlasl_class_list.txt, videos/ (--subset 100|300|1000|2000)
  asl_citizen  ASL_Citizen/ with splits/*.csv and videos/
  slovo        annotations.csv with train/ and test/ (--class_list constants.py, --original_videos)
  phoenix14t   PHOENIX-2014-T/ with annotations/manual/ and features/fullFrame-210x260px/
  csl_daily    sentence_label/ (split_1.txt, video_map.txt) and sentence/frames_512x512/ (--fps)
  how2sign     how2sign_realigned_*.csv with the clips or raw videos (--source auto|clips|videos)
  youtube_asl  youtube_asl_video_ids.txt and the downloaded videos (--video_ids, --video_dir)
  manifest     ROOT is a .csv/.tsv/.json(l) of clips: path, start, end, label, signer[, split, text]
  asl_signs    Kaggle asl-signs: train.csv, sign_to_prediction_index_map.json, train_landmark_files/ (no video)
  asl_fingerspelling  Kaggle asl-fingerspelling: train.csv, supplemental_metadata.csv, train_landmarks/ (no video)
  openpose     folders of OpenPose *_keypoints.json (How2Sign's openpose_output/json/) (--frame_size WxH, --fps)

examples:
  msmae prepare wlasl WLASL/start_kit --subset 100 --output_dir data/wlasl100 --num_workers 8
  msmae prepare phoenix14t PHOENIX-2014-T-release-v3 --output_dir data/phoenix14t
  msmae prepare manifest jsl/clips.csv --output_dir data/jsl
"""

# CLI option -> reader keyword (None values are not passed, so each reader keeps its defaults).
READER_OPTIONS = ("subset", "annotations", "video_dir", "class_list", "source", "fps", "video_ids", "split_by",
                  "seed", "frame_size")


def add_prepare_arguments(parser):
    parser.epilog = PREPARE_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dataset", metavar="DATASET", help="the corpus (listed below)")
    parser.add_argument("root", metavar="ROOT", help="the corpus folder as downloaded (for manifest: the file)")
    parser.add_argument("--output_dir", required=True,
                        help="where the DatasetDict goes (re-running resumes); a folder or an s3://bucket/prefix URL")
    parser.add_argument("--subset", type=int, help="WLASL: 100, 300, 1000 or 2000 (default 2000)")
    parser.add_argument("--annotations", help="WLASL: the annotation file (WLASL_v0.3.json or nslt_N.json)")
    parser.add_argument("--video_dir", help="where the videos are when not in the publisher's place")
    parser.add_argument("--class_list", help="Slovo, manifest: class names in order (Slovo: its constants.py)")
    parser.add_argument("--original_videos", action="store_true",
                        help="Slovo: the original videos (slovo_full), cut by begin/end")
    parser.add_argument("--source", choices=("auto", "clips", "videos"), help="How2Sign: clips or raw videos")
    parser.add_argument("--fps", type=float, help="CSL-Daily: frame rate of the frame folders (default 30); "
                        "landmark corpora: the rate to record when not published")
    parser.add_argument("--video_ids", help="YouTube-ASL: the id list (default ROOT/youtube_asl_video_ids.txt)")
    parser.add_argument("--split_by", choices=("signer",),
                        help="corpora without official splits: train/validation/test sharing no signer")
    parser.add_argument("--seed", type=int, help="the seed of --split_by (default 0)")
    parser.add_argument("--frame_size", metavar="WxH",
                        help="openpose: the source videos' frame size in pixels (How2Sign: 1280x720)")
    parser.add_argument("--num_workers", type=int, default=1,
                        help="processes, one MediaPipe graph each (--engine ray: sources at once; 0 = every CPU "
                             "of the Ray cluster)")
    from .extract import add_engine_arguments

    add_engine_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="re-extract clips that are already done")
    parser.add_argument("--retry_failed", action="store_true", help="retry clips in the failure log")
    parser.add_argument("--model_complexity", type=int, default=1, choices=(0, 1, 2), help="MediaPipe pose model")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def run_prepare(args, parser) -> int:
    from ..data.corpora import CorpusError, read_corpus
    from ..data.extract import OutputError
    from ..data.parts import ExtractionBusy
    from ..data.prepare import prepare, reader_options

    from .extract import check_engine_arguments

    check_engine_arguments(args, parser)
    options = {name: getattr(args, name) for name in READER_OPTIONS if getattr(args, name) is not None}
    if args.original_videos:
        options["trimmed"] = False
    try:
        accepted = reader_options(args.dataset)
    except CorpusError as error:
        parser.error(str(error))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        flags = ", ".join("--original_videos" if name == "trimmed" else f"--{name}" for name in unknown)
        parser.error(f"{flags} do(es) not apply to {args.dataset}")
    try:  # bad annotations exit with 2 before any work starts
        index = read_corpus(args.dataset, args.root, **options)
    except (CorpusError, OSError) as error:
        parser.error(str(error))
    from ..holistic import filter_native_stderr

    filter_native_stderr()
    try:
        summary = prepare(args.dataset, args.root, args.output_dir, num_workers=args.num_workers,
                          overwrite=args.overwrite, retry_failed=args.retry_failed, progress=not args.no_progress,
                          extractor_kwargs={"model_complexity": args.model_complexity}, index=index,
                          engine=args.engine, ray_address=args.ray_address, **options)
    except (CorpusError, ValueError) as error:  # no clip on disk, an output_dir prepared with other options or
        # settings, clips sharing an id
        logger.error("%s", error)
        return 2
    except (OutputError, ExtractionBusy, ConnectionError, ImportError) as error:  # full disk, permissions, a run
        # already there, no Ray: what to fix
        logger.error("%s", error)
        return 1
    for line in summary.lines():
        logger.info("%s", line)
    logger.info("Load it with datasets.load_from_disk(%r) or msmae.data.loading.load_sign_dataset(%r).",
                args.output_dir, args.output_dir)
    return 0 if sum(summary.rows.values()) else 1
