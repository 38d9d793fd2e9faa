#!/usr/bin/env python
"""Fault injection for training: kill -9, a full disk and permission flips at random points of a tiny pretraining
run (`msmae.recipes.pretraining`, what examples/run_pretraining.py runs), then a plain re-run of the same command.

Each trial starts a run in a fresh output folder (which also holds a file of the user's, `notes.txt`) with one fault,
restores the machine, runs the same command again without the fault, and checks:
- the re-run exits 0, and the model it leaves has exactly the weights of an uninterrupted run, and the losses logged
  per step are exactly the uninterrupted run's (data order, clip windows and masking are seeded and resumable);
- a faulted run that stopped on its own (disk full, permission) said what to fix ("Training stopped: could not
  write ...") instead of a bare traceback;
- `notes.txt` is untouched, and a re-run of a finished run trains nothing and leaves the model as it was.

Faults (`KINDS`):
- kill_random: SIGKILL at a random moment of the run (start-up, steps, checkpoint writes, the final save);
- kill_in_checkpoint: SIGKILL inside a checkpoint write at a random checkpoint and point: after the weights, with
  optimizer.pt half written, after the optimizer/scheduler, after the RNG states, with trainer_state.json half
  written, half way through deleting an old checkpoint (rotation), or in the final save (model half written, or
  before its trainer_state.json);
- disk_full: the run's files may not grow past a random size (`ulimit -f`, i.e. RLIMIT_FSIZE: EFBIG, as a full disk);
- permission: the output folder, or an old checkpoint the run will rotate away, made read-only at a random moment,
  or the output folder made read-only just before the final save (runs are done as user nobody: root ignores
  permissions);
- rerun_finished: an uninterrupted run, then the same command again;
- damaged_checkpoint: SIGKILL at a random moment, then the newest checkpoint's weights damaged in place, same length
  (random bytes or NaN in a random tensor, or a character of the checksum saved in them,
  `fault_injection_inputs.damage_weights`): the re-run must not resume from it (it is named and skipped) and must
  still end with the uninterrupted run's weights and losses.

Runs are forked from this process after msmae, torch and transformers are imported (a fresh interpreter takes
20-40 s to start on a busy machine; the fork a fraction of a second), and run `pretraining.main(argv)`, the recipe's
command line entry. The permission faults need root (the trials run as user nobody, who must be able to read msmae's
modules; where nobody cannot, the other faults run as root and the permission faults are refused).

    python tools/fault_injection.py --trials 60 --seed 0 --workdir /tmp/msmae-faults
    python tools/fault_injection.py --mode extraction ...   # the extraction side: tools/fault_injection_extraction.py
    python tools/fault_injection.py --mode inputs ...       # ordinary inputs gone wrong: tools/fault_injection_inputs.py
"""

import argparse
import collections
import functools
import importlib
import json
import os
import random
import resource
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

NOBODY = 65534
MODES = ("training", "extraction", "inputs")
KINDS = ("kill_random", "kill_in_checkpoint", "disk_full", "permission", "rerun_finished", "damaged_checkpoint")
CHECKPOINT_POINTS = ("after_weights", "torn_optimizer", "after_optimizer", "after_rng", "torn_state", "rotation",
                     "torn_final_model", "before_final_state")
MAX_STEPS, SAVE_STEPS = 6, 2
CLEAR_MESSAGE = "Training stopped: could not write"
USER_FILE = ("notes.txt", "the user's own notes: never to be deleted\n")


def recipe_arguments(data: Path, output: Path, cache: Path) -> list[str]:
    """A tiny pretraining: 6 steps, a checkpoint every 2, at most 2 kept (so rotation deletes), a loss every step."""
    from msmae.recipes.demo import QUICK_CONFIG

    return [
        "--dataset_name", str(data), "--output_dir", str(output), "--config_overrides", QUICK_CONFIG,
        "--do_train", "--max_steps", str(MAX_STEPS), "--warmup_steps", "1",
        "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS), "--save_total_limit", "2",
        "--per_device_train_batch_size", "4", "--window_size", "32", "--num_frames", "16",
        "--validation_split_percentage", "0", "--logging_steps", "1", "--cache_dir", str(cache), "--seed", "7",
        "--use_cpu", "--report_to", "none", "--log_level", "warning", "--disable_tqdm", "true",
        "--dataloader_num_workers", "0",
    ]


def prepare(workdir: Path) -> Path:
    """The packaged MSL-150 poses (msmae.sample_data) saved as a dataset the recipe reads; readable by nobody."""
    from msmae import sample_data

    data = workdir / "data"
    if not (data / "dataset_info.json").exists():
        sample_data.sample_dataset("msl150", cache_dir=str(workdir / "cache")).save_to_disk(str(data))
    for folder in (workdir, workdir / "cache", workdir / "home"):
        folder.mkdir(exist_ok=True)
    chown_tree(workdir)
    return data


def chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, NOBODY, NOBODY)


# --- faults, applied inside the forked run -----------------------------------------------------------------------

def die():
    os.kill(os.getpid(), signal.SIGKILL)


def truncate_half(path: Path):
    path = Path(path)
    if path.exists():
        os.truncate(path, path.stat().st_size // 2)


def inject_checkpoint_kill(point: str, nth: int) -> None:
    """Patch the Trainer so that the run kills itself at `point` of its `nth` checkpoint (or of the final save)."""
    import transformers.trainer as trainer_module
    from transformers import Trainer
    from transformers.trainer_callback import TrainerState

    calls = collections.Counter()

    def hit(name):
        calls[name] += 1
        return calls[name] == nth

    save_opt, save_rng = Trainer._save_optimizer_and_scheduler, Trainer._save_rng_state
    save_json, save_model, save_state = TrainerState.save_to_json, Trainer.save_model, Trainer.save_state
    rotate = trainer_module.rotate_checkpoints

    def _save_optimizer_and_scheduler(self, output_dir):
        if point == "after_weights" and hit(point):
            die()
        save_opt(self, output_dir)
        if point in ("torn_optimizer", "after_optimizer") and hit(point):
            if point == "torn_optimizer":
                truncate_half(Path(output_dir) / "optimizer.pt")
            die()

    def _save_rng_state(self, output_dir):
        save_rng(self, output_dir)
        if point == "after_rng" and hit(point):
            die()

    def save_to_json(self, json_path):
        if point == "torn_state" and "checkpoint-" in str(json_path) and hit(point):
            text = json.dumps(self.__dict__, indent=2, sort_keys=True, default=str)
            Path(json_path).write_text(text[: len(text) // 2])
            die()
        save_json(self, json_path)

    def rotate_checkpoints(output_dir, save_total_limit=None, **kwargs):
        old = sorted(Path(output_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if point == "rotation" and save_total_limit and len(old) > save_total_limit and hit(point):
            files = sorted(p for p in old[0].iterdir() if p.is_file())
            for path in files[: max(1, len(files) // 2)]:
                path.unlink()
            die()
        return rotate(output_dir, save_total_limit=save_total_limit, **kwargs)

    def final_save_model(self, output_dir=None, _internal_call=False):
        if point == "readonly_final_save" and not _internal_call:
            os.chmod(self.args.output_dir, 0o555)  # the run owns the folder: it can take its own write permission
        save_model(self, output_dir, _internal_call=_internal_call)
        if point == "torn_final_model" and not _internal_call:
            truncate_half(Path(self.args.output_dir) / "model.safetensors")
            die()

    def final_save_state(self):
        if point == "before_final_state":
            die()
        save_state(self)

    Trainer._save_optimizer_and_scheduler, Trainer._save_rng_state = _save_optimizer_and_scheduler, _save_rng_state
    TrainerState.save_to_json, Trainer.save_model, Trainer.save_state = save_to_json, final_save_model, final_save_state
    trainer_module.rotate_checkpoints = rotate_checkpoints


def run(argv: list[str], workdir: Path, log: Path, fault: dict | None = None, kill_after: float | None = None,
        flip=None, as_root: bool = False) -> tuple[int, float]:
    """Fork, apply `fault` in the child and run the recipe as nobody; kill -9 it after `kill_after` s, call `flip()`
    (a permission flip) after `fault["flip_after"]` s. (exit status, negative for a signal; seconds)."""
    fault = fault or {}
    as_nobody = not as_root and runs_as_nobody()
    started = time.time()
    pid = os.fork()
    if pid == 0:  # the run
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            to_log()
            if as_nobody:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.environ.update(HOME=str(workdir / "home"), MPLCONFIGDIR=str(workdir / "home"))
            if "file_size_limit" in fault:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fault["file_size_limit"],) * 2)
            if "point" in fault:
                inject_checkpoint_kill(fault["point"], fault["nth"])
            from msmae.recipes import pretraining

            pretraining.main(argv)
            if as_root:  # the modules a run imports, for the parent to import before the runs as nobody
                Path(log).with_suffix(".modules").write_text("\n".join(sorted(sys.modules)))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    flipped = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        elapsed = time.time() - started
        if kill_after is not None and elapsed >= kill_after:
            os.kill(pid, signal.SIGKILL)
        if flip is not None and not flipped and elapsed >= fault.get("flip_after", 0):
            flip()
            flipped = True
        time.sleep(0.01)
    return os.waitstatus_to_exitcode(status), time.time() - started


def to_log() -> None:
    """Send the run's prints and log records to its file descriptors 1 and 2 (its log), also where the parent had
    them captured (pytest)."""
    import logging

    import transformers

    sys.stdout, sys.stderr = os.fdopen(1, "w", buffering=1), os.fdopen(2, "w", buffering=1)
    logging.root.handlers = [logging.StreamHandler(sys.stdout)]
    for handler in transformers.utils.logging._get_library_root_logger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


# --- results -------------------------------------------------------------------------------------------------------

def result(output: Path) -> dict:
    """The final weights and the losses logged per step (the output folder's trainer_state.json)."""
    from safetensors.torch import load_file

    state = json.loads((output / "trainer_state.json").read_text())
    losses = {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}
    return {"weights": load_file(output / "model.safetensors"), "losses": losses, "step": state["global_step"]}


def same(a: dict, b: dict) -> str | None:
    """Why two results differ, or None."""
    import torch

    if a["step"] != b["step"]:
        return f"global step {a['step']} vs {b['step']}"
    if a["losses"] != b["losses"]:
        return f"logged losses differ: {a['losses']} vs {b['losses']}"
    if a["weights"].keys() != b["weights"].keys():
        return "different parameter names"
    differ = [k for k in a["weights"] if not torch.equal(a["weights"][k], b["weights"][k])]
    return f"weights differ: {differ[:3]}" if differ else None


def pick_fault(kind: str, rng: random.Random, reference_seconds: float) -> dict:
    """A random fault of `kind`: {"kind", "text"} and kill_after (s) | point, nth | file_size_limit (bytes) |
    flip_after (s), flip_target ("output" | "old_checkpoint")."""
    if kind == "kill_random":
        kill_after = round(rng.uniform(0.0, reference_seconds), 2)  # the reference was the slowest (cold) run
        return {"kind": kind, "kill_after": kill_after, "text": f"SIGKILL after {kill_after} s"}
    if kind == "kill_in_checkpoint":
        point = rng.choice(CHECKPOINT_POINTS)
        checkpoints = MAX_STEPS // SAVE_STEPS - (point == "rotation")  # rotation starts at the third checkpoint
        nth = 1 if "final" in point else rng.randint(1, checkpoints)
        return {"kind": kind, "point": point, "nth": nth,
                "text": f"SIGKILL at {point}" + ("" if "final" in point else f" of checkpoint {nth}")}
    if kind == "disk_full":
        limit = rng.randint(1, 400) * 1024  # the optimizer state is 340 KiB, the weights 150 KiB
        return {"kind": kind, "file_size_limit": limit, "text": f"files limited to {limit // 1024} KiB (ulimit -f)"}
    if kind == "permission":
        target = rng.choice(["output", "old_checkpoint", "final_save"])
        after = round(rng.uniform(0.0, reference_seconds), 2)
        if target == "final_save":
            return {"kind": kind, "point": "readonly_final_save", "nth": 1,
                    "text": "output made read-only just before the final save"}
        return {"kind": kind, "flip_target": target, "flip_after": after,
                "text": f"{target} made read-only after {after} s"}
    if kind == "damaged_checkpoint":
        kill_after = round(rng.uniform(0.0, reference_seconds), 2)
        damage = rng.choice(("random_bytes", "nan", "checksum"))
        return {"kind": kind, "kill_after": kill_after, "damage": damage, "seed": rng.randrange(1 << 30),
                "text": f"SIGKILL after {kill_after} s, newest checkpoint's weights damaged in place ({damage})"}
    return {"kind": kind, "text": "none, then the same command again"}


def damage_newest_checkpoint(output: Path, fault: dict) -> str | None:
    """Damage the weights of the newest checkpoint that resume would take (its trainer_state.json written; else the
    newest with weights) in place, same length; what was done, or None without a checkpoint."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fault_injection_inputs import damage_weights

    found = sorted(output.glob("checkpoint-*/model.safetensors"), key=lambda p: int(p.parent.name.split("-")[-1]))
    complete = [p for p in found if (p.parent / "trainer_state.json").is_file()]
    if not found:
        return None
    weights = (complete or found)[-1]
    size = weights.stat().st_size
    try:
        what = damage_weights(weights, fault["damage"], fault["seed"])
    except Exception as error:  # noqa: BLE001 - weights the kill cut short: already damaged, left as they are
        return f"{weights.parent.name}: left as the kill left it ({type(error).__name__})"
    assert weights.stat().st_size == size
    return f"{weights.parent.name}: {what}"


def trial(number: int, fault: dict, workdir: Path, data: Path, reference: dict) -> dict:
    """One run with `fault` (from `pick_fault`) and its plain re-run; the record of what happened."""
    kind = fault["kind"]
    folder = workdir / f"trial-{number:03d}"
    shutil.rmtree(folder, ignore_errors=True)
    output = folder / "output"
    output.mkdir(parents=True)
    (output / USER_FILE[0]).write_text(USER_FILE[1])
    chown_tree(folder)
    argv = recipe_arguments(data, output, workdir / "cache")
    log = folder / "log.txt"
    record = {"trial": number, "kind": kind, "fault": fault["text"]}
    flip = None
    if "flip_target" in fault:
        def flip(target=fault["flip_target"]):
            path = output if target == "output" else next(iter(sorted(output.glob("checkpoint-*"))), output)
            os.chmod(path, 0o555)
            record["flipped"] = str(path.relative_to(folder))  # the output folder while no checkpoint exists yet
    first, _ = run(argv, workdir, log, fault, fault.get("kill_after"), flip)
    record["faulted_exit"] = first
    if kind == "damaged_checkpoint":
        record["damaged"] = damage_newest_checkpoint(output, fault)
    # Restore the machine: permissions back (a user would fix them), no size limit for the re-run.
    for path in [output, *output.glob("checkpoint-*")]:
        os.chmod(path, 0o755)
    text = log.read_text(errors="replace")
    if first > 0 and CLEAR_MESSAGE not in text:
        record["outcome"] = "UNCLEAR_ERROR"
        record["error"] = text.strip().splitlines()[-1:] if text.strip() else []
        return record
    if kind == "rerun_finished":
        before = (output / "model.safetensors").stat().st_mtime_ns
    rerun_log = folder / "rerun.txt"
    second, _ = run(argv, workdir, rerun_log)
    record["rerun_exit"] = second
    rerun_text = rerun_log.read_text(errors="replace")
    record["rerun_said"] = [line.split(" - ", 3)[-1][:240] for line in rerun_text.splitlines()
                            if "Skipping" in line or "resuming from" in line.lower() or "finished training run" in line]
    if second != 0:
        record["outcome"] = "RERUN_FAILED"
        record["error"] = rerun_text.strip().splitlines()[-1:]
        return record
    damaged = (record.get("damaged") or "").split(":")[0]
    if damaged and "left as" not in record["damaged"] and f"resuming from {output / damaged} " in rerun_text:
        record["outcome"] = "RESUMED_DAMAGED"
        return record
    if (output / USER_FILE[0]).read_text() != USER_FILE[1]:
        record["outcome"] = "LOST_USER_FILE"
        return record
    difference = same(result(output), reference)
    if kind == "rerun_finished" and not difference:
        if (output / "model.safetensors").stat().st_mtime_ns != before or "finished training run" not in rerun_text:
            difference = "a finished run was trained again"
    record["outcome"] = "MISMATCH" if difference else ("failed_clearly_then_equal" if first > 0 else "equal")
    if difference:
        record["difference"] = difference
    shutil.rmtree(folder)
    return record


def nobody_cannot_read_msmae() -> str | None:
    """Why the runs cannot be done as user nobody, or None: nobody must read msmae's modules, which every checkpoint
    save copies. A checkout below a folder only root may enter (`mktemp -d`, /root) fails that."""
    import msmae

    source = Path(msmae.__file__).resolve().parent / "modeling_msmae.py"
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with open(source, "rb"):
                os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return f"user nobody cannot read {source} (let others enter the checkout's folders: chmod o+rx on each parent)"


@functools.cache
def runs_as_nobody() -> bool:
    """Whether the runs are done as user nobody (as root, when nobody can read msmae). Permission faults need it:
    root ignores permissions. Otherwise the runs are done as the current user."""
    return os.geteuid() == 0 and nobody_cannot_read_msmae() is None


def setup(workdir: Path) -> tuple[Path, dict, float]:
    """The data, and an uninterrupted reference run: (data, its result, its seconds). Also checks that a resumed
    run equals it."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = prepare(workdir)
    reference_output = workdir / "reference"
    shutil.rmtree(reference_output, ignore_errors=True)
    reference_output.mkdir()
    chown_tree(reference_output)
    code, reference_seconds = run(recipe_arguments(data, reference_output, workdir / "cache"), workdir,
                                  workdir / "reference.txt", as_root=True)
    if code != 0:
        raise RuntimeError(f"the uninterrupted reference run failed: see {workdir / 'reference.txt'}")
    reference = result(reference_output)
    # A resumed run as root (the last checkpoint and the final save taken away): it must equal the reference, and
    # it lists what a resume imports (the runs are done as nobody, who cannot read this Python's own folder, here
    # under /root: whatever they import late must be imported before the forks).
    resumed = workdir / "resumed"
    shutil.rmtree(resumed, ignore_errors=True)
    shutil.copytree(reference_output, resumed)
    shutil.rmtree(resumed / f"checkpoint-{MAX_STEPS}")
    (resumed / "trainer_state.json").unlink()
    code, _ = run(recipe_arguments(data, resumed, workdir / "cache"), workdir, workdir / "resumed.txt", as_root=True)
    difference = "the run failed" if code != 0 else same(result(resumed), reference)
    if difference:
        raise RuntimeError(f"a resumed run differs from the uninterrupted one: {difference}; see {workdir}/resumed.txt")
    for log in ("reference", "resumed"):
        for name in (workdir / f"{log}.modules").read_text().split():
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (modules that only import in their own context)
                pass
    return data, reference, reference_seconds


def run_trials(trials: int, seed: int, workdir: Path, kinds=KINDS) -> dict:
    data, reference, reference_seconds = setup(workdir)
    rng = random.Random(seed)
    records = []
    for number in range(trials):
        kind = kinds[number % len(kinds)] if number < len(kinds) else rng.choice(kinds)
        records.append(trial(number, pick_fault(kind, rng, reference_seconds), workdir, data, reference))
        print(json.dumps(records[-1]), flush=True)
    summary = collections.Counter((r["kind"], r["outcome"]) for r in records)
    return {"trials": len(records), "reference_seconds": round(reference_seconds, 1), "records": records,
            "summary": {f"{k} -> {o}": n for (k, o), n in sorted(summary.items())},
            "bad": [r for r in records if r["outcome"] not in ("equal", "failed_clearly_then_equal")]}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    mode = argparse.ArgumentParser(add_help=False)
    mode.add_argument("--mode", choices=MODES, default="training")
    known, rest = mode.parse_known_args(argv)
    if known.mode != "training":  # tools/fault_injection_extraction.py, tools/fault_injection_inputs.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        return importlib.import_module(f"fault_injection_{known.mode}").main(rest)
    argv = rest
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default="training",
                        help="training (this file), extraction (tools/fault_injection_extraction.py) or inputs "
                             "(tools/fault_injection_inputs.py)")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/msmae-fault-injection")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--report", default=None, help="write the records and the summary to this JSON file")
    args = parser.parse_args(argv)
    if "permission" in args.kinds and not runs_as_nobody():
        reason = "this is not root" if os.geteuid() != 0 else nobody_cannot_read_msmae()
        parser.error(f"permission faults need the runs done as user nobody by root (root ignores permissions), but "
                     f"{reason}; fix that or leave permission out of --kinds")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    import torch

    torch.set_num_threads(1)
    import msmae.recipes.pretraining  # noqa: F401  (imported once, before the forks)

    report = run_trials(args.trials, args.seed, Path(args.workdir), tuple(args.kinds))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("trials", "reference_seconds", "summary")}, indent=1))
    print(f"{len(report['bad'])} trial(s) lost data, failed silently or differed from an uninterrupted run")
    return 1 if report["bad"] else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mode"] and sys.argv[2:3] in (["extraction"], ["inputs"]):  # before torch is imported
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        sys.exit(importlib.import_module(f"fault_injection_{sys.argv[2]}").main(sys.argv[3:]))
    sys.exit(main())
