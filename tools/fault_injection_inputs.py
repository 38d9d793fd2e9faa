#!/usr/bin/env python
"""Fault injection for ordinary inputs gone wrong (issue 26): another spelling of the same folder, a bad manifest
row fixed afterwards, a `.pose` file cut short, weights damaged in place (same length); `tools/fault_injection.py
--mode inputs` runs this.

Each trial runs msmae's command line (`msmae extract`, `msmae predict`) in a fresh interpreter and checks that
nothing is lost, nothing is kept twice and no wrong answer is given silently:
- path_spelling: `msmae extract SPELLING_A`, then `msmae extract SPELLING_B` into the same folder, two spellings of
  one input folder drawn from: as given, with a trailing `/`, relative to the working folder, `DIR/.`,
  `DIR/../DIR`, a symlink to it. Both runs exit 0 and the folder holds exactly the uninterrupted run's rows (each
  clip once, every column but `source`, which records the spelling) and failure log.
- bad_row: a manifest of four clips of three videos (two of one video) where the second clip of a random video has a
  bad range (NaN, inf, -inf, negative, start after end, start equal to end). The run either refuses before any
  work naming the manifest and the line (exit 2) or extracts the other clips and logs that row's failure; never
  exit 0 with the row extracted. The row is then fixed and the same command (no --retry_failed) run again: exactly
  the rows of an uninterrupted run of the fixed manifest.
- truncated_pose: a real 170-frame `.pose` file (shared/data/pose-format-samples/mediapipe.pose) cut at a random
  length, given to `msmae predict` with a good clip: exit 2, the cut file named with an error and no prediction,
  the good clip predicted as alone.
- weights_in_place: a tiny classifier's `model.safetensors` damaged in place, same length (random bytes or NaN in
  a random tensor, or a character of its checksum): `msmae predict` exits 1 naming the checkpoint, prints no score.

    python tools/fault_injection_inputs.py --trials 24 --seed 1 --workdir /tmp/msmae-input-faults
"""

import argparse
import collections
import csv
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fault_injection_extraction as extraction  # noqa: E402  (make_inputs, command, result, compare)

KINDS = ("path_spelling", "bad_row", "truncated_pose", "weights_in_place")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSE_FILE = SHARED / "pose-format-samples" / "mediapipe.pose"
SPELLINGS = ("as_given", "trailing_slash", "relative", "dot", "dotdot", "symlink")
BAD_RANGES = {"nan": ("nan", "0.3"), "inf": ("inf", "0.3"), "minus_inf": ("-inf", "0.3"), "negative": ("-0.2", "0.3"),
              "reversed": ("0.3", "0.1"), "empty": ("0.2", "0.2")}
GOOD_RANGE, FIXED_RANGE = ("0.0", "0.2"), ("0.1", "0.4")
CLEAR_PREDICT = ("Cannot read", "Could not load a model from")


def run(argv, log: Path) -> int:
    """`msmae ARGV` in a fresh interpreter, as a user runs it, in its own session: its exit code, its stdout and
    stderr appended to `log`. Not forked from this process: a fork of a process with threads (pytest after torch
    tests) can start with a broken allocator, and MediaPipe then aborts in the child."""
    with open(log, "ab") as out:
        return subprocess.run([sys.executable, "-m", "msmae.cli", *map(str, argv)], stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True).returncode


# ---- setup -----------------------------------------------------------------------------------------------------------


def spelled(inputs: Path, spelling: str, workdir: Path) -> str:
    if spelling == "trailing_slash":
        return f"{inputs}/"
    if spelling == "relative":
        return os.path.relpath(inputs, os.getcwd())
    if spelling == "dot":
        return f"{inputs}/."
    if spelling == "dotdot":
        return f"{inputs}/../{inputs.name}"
    if spelling == "symlink":
        link = workdir / "link-to-inputs"
        if not link.is_symlink():
            link.symlink_to(inputs, target_is_directory=True)
        return str(link)
    return str(inputs)


def manifest_videos(workdir: Path, inputs: Path) -> list[Path]:
    """The three signing clips under plain names (a manifest is UTF-8 text)."""
    folder = workdir / "manifest-videos"
    if not folder.is_dir():
        folder.mkdir()
        signing = sorted(p for p in os.listdir(os.fsencode(inputs)) if p not in (b"black.mp4", b"notes.mp4"))
        for index, name in enumerate(signing):
            shutil.copyfile(os.path.join(os.fsencode(inputs), name), folder / f"clip{index}.mp4")
    return sorted(folder.glob("clip*.mp4"))


def write_manifest(path: Path, videos: list[Path], twice: int, second_range) -> int:
    """Four rows: a good range of each video and a second clip (`second_range`) of video `twice`; returns the line
    of that second clip (the header is line 1)."""
    rows = [(video.name, *GOOD_RANGE, f"sign{i}") for i, video in enumerate(videos)]
    rows.insert(twice + 1, (videos[twice].name, *second_range, f"sign{twice}b"))
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(("path", "start", "end", "label"))
        writer.writerows(rows)
    return twice + 3


def save_classifier(folder: Path) -> Path:
    """A tiny recognition checkpoint (seed 0) as training saves it: weights with their checksum, processor, code."""
    import torch

    from msmae import MSMAEConfig, MSMAEForSignClassification
    from msmae.hub_packaging import add_pipeline_to_checkpoint
    from msmae.processing_msmae import MSMAEPoseProcessor

    torch.manual_seed(0)
    labels = ["ambulancia", "doctor", "dolor", "hoy", "yo"]
    config = MSMAEConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                         decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
                         decoder_intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                         label2id={name: i for i, name in enumerate(labels)})
    MSMAEForSignClassification(config).save_pretrained(folder)
    MSMAEPoseProcessor.from_preset("recognition", streams=config.streams).save_pretrained(folder)
    add_pipeline_to_checkpoint(folder)
    return folder


def good_clip(folder: Path) -> Path:
    import numpy as np

    from msmae import sample_data

    pose = sample_data.load_clip("msl150/doctor/2")
    path = folder / "good.npz"
    np.savez(path, keypoints=pose.keypoints, keypoint_mask=pose.keypoint_mask, fps=pose.fps, width=pose.width,
             height=pose.height)
    return path


def predictions(log_text: str) -> list | None:
    """The JSON results `msmae predict --format json` printed (between a line `[` and a line `]`), or None."""
    lines = log_text.splitlines()
    try:
        first, last = lines.index("["), len(lines) - 1 - lines[::-1].index("]")
    except ValueError:
        return None
    return json.loads("\n".join(lines[first:last + 1]))


class Bench:
    """What the trials share: the inputs, uninterrupted reference results, a checkpoint and a good clip."""

    def __init__(self, workdir: Path, kinds):
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.inputs = workdir / "inputs"
        if any(kind in kinds for kind in ("path_spelling", "bad_row")):
            import mediapipe  # noqa: F401  (imported once here, not in every run)
            import pyarrow.parquet  # noqa: F401

            import msmae.cli.extract  # noqa: F401
            import msmae.data.extract  # noqa: F401

            if not self.inputs.is_dir():
                extraction.make_inputs(self.inputs)
        import msmae.cli.predict  # noqa: F401
        import msmae.pipeline_msmae  # noqa: F401

        if "path_spelling" in kinds:
            self.reference = self.extracted("reference", extraction.command(self.inputs, workdir / "reference", 1))
        if "bad_row" in kinds:
            self.videos = manifest_videos(workdir, self.inputs)
            manifest = workdir / "manifest-videos" / "fixed.csv"
            write_manifest(manifest, self.videos, 0, FIXED_RANGE)
            self.manifest_reference = self.extracted(
                "manifest-reference", ["extract", "--manifest", str(manifest), "--output_dir",
                                       str(workdir / "manifest-reference"), "--no_progress"])
        if any(kind in kinds for kind in ("truncated_pose", "weights_in_place")):
            self.checkpoint = save_classifier(workdir / "classifier")
            self.good = good_clip(workdir)
            code = run(["predict", str(self.good), "--model", str(self.checkpoint), "--format", "json", "--device",
                        "cpu"], workdir / "predict-reference.log")
            self.good_answer = predictions((workdir / "predict-reference.log").read_text())
            if code != 0 or not self.good_answer:
                raise RuntimeError(f"predicting the good clip failed: see {workdir}/predict-reference.log")

    def extracted(self, name, argv) -> dict:
        shutil.rmtree(self.workdir / name, ignore_errors=True)
        if run(argv, self.workdir / f"{name}.log") != 0:
            raise RuntimeError(f"the uninterrupted run failed: see {self.workdir}/{name}.log")
        return without_source(extraction.result(self.workdir / name))


def without_source(found: dict) -> dict:
    """A result with each row's `source` (the path as the command was given it) left out."""
    rows = {clip: {k: v for k, v in row.items() if k != "source"} for clip, row in found["rows"].items()}
    return {**found, "rows": rows}


# ---- faults ----------------------------------------------------------------------------------------------------------


def pick_fault(kind: str, rng: random.Random) -> dict:
    fault = {"kind": kind}
    if kind == "path_spelling":
        fault["spellings"] = rng.sample(SPELLINGS, 2)
        fault["workers"] = rng.choice((1, 2))
    elif kind == "bad_row":
        fault["bad"] = rng.choice(sorted(BAD_RANGES))
        fault["video"] = rng.randrange(3)
    elif kind == "truncated_pose":
        fault["keep"] = round(rng.uniform(0.0, 0.999), 4)  # fraction of the file's bytes kept
    else:
        fault["damage"] = rng.choice(("random_bytes", "nan", "checksum"))
        fault["seed"] = rng.randrange(1 << 30)
    fault["text"] = ", ".join(f"{k}={v}" for k, v in fault.items() if k != "kind")
    return fault


def damage_weights(path: Path, how: str, seed: int) -> str:
    """Damage `path` (safetensors) in place, same length; what was done."""
    rng = random.Random(seed)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    if how == "checksum":
        metadata = header["__metadata__"]
        key = next(k for k in metadata if "sha256" in k)
        at = data.index(metadata[key].encode()) + rng.randrange(len(metadata[key]))
        data[at] = ord("0") if data[at] != ord("0") else ord("1")
        path.write_bytes(bytes(data))
        return f"one character of {key}"
    name = rng.choice(sorted(k for k in header if k != "__metadata__"))
    start, end = header[name]["data_offsets"]
    start, end = start + 8 + length, end + 8 + length
    count = rng.randint(1, min(64, end - start) // 4) * 4
    at = start + rng.randrange(0, end - start - count + 1, 4)
    data[at:at + count] = (struct.pack("<f", float("nan")) * (count // 4) if how == "nan"
                           else bytes(rng.randrange(256) for _ in range(count)))
    path.write_bytes(bytes(data))
    return f"{count} bytes of {name}"


def trial(number: int, fault: dict, bench: Bench) -> dict:
    folder = bench.workdir / f"trial-{number:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    record = {"trial": number, "kind": fault["kind"], "fault": fault["text"]}
    record.update(globals()[fault["kind"]](fault, bench, folder))
    if record["outcome"] == "ok":
        shutil.rmtree(folder, ignore_errors=True)
    return record


def path_spelling(fault, bench, folder) -> dict:
    output = folder / "out"
    codes, extracted = [], []
    for index, spelling in enumerate(fault["spellings"]):
        argv = extraction.command(Path(spelled(bench.inputs, spelling, bench.workdir)), output, fault["workers"])
        argv[1] = spelled(bench.inputs, spelling, bench.workdir)  # Path() would normalise the spelling away
        log = folder / f"run{index}.log"
        codes.append(run(argv, log))
        extracted.append(extraction.extracted_count(log.read_text(errors="replace")))
    found = without_source(extraction.result(output))
    record = {"exit": codes, "extracted": extracted, "parts": found["parts"]}
    difference = extraction.compare(found, bench.reference)
    if any(codes):
        return {**record, "outcome": "RUN_FAILED"}
    if difference or sum(extracted) != len(bench.reference["rows"]):
        return {**record, "outcome": "DUPLICATED_OR_LOST", "difference": difference}
    return {**record, "outcome": "ok"}


def bad_row(fault, bench, folder) -> dict:
    manifest = bench.videos[0].parent / f"{folder.name}.csv"
    line = write_manifest(manifest, bench.videos, fault["video"], BAD_RANGES[fault["bad"]])
    output = folder / "out"
    argv = ["extract", "--manifest", str(manifest), "--output_dir", str(output), "--no_progress"]
    first = run(argv, folder / "bad.log")
    text = (folder / "bad.log").read_text(errors="replace")
    record = {"bad_exit": first}
    try:
        if "Traceback" in text:
            return {**record, "outcome": "TRACEBACK", "error": text.strip().splitlines()[-3:]}
        found = extraction.result(output) if output.is_dir() else {"rows": {}, "failures": {}, "parts": 0}
        refused = first == 2 and manifest.name in text and f"line {line}" in text and not found["rows"]
        failed_alone = first == 0 and len(found["failures"]) == 1 and len(found["rows"]) == 3
        if not (refused or failed_alone):
            return {**record, "outcome": "SILENT_OR_UNCLEAR", "rows": len(found["rows"]),
                    "error": text.strip().splitlines()[-2:]}
        record["bad_row"] = "refused up front" if refused else "failed alone"
        record["said"] = [line_[:200] for line_ in text.splitlines() if manifest.name in line_][:1]
        write_manifest(manifest, bench.videos, fault["video"], FIXED_RANGE)
        second = run(argv, folder / "fixed.log")
        record["fixed_exit"] = second
        if second != 0:
            return {**record, "outcome": "RERUN_FAILED"}
        reference = fixed_reference(bench, fault["video"], folder)
        difference = extraction.compare(without_source(extraction.result(output)), reference)
        return {**record, "outcome": "MISMATCH", "difference": difference} if difference else {**record, "outcome": "ok"}
    finally:
        manifest.unlink(missing_ok=True)


def fixed_reference(bench, video: int, folder: Path) -> dict:
    """The uninterrupted run of the fixed manifest whose second clip is of `video` (cached per video)."""
    if video == 0:
        return bench.manifest_reference
    cache = getattr(bench, "fixed_references", {})
    bench.fixed_references = cache
    if video not in cache:
        manifest = bench.videos[0].parent / f"fixed-{video}.csv"
        write_manifest(manifest, bench.videos, video, FIXED_RANGE)
        cache[video] = bench.extracted(f"manifest-reference-{video}", [
            "extract", "--manifest", str(manifest), "--output_dir", str(bench.workdir / f"manifest-reference-{video}"),
            "--no_progress"])
    return cache[video]


def truncated_pose(fault, bench, folder) -> dict:
    data = POSE_FILE.read_bytes()
    cut = folder / "cut.pose"
    cut.write_bytes(data[: int(len(data) * fault["keep"])])
    log = folder / "predict.log"
    code = run(["predict", str(bench.good), str(cut), "--model", str(bench.checkpoint), "--format", "json",
                "--device", "cpu"], log)
    return check_predict(code, log, bench, expected_exit=2, bad_input=str(cut))


def weights_in_place(fault, bench, folder) -> dict:
    checkpoint = folder / "classifier"
    shutil.copytree(bench.checkpoint, checkpoint)
    weights = checkpoint / "model.safetensors"
    size = weights.stat().st_size
    what = damage_weights(weights, fault["damage"], fault["seed"])
    assert weights.stat().st_size == size
    log = folder / "predict.log"
    code = run(["predict", str(bench.good), "--model", str(checkpoint), "--format", "json", "--device", "cpu"], log)
    return {"damaged": what, **check_predict(code, log, bench, expected_exit=1, bad_input=None)}


def check_predict(code, log, bench, expected_exit, bad_input) -> dict:
    """Exit `expected_exit` with a clear message, no score for the bad input (or none at all for a bad model), the
    good clip answered as alone."""
    text = log.read_text(errors="replace")
    record = {"exit": code, "said": [line.split(": ", 1)[-1][:240] for line in text.splitlines()
                                     if any(m in line for m in CLEAR_PREDICT)][:1]}
    if "Traceback" in text:
        return {**record, "outcome": "TRACEBACK", "error": text.strip().splitlines()[-3:]}
    results = predictions(text) or []
    if code == 0 or any("NaN" in json.dumps(r) for r in results):
        return {**record, "outcome": "SILENT_WRONG_ANSWER"}
    if code != expected_exit or not record["said"]:
        return {**record, "outcome": "UNCLEAR_ERROR", "error": text.strip().splitlines()[-2:]}
    if bad_input is None:
        return {**record, "outcome": "ok" if not results else "SILENT_WRONG_ANSWER"}
    by_input = {r["input"]: r for r in results}
    good = by_input.get(str(bench.good), {}).get("predictions")
    if "predictions" in by_input.get(bad_input, {}) or bad_input not in record["said"][0]:
        return {**record, "outcome": "SILENT_WRONG_ANSWER"}
    if good != bench.good_answer[0]["predictions"]:
        return {**record, "outcome": "GOOD_INPUT_LOST"}
    return {**record, "outcome": "ok"}


def run_trials(trials: int, seed: int, workdir: Path, kinds=KINDS) -> dict:
    started = time.time()
    bench = Bench(workdir, kinds)
    rng = random.Random(seed)
    records = []
    for number in range(trials):
        kind = kinds[number % len(kinds)] if number < len(kinds) else rng.choice(kinds)
        records.append(trial(number, pick_fault(kind, rng), bench))
        print(json.dumps(records[-1]), flush=True)
    summary = collections.Counter((r["kind"], r["outcome"]) for r in records)
    return {"trials": len(records), "seconds": round(time.time() - started), "records": records,
            "summary": {f"{k} -> {o}": n for (k, o), n in sorted(summary.items())},
            "bad": [r for r in records if r["outcome"] != "ok"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/msmae-input-faults")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--report", default=None, help="write the records and the summary to this JSON file")
    args = parser.parse_args(argv)
    if not POSE_FILE.is_file():
        parser.error(f"the sample pose file {POSE_FILE} is missing")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    report = run_trials(args.trials, args.seed, Path(args.workdir), tuple(args.kinds))
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(report['bad'])} trial(s) lost or duplicated clips, or gave a wrong answer silently")
    return 1 if report["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
