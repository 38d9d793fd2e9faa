"""Data-loading benchmark: CPU cost of a pretraining clip from 1-minute and 30-minute recordings, before and after
window-level reads, and the loader's peak memory at 1x and 100x corpus size.

Synthetic recordings at 25 fps stand in for a YouTube-ASL-like corpus: smooth keypoint tracks, hands detected in
runs (about 65% of frames each), a face on most frames, a few frames with nobody detected. They are written as one
Arrow file per length and memory-mapped, as `load_sign_dataset` does with a compacted corpus.

Paths compared, each through `ClipSampler` (pretraining preset: 600-frame window -> 300 frames, masking noise from
the model config) and `PoseCollator` in batches of 8:
- `before`: the previous code path, re-implemented here: the whole row decoded by `datasets`' numpy formatter
  (`dataset[i]`), then the previous `process_clip` (finite check and normalisation statistics over every frame).
- `after`: `PoseClipDataset` as it is (`msmae.data.windows.PoseRows`: only the window's frames are read).

The cost is CPU time of the main process (one torch thread, no workers), interleaved round by round; the memory
part runs each (path, corpus size) in a fresh subprocess and reads its peak anonymous memory and RSS from /proc.
The 100x corpus is the 1x corpus's rows referenced 100 times (`concatenate_datasets`): 100x the rows and Arrow
chunks to index, the same bytes on disk.

    python benchmarks/bench_data.py                 # both parts (about 10 minutes on 2 busy cores)
    python benchmarks/bench_data.py --part cost --rounds 3
    python benchmarks/bench_data.py --quick         # seconds; a smoke test, not a figure to quote
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

FPS = 25
KINDS = {"1min": 60 * FPS, "30min": 30 * 60 * FPS}


# ---------------------------------------------------------------------------------------------------------------
# Synthetic recordings


def _runs(rng, frames, present, mean_run):
    """Boolean detection track in runs: on about `present` of the frames, runs of about `mean_run` frames."""
    switch_on, switch_off = 1 / (mean_run * (1 - present) / present), 1 / mean_run
    state, out = rng.random() < present, np.empty(frames, dtype=bool)
    flips = rng.random(frames)
    for t in range(frames):
        out[t] = state
        state = (flips[t] >= switch_off) if state else (flips[t] < switch_on)
    return out


def synthetic_recording(frames, seed):
    """`SignPose.to_example()` of a plausible MediaPipe track of `frames` frames."""
    from msmae.keypoint_layout import NUM_STORED_KEYPOINTS, stream_slices
    from msmae.pose_io import SignPose

    rng = np.random.default_rng(seed)
    slices = stream_slices()
    rest = rng.uniform(0.3, 0.7, size=(NUM_STORED_KEYPOINTS, 2))
    drift = np.cumsum(rng.normal(0, 0.002, size=(frames, 1, 2)), axis=0)
    jitter = rng.normal(0, 0.004, size=(frames, NUM_STORED_KEYPOINTS, 2))
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    keypoints[..., :2] = rest + drift + jitter
    keypoints[..., 2] = rng.normal(0, 0.05, size=(frames, NUM_STORED_KEYPOINTS))
    keypoints[..., 3] = rng.uniform(0.5, 1.0, size=(frames, NUM_STORED_KEYPOINTS))
    person = _runs(rng, frames, 0.98, 200)
    mask = np.zeros((frames, NUM_STORED_KEYPOINTS), dtype=bool)
    mask[:, slices["body"]] = (person & (rng.random(frames) < 0.99))[:, None]
    mask[:, slices["left_hand"]] = (person & _runs(rng, frames, 0.65, 40))[:, None]
    mask[:, slices["right_hand"]] = (person & _runs(rng, frames, 0.65, 40))[:, None]
    mask[:, slices["face"]] = (person & (rng.random(frames) < 0.95))[:, None]
    keypoints[~mask] = 0
    return SignPose(keypoints, mask, fps=FPS, width=1280, height=720, source=f"synthetic-{frames}-{seed}.mp4").to_example()


def _row_table(example, schema):
    """A one-row Arrow table built from the arrays' buffers (no Python lists)."""
    import pyarrow as pa

    columns = []
    for field in schema:
        value = example[field.name]
        if isinstance(field.type, pa.ExtensionType):
            array = np.ascontiguousarray(value)
            storage = pa.array(array.ravel())
            for size in reversed(array.shape[1:]):
                storage = pa.ListArray.from_arrays(pa.array(np.arange(0, len(storage) + 1, size, dtype=np.int32)), storage)
            storage = pa.ListArray.from_arrays(pa.array([0, len(storage)], pa.int32()), storage)
            columns.append(pa.ExtensionArray.from_storage(field.type, storage.cast(field.type.storage_type)))
        else:
            columns.append(pa.array([value], type=field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def build_corpus(folder: Path, rows: dict) -> dict:
    """One Arrow file per kind of recording ({kind: number of rows}); returns {kind: path}."""
    import pyarrow as pa

    from msmae.data.schema import row_features

    schema = row_features().arrow_schema
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, count in rows.items():
        path = folder / f"{kind}-{count}.arrow"
        if not path.exists():
            start = time.perf_counter()
            partial = path.with_suffix(".partial")
            with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
                for seed in range(count):
                    writer.write_table(_row_table(synthetic_recording(KINDS[kind], seed), schema))
            partial.rename(path)
            print(f"built {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f}s", flush=True)
        paths[kind] = path
    return paths


# ---------------------------------------------------------------------------------------------------------------
# The two paths


def make_clips(dataset, variant, window_size=600, num_frames=300, seed=0):
    """`(clip(index) -> item, collator)` of `variant` over `dataset`."""
    from msmae import MSMAEConfig
    from msmae.processing_msmae import MSMAEPoseProcessor
    from msmae.training.collator import ClipSampler, PoseClipDataset, PoseCollator

    config = MSMAEConfig()
    processor = MSMAEPoseProcessor.from_preset("pretraining", streams=config.streams, window_size=window_size,
                                               num_frames=num_frames)
    collator = PoseCollator(processor, masking=config)
    if variant == "after":
        clips = PoseClipDataset(dataset, ClipSampler(processor, training=True, masking=config), seed=seed)
        return clips.__getitem__, collator
    decoded = dataset.select_columns(["keypoints", "keypoint_mask", "fps", "width", "height", "source"]).with_format("numpy")

    def before(index):
        rng = np.random.default_rng([seed, 0, int(index)])
        values, mask = previous_process_clip(processor, decoded[int(index)], rng)
        noise = rng.random((config.num_streams, math.ceil(len(values) / config.cubelet_size)), dtype=np.float32)
        return {"pose_values": values, "keypoint_mask": mask, "noise": noise}

    return before, collator


def previous_process_clip(processor, row, rng):
    """The previous `ClipSampler` + `MSMAEPoseProcessor.process_clip` (commit df4b751), no augmentation: a whole
    decoded row, a finite check and normalisation statistics over all its frames, then the frames picked."""
    from msmae.keypoint_layout import ALL_STREAMS
    from msmae.pose_io import SignPose
    from msmae.processing_msmae import _apply_normalization, _normalization

    pose = SignPose.from_example(row)
    if not np.isfinite(pose.keypoints).all():
        raise ValueError("NaN")
    multiplier, offset = _normalization(pose.keypoints, pose.keypoint_mask, pose.width, pose.height,
                                        processor.normalization, ALL_STREAMS)
    keep = np.arange(processor.num_keypoints)  # body + hands (the default streams): the first 48 stored keypoints
    index = processor._frame_indices(pose.num_frames, True, rng)  # the same window draw as before
    mask = pose.keypoint_mask[index][:, keep]
    return _apply_normalization(pose.keypoints[index][:, keep, :2], mask, multiplier, offset), mask


def cost_per_clip(dataset, variant, indices, batch_size) -> float:
    """CPU seconds per clip of processing `indices` and collating them in batches."""
    clip, collator = make_clips(dataset, variant)
    clip(indices[0])  # warm: opens the memory map, first-call imports
    start = time.process_time()
    for i in range(0, len(indices), batch_size):
        collator([clip(index) for index in indices[i : i + batch_size]])
    return (time.process_time() - start) / len(indices)


def part_cost(args, paths) -> list[dict]:
    import torch
    from datasets import Dataset

    torch.set_num_threads(1)
    datasets_ = {kind: Dataset.from_file(str(path)) for kind, path in paths.items()}
    rng = np.random.default_rng(0)
    samples = {(variant, kind): [] for variant in ("before", "after") for kind in datasets_}
    load = common.LoadSampler()
    for round_ in range(args.rounds):
        for (variant, kind), values in samples.items():
            indices = rng.integers(len(datasets_[kind]), size=args.clips)
            with load.measure() as timing:
                values.append(cost_per_clip(datasets_[kind], variant, indices, args.batch_size))
            print(f"round {round_} {variant:6s} {kind:5s}: {values[-1] * 1e3:.2f} ms CPU/clip "
                  f"(background {timing['background_cores']:.2f} cores)", flush=True)
    rows = []
    for (variant, kind), values in samples.items():
        rows.append({"variant": variant, "recording": kind, "frames": KINDS[kind], "clips_per_round": args.clips,
                     "cpu_ms_per_clip": statistics.median(values) * 1e3, "all_cpu_ms": [round(v * 1e3, 3) for v in values]})
    for variant in ("before", "after"):
        one, thirty = (next(r for r in rows if r["variant"] == variant and r["recording"] == k) for k in KINDS)
        thirty["x_1min"] = thirty["cpu_ms_per_clip"] / one["cpu_ms_per_clip"]
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Peak memory (fresh subprocess per measurement)


def child_memory(args) -> dict:
    import torch
    from bench_memory import MemorySampler, max_rss_bytes, read_status
    from datasets import Dataset, concatenate_datasets

    torch.set_num_threads(1)
    sampler = MemorySampler()
    sampler.start()
    corpus = concatenate_datasets([Dataset.from_file(p) for p in args.files])
    dataset = concatenate_datasets([corpus] * args.scale) if args.scale > 1 else corpus
    after_open = read_status()
    clip, collator = make_clips(dataset, args.variant)
    collator([clip(0)])  # imports and first-call set-up, so that what follows is the cost of drawing clips
    ready = read_status()
    indices = np.random.default_rng(0).integers(len(dataset), size=args.clips)
    start = time.process_time()
    for i in range(0, len(indices), args.batch_size):
        collator([clip(index) for index in indices[i : i + args.batch_size]])
    cpu = time.process_time() - start
    peak = sampler.stop()
    return {"rows": len(dataset), "rss_after_open": after_open.get("VmRSS"), "anon_ready": ready.get("RssAnon"),
            "peak": peak, **max_rss_bytes(), "cpu_ms_per_clip": cpu / len(indices) * 1e3}


def part_memory(args, paths) -> list[dict]:
    rows = []
    for variant in ("before", "after"):
        for scale in (1, args.scale):
            command = [sys.executable, __file__, "--_child", "--variant", variant, "--scale", str(scale),
                       "--clips", str(args.memory_clips), "--batch_size", str(args.batch_size),
                       "--files", *map(str, paths.values())]
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"variant": variant, "corpus": f"{scale}x", **measured,
                         # Sampled from /proc: ru_maxrss of a child carries its parent's high-water mark over exec.
                         "peak_anon_MiB": measured["peak"]["anon"] / 2**20, "peak_rss_MiB": measured["peak"]["rss"] / 2**20,
                         # What drawing clips added to the process's own memory (imports and set-up excluded).
                         "anon_growth_MiB": (measured["peak"]["anon"] - measured["anon_ready"]) / 2**20,
                         "peak_file_MiB": measured["peak"]["file"] / 2**20})
            print(f"memory {variant} {scale}x: peak anon {rows[-1]['peak_anon_MiB']:.0f} MiB "
                  f"(+{rows[-1]['anon_growth_MiB']:.0f} drawing clips), "
                  f"peak RSS {rows[-1]['peak_rss_MiB']:.0f} MiB", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="all", choices=["all", "cost", "memory"])
    parser.add_argument("--data_dir", type=Path, default=Path("/tmp/msmae-bench-data/windows"))
    parser.add_argument("--rows", type=int, default=4, help="recordings of each length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=32, help="clips per round and path")
    parser.add_argument("--memory_clips", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--scale", type=int, default=100, help="the large corpus, in copies of the rows")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=None)
    parser.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="after", help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(child_memory(args)))
        return None
    if args.quick:
        KINDS["30min"] = 3 * 60 * FPS  # 3 minutes: seconds to build
        args.rows, args.rounds, args.clips, args.memory_clips, args.scale = 2, 1, 8, 16, 3
        args.data_dir = args.data_dir / "quick"
    paths = build_corpus(args.data_dir, {kind: args.rows for kind in KINDS})
    result = {"benchmark": "data", "environment": common.environment("cpu"),
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    if args.part in ("all", "cost"):
        result["cost"] = part_cost(args, paths)
        common.print_table(result["cost"], ["variant", "recording", "frames", "cpu_ms_per_clip", "x_1min"],
                           title="CPU per pretraining clip (window 600 -> 300 frames, batch collated)")
    if args.part in ("all", "memory"):
        result["memory"] = part_memory(args, paths)
        common.print_table(result["memory"], ["variant", "corpus", "rows", "peak_anon_MiB", "anon_growth_MiB", "peak_rss_MiB", "peak_file_MiB",
                                              "cpu_ms_per_clip"], title=f"Peak memory drawing {args.memory_clips} clips")
    common.write_json(args.output or common.default_output(f"data{'_quick' if args.quick else ''}"), result)
    return result


if __name__ == "__main__":
    main()
