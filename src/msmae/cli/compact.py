"""`msmae compact`: per-video parts (what `msmae extract` writes) -> a few large Arrow shards with a dataset card,
optionally uploaded to the Hub as Parquet shards.

Runs `msmae.data.windows.compact` (and `push_compacted`). Exit codes: 0 done; 2 bad arguments or input.
"""

import logging

logger = logging.getLogger("msmae")

COMPACT_HELP = "rewrite extracted per-video parts (or any pose dataset) as large memory-mappable shards, optionally pushing them to the Hub"


def add_compact_arguments(parser):
    parser.add_argument("source", metavar="SOURCE",
                        help="an `msmae extract` output folder, or any pose dataset msmae.data.loading reads")
    parser.add_argument("--output_dir", required=True,
                        help="a new folder (or s3://bucket/prefix URL) for the shards and the dataset card")
    parser.add_argument("--max_shard_size", default="500MB", help="shard size (default 500MB)")
    parser.add_argument("--push_to_hub", metavar="REPO", default=None,
                        help="also upload to this Hub dataset repository (Parquet shards and the card)")
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one)")


def run_compact(args, parser) -> int:
    from ..data.windows import compact, push_compacted

    try:
        check_parts(args.source)
        dataset = compact(args.source, args.output_dir, max_shard_size=args.max_shard_size)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        logger.error("%s", error)
        return 2
    for name, split in dataset.items():
        logger.info("%s: %d clips in %d shards under %s", name, len(split), len(split.cache_files), args.output_dir)
    if args.push_to_hub:
        commit = push_compacted(args.output_dir, args.push_to_hub, token=args.hub_token, private=args.private or None)
        logger.info("Pushed to https://huggingface.co/datasets/%s (%s)", args.push_to_hub, commit)
    return 0


def check_parts(source) -> None:
    """Raise `ValueError` naming the first part of an `msmae extract` folder that is empty or not a readable Parquet
    file (a run killed by an old msmae, a copy cut short), before any work: `datasets` would stop on it with a
    message that does not name the file."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from ..data.parts import DATA_DIR

    for part in sorted(Path(source).glob(f"{DATA_DIR}/*.parquet")) if Path(source).is_dir() else []:
        if part.stat().st_size == 0:
            problem = "is empty (0 bytes)"
        else:
            try:
                pq.ParquetFile(part)
                continue
            except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
                problem = f"cannot be read ({type(error).__name__}: {error})"
        raise ValueError(f"{part} {problem}: a damaged part. Run `msmae extract` with the same inputs and "
                         f"--output_dir {source} again (it re-extracts damaged parts), or move the part away.")
