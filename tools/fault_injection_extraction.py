#!/usr/bin/env python
"""Fault injection for `msmae extract`: kill -9 at random points, a full disk, a file system turned read-only,
damaged parts and failure logs, a second run at the same time, killing only the main process; then a plain
re-run of the same command (`tools/fault_injection.py --mode extraction` runs this).

The inputs are short cuts of the real sample video (../shared/data/pose-format-samples/test_video.mp4) under odd
names (not valid UTF-8, spaces, 200 characters), a video without a person and a file that is not a video. Each
trial's output folder is its own small tmpfs mount (so that a full disk is a real ENOSPC and a permission flip is
a real read-only file system: `mount -o remount,ro`); it runs `python -m msmae.cli extract` with one fault, then
restores the machine (remount read-write, a larger size) and runs the same command again, and checks:
- the re-run exits 0 and leaves exactly the rows (every column, keypoints included) of an uninterrupted run, and
  the same failure log entries (clip -> kind): no video lost, none twice;
- a faulted run that stopped on its own (exit 1) said what to fix ("Extraction stopped: could not write",
  "Cannot extract into", "Another msmae extract") instead of a traceback;
- after killing only the main process, no fork server or worker is left 15 s later;
- of two concurrent runs, the clips they extracted add up to the number of videos (never both do one).

Faults (`KINDS`): kill_random (SIGKILL of the whole process group at a random moment), kill_main (SIGKILL of the
main process only), disk_full (a tmpfs of random size, 12-96 KiB; parts are 20 KiB), file_size_limit (`ulimit
-f`, 1-28 KiB), read_only (the tmpfs remounted read-only at a random moment), permission (data/, the output folder or the
mount made read-only with chmod at a random moment; the run is root without the capabilities that bypass file
permissions, so they apply while MediaPipe's model files under /root stay readable), corrupt_part (a finished folder, one part overwritten
with garbage at a random offset, cut at a random length, emptied or replaced by another clip's), torn_log (the
failure log cut inside a line), concurrent (a second run started 0-3 s after the first). Runs use 1 or 2 workers
at random. Needs root (mount).

    python tools/fault_injection_extraction.py --trials 50 --seed 0 --workdir /tmp/msmae-extract-faults
"""

import argparse
import collections
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

KINDS = ("kill_random", "kill_main", "disk_full", "file_size_limit", "read_only", "permission", "corrupt_part",
         "torn_log", "concurrent")
CLEAR_MESSAGES = ("Extraction stopped: could not write", "Cannot extract into", "Another msmae extract")
SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pose-format-samples" / "test_video.mp4"
FRAMES = 6


def make_inputs(folder: Path) -> None:
    """Three signing clips under odd names, one without a person, one that is not a video."""
    import av
    import numpy as np

    from msmae.serving.visualization import write_video

    with av.open(str(SAMPLE)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24")[::2, ::2] for f in container.decode(video=0)])
    folder.mkdir(parents=True)
    names = [b"caf\xe9 latin-1.mp4", b"with spaces  and (brackets).mp4", b"long-" + b"x" * 195 + b".mp4"]
    clips = [frames[i * 7: i * 7 + FRAMES] for i in range(3)] + [np.zeros((4, 64, 64, 3), np.uint8)]
    for name, clip in zip(names + [b"black.mp4"], clips):
        temporary = write_video(clip, folder / "temporary.mp4", fps=15)
        os.rename(temporary, os.path.join(os.fsencode(folder), name))
    (folder / "notes.mp4").write_text("not a video\n")


def command(inputs: Path, output: Path, workers: int) -> list[str]:
    """`msmae extract`'s arguments."""
    return ["extract", str(inputs), "--output_dir", str(output), "--no_progress", "--num_workers", str(workers)]


class Run:
    """`msmae extract ARGV` in a process forked from this one (msmae and MediaPipe already imported: a fresh
    interpreter takes 10 s to start on a busy machine), in its own session, its output to `log`."""

    def __init__(self, argv, log: Path, file_size_limit=None, obey_permissions=False):
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                os.setsid()
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                if obey_permissions:
                    drop_permission_capabilities()
                if file_size_limit:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
                from msmae.cli import main

                code = main(argv)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def poll(self):
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def start(argv, log: Path, file_size_limit=None, obey_permissions=False) -> Run:
    return Run(argv, log, file_size_limit, obey_permissions)


def drop_permission_capabilities() -> None:
    """Make this root process (and what it starts) obey file permissions: drop CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH and CAP_FOWNER from the bounding set (so an exec does not give them back) and from the
    effective and permitted sets."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    caps = (1, 2, 3)
    for cap in caps:
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP failed")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    mask = ~sum(1 << cap for cap in caps) & 0xFFFFFFFF
    data[0] &= mask
    data[1] &= mask
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def session(sid: int) -> list[int]:
    """Live processes of session `sid` (the run, its fork server and workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry))
    return found


def kill_session(sid: int) -> None:
    for pid in session(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def mount(path: Path, size_kib: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)], check=True)


def remount(path: Path, options: str) -> None:
    """Remount; a read-only remount is refused while a file is open for writing (a part being written): retry."""
    for _ in range(500):
        if subprocess.run(["mount", "-o", f"remount,{options}", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.01)
    raise RuntimeError(f"could not remount {path} {options}")


def result(output: Path) -> dict:
    """{"rows": {clip_id: row}, "failures": {clip_id: kind}, "parts": number of part files}."""
    import pyarrow.parquet as pq

    from msmae.data.parts import read_failures

    rows, parts = {}, sorted((output / "data").glob("*.parquet"))
    for part in parts:
        row = pq.read_table(part, use_threads=False).to_pylist()[0]
        rows[row["clip_id"]] = row
    failures = {clip: record["kind"] for clip, record in read_failures(output).items()}
    return {"rows": rows, "failures": failures, "parts": len(parts)}


def compare(found: dict, reference: dict) -> str | None:
    """Why a result differs from the reference, or None: lost, duplicated or differing rows."""
    lost = sorted(set(reference["rows"]) - set(found["rows"]))
    extra = sorted(set(found["rows"]) - set(reference["rows"]))
    if lost or extra or found["parts"] != len(found["rows"]):
        return f"lost {lost}, unexpected {extra}, {found['parts']} parts for {len(found['rows'])} clips"
    differ = [clip for clip in reference["rows"] if found["rows"][clip] != reference["rows"][clip]]
    if differ:
        return f"rows differ: {differ}"
    if found["failures"] != reference["failures"]:
        return f"failure log {found['failures']} vs {reference['failures']}"
    both = set(found["failures"]) & set(found["rows"])
    return f"both a row and a failure: {sorted(both)}" if both else None


def extracted_count(log_text: str) -> int:
    """Clips a run reported extracting ("N extracted" in its summary line); 0 when it stopped before."""
    for line in log_text.splitlines():
        if " extracted (" in line:
            return int(line.split(" extracted (")[0].rsplit(" ", 1)[-1])
    return 0


def pick_fault(kind: str, rng: random.Random, seconds: float) -> dict:
    fault = {"kind": kind, "workers": rng.choice((1, 2))}
    if kind in ("kill_random", "kill_main", "read_only", "permission"):
        fault["after"] = round(rng.uniform(0.2, 1.1 * seconds), 2)
    if kind == "disk_full":
        fault["size_kib"] = rng.randint(12, 96)
    if kind == "file_size_limit":
        fault["limit"] = rng.randint(1, 28) * 1024
    if kind == "corrupt_part":
        fault["damage"] = rng.choice(("garbage", "cut", "empty", "other_clip"))
        fault["seed"] = rng.randrange(1 << 30)
    if kind == "concurrent":
        fault["delay"] = round(rng.uniform(0.0, 3.0), 2)
    fault["text"] = ", ".join(f"{k}={v}" for k, v in fault.items() if k != "kind")
    return fault


def damage(output: Path, fault: dict) -> None:
    rng = random.Random(fault["seed"])
    if fault["kind"] == "torn_log":
        log = output / "failures.jsonl"
        text = log.read_bytes()
        log.write_bytes(text[: rng.randrange(1, len(text) - 1)])
        return
    parts = sorted((output / "data").glob("*.parquet"))
    part = rng.choice(parts)
    data = bytearray(part.read_bytes())
    if fault["damage"] == "garbage":
        at = rng.randrange(len(data) - 64)
        data[at: at + 64] = bytes(rng.randrange(256) for _ in range(64))
    elif fault["damage"] == "cut":
        data = data[: rng.randrange(len(data))]
    elif fault["damage"] == "empty":
        data = bytearray()
    else:
        data = bytearray(next(p for p in parts if p != part).read_bytes())
    part.write_bytes(bytes(data))


def trial(number: int, fault: dict, workdir: Path, inputs: Path, reference: dict, seconds: float) -> dict:
    kind = fault["kind"]
    folder = workdir / f"trial-{number:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    mnt = folder / "mnt"
    mount(mnt, fault.get("size_kib", 4096))
    output = mnt / "out"
    argv = command(inputs, output, fault["workers"])
    record = {"trial": number, "kind": kind, "fault": fault["text"]}
    try:
        log = folder / "faulted.txt"
        if kind in ("corrupt_part", "torn_log"):
            if start(argv, folder / "setup.log").wait() != 0:
                raise RuntimeError(f"trial {number}: the run before the damage failed; see {folder}/setup.log")
            if kind == "torn_log":
                fault["seed"] = number
            damage(output, fault)
            codes = [0]
        elif kind == "concurrent":
            first = start(argv, log)
            time.sleep(fault["delay"])
            second = start(argv, folder / "second.txt")
            codes = [first.wait(), second.wait()]
            texts = [log.read_text(errors="replace"), (folder / "second.txt").read_text(errors="replace")]
            record["extracted"] = [extracted_count(t) for t in texts]
            if sum(record["extracted"]) > len(reference["rows"]):
                record["outcome"] = "DONE_TWICE"
                return record
        else:
            process = start(argv, log, fault.get("limit"), obey_permissions=kind == "permission")
            started, acted = time.time(), False
            while process.poll() is None:
                if "after" in fault and not acted and time.time() - started >= fault["after"]:
                    acted = True
                    if kind == "kill_random":
                        kill_session(process.pid)
                    elif kind == "kill_main":
                        os.kill(process.pid, signal.SIGKILL)
                    elif kind == "permission":
                        target = next(p for p in (output / "data", output, mnt) if p.exists())
                        fault["flipped"] = str(target.relative_to(mnt))
                        os.chmod(target, 0o555)
                    else:
                        remount(mnt, "ro")
                time.sleep(0.02)
            codes = [process.returncode]
            if kind == "kill_main":
                deadline = time.time() + 15
                while session(process.pid) and time.time() < deadline:
                    time.sleep(0.2)
                left = session(process.pid)
                kill_session(process.pid)
                if left:
                    record["outcome"] = "WORKERS_LEFT"
                    return record
        record["faulted_exit"] = codes
        texts = "".join(p.read_text(errors="replace") for p in folder.glob("*.txt"))
        if any(code > 0 for code in codes) and not any(message in texts for message in CLEAR_MESSAGES):
            record["outcome"] = "UNCLEAR_ERROR"
            record["error"] = texts.strip().splitlines()[-3:]
            return record
        record["said"] = [line.split(": ", 1)[-1][:200] for line in texts.splitlines()
                          if any(message in line for message in CLEAR_MESSAGES)][:2]
        if "Traceback" in texts:
            record["outcome"] = "TRACEBACK"
            record["error"] = texts.strip().splitlines()[-3:]
            return record
        remount(mnt, "rw,size=4096k")  # the user frees space / fixes the file system and permissions
        for path, mode in ((mnt, 0o1777), (output, 0o755), (output / "data", 0o755)):
            if path.exists():
                os.chmod(path, mode)
        if "flipped" in fault:
            record["fault"] += f", chmod 555 {fault['flipped']}"
        rerun = start(argv, folder / "rerun.log").wait()
        record["rerun_exit"] = rerun
        if rerun != 0:
            record["outcome"] = "RERUN_FAILED"
            record["error"] = (folder / "rerun.log").read_text(errors="replace").strip().splitlines()[-3:]
            return record
        difference = compare(result(output), reference)
        if difference:
            record.update(outcome="MISMATCH", difference=difference)
        else:
            record["outcome"] = "failed_clearly_then_equal" if any(code > 0 for code in codes) else "equal"
        return record
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        if record.get("outcome") in ("equal", "failed_clearly_then_equal"):
            shutil.rmtree(folder, ignore_errors=True)


def run_trials(trials: int, seed: int, workdir: Path, kinds=KINDS) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    inputs = workdir / "inputs"
    if not inputs.is_dir():
        make_inputs(inputs)
    reference_output = workdir / "reference"
    shutil.rmtree(reference_output, ignore_errors=True)
    import mediapipe  # noqa: F401 (imported once here, not in every run)
    import pyarrow.parquet  # noqa: F401

    import msmae.cli.extract  # noqa: F401
    import msmae.data.extract  # noqa: F401

    started = time.time()
    if start(command(inputs, reference_output, 1), workdir / "reference.log").wait() != 0:
        raise RuntimeError(f"the uninterrupted reference run failed; see {workdir}/reference.log")
    seconds = time.time() - started
    reference = result(reference_output)
    if len(reference["rows"]) != 3 or len(reference["failures"]) != 2:
        raise RuntimeError(f"the reference run gave {sorted(reference['rows'])}, failures {reference['failures']}")
    rng = random.Random(seed)
    records = []
    for number in range(trials):
        kind = kinds[number % len(kinds)] if number < len(kinds) else rng.choice(kinds)
        records.append(trial(number, pick_fault(kind, rng, seconds), workdir, inputs, reference, seconds))
        print(json.dumps(records[-1]), flush=True)
    summary = collections.Counter((r["kind"], r["outcome"]) for r in records)
    return {"trials": len(records), "reference_seconds": round(seconds, 1), "records": records,
            "summary": {f"{k} -> {o}": n for (k, o), n in sorted(summary.items())},
            "bad": [r for r in records if r["outcome"] not in ("equal", "failed_clearly_then_equal")]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/msmae-extract-faults")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--report", default=None, help="write the records and the summary to this JSON file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: each trial's output folder is a tmpfs mount")
    if not SAMPLE.is_file():
        parser.error(f"the sample video {SAMPLE} is missing")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report = run_trials(args.trials, args.seed, Path(args.workdir), tuple(args.kinds))
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=2))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if not report["bad"] else 1


if __name__ == "__main__":
    sys.exit(main())
