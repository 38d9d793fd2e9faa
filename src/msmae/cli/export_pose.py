"""`msmae export-pose`: write the clips of a pose dataset as pose-format `.pose` files
(`msmae.data.pose_export`), one per row, named after its clip id."""

import logging

logger = logging.getLogger("msmae")

EXPORT_POSE_HELP = "write the clips of a pose dataset as pose-format .pose files"


def add_export_pose_arguments(parser):
    parser.add_argument("dataset", metavar="DATASET_OR_ROWS",
                        help="an `msmae extract` folder, a save_to_disk folder, Parquet/Arrow rows (a file or a "
                             "folder of them), or a Hub dataset id: any source msmae.data.loading.load_sign_dataset "
                             "reads")
    parser.add_argument("output_dir", metavar="OUT_DIR", help="folder for the .pose files (created)")
    parser.add_argument("--split", default=None, help="only this split of a dataset with splits (default: all, "
                                                        "each in its own subfolder)")


def run_export_pose(args, parser) -> int:
    from pathlib import Path

    from ..data.loading import load_sign_dataset
    from ..data.pose_export import export_rows

    try:
        dataset = load_sign_dataset(args.dataset, split=args.split, streaming=True)
    except (OSError, ValueError) as error:
        parser.error(f"{args.dataset}: {error}")
    # A dataset with splits: one subfolder per split (clip ids may repeat across splits).
    splits = dataset.items() if hasattr(dataset, "keys") and not hasattr(dataset, "features") else [(None, dataset)]
    try:
        written = 0
        for name, rows in splits:
            folder = Path(args.output_dir) / name if name else Path(args.output_dir)
            written += len(export_rows(rows, folder))
    except ImportError as error:
        logger.error("%s", error)
        return 1
    except (KeyError, ValueError) as error:  # rows not in msmae's schema
        logger.error("%s: its rows are not pose clips in msmae's schema (%s); give an `msmae extract` folder or "
                     "rows with keypoints and keypoint_mask columns.", args.dataset, error)
        return 2
    except OSError as error:
        logger.error("Cannot write to %s: %s", args.output_dir, error.strerror or error)
        return 1
    if not written:
        logger.error("%s holds no rows; nothing was written.", args.dataset)
        return 1
    logger.info("Wrote %d .pose files to %s.", written, args.output_dir)
    return 0
