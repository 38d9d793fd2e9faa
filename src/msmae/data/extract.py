"""The resumable dataset writer behind `msmae extract` (MediaPipe itself is in `msmae.holistic`).

`run_extraction(...)` turns many videos, frame folders or clips cut from long videos (`msmae.data.sources.ClipSource`)
into a Hugging Face `datasets` dataset on disk, one row per clip (columns: `msmae.data.schema.ROW_COLUMNS`, then the
clip's own), in the folder laid out, written and read back by `msmae.data.parts` (`load_extracted`). This module
plans the run (shards, what is already done), runs the MediaPipe workers in a process pool and reports the outcome.
"""

import concurrent.futures
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ..holistic import (
    ExtractionError,
    HolisticExtractor,
    OutOfRangeError,
    filter_native_stderr,
    holistic_settings,
    num_kept_keypoints,
    open_frames,
)
from .parts import (
    DATA_DIR,
    WRITE_ERROR,
    _append_failure,
    _check_unlisted_parts,
    _lock,
    _read_info,
    _write_info,
    check_part,
    failures_path,
    migrate_old_ids,
    part_path,
    read_failures,
    write_part,
)
from .parts import load_extracted  # noqa: F401  (dataset cards written by msmae 0.1.0 name msmae.data.extract.load_extracted)
from . import storage
from .schema import row_features
from .sources import clips_from_inputs, frame_times, printable

logger = logging.getLogger(__name__)


ENGINES = ("local", "ray")


def shard_paths(paths, shard_index=0, num_shards=1) -> list:
    """This shard's share of the sorted `paths` (every `num_shards`-th item from `shard_index`): shards are
    disjoint, together cover every path, and agree across machines given the same inputs."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards) and num_shards >= 1, got {shard_index}/{num_shards}.")
    return sorted(paths)[shard_index::num_shards]


def slurm_shard(environ=None):
    """(shard_index, num_shards) of this Slurm job-array task (`sbatch --array`), or None outside an array.

    The array's indices must be contiguous (e.g. 0-15 or 1-16; a step or list would leave shards undone): the shard
    is SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT (or MAX - MIN + 1)."""
    environ = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in environ:
        return None
    try:
        task = int(environ["SLURM_ARRAY_TASK_ID"])
        low = int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        count = environ.get("SLURM_ARRAY_TASK_COUNT")
        count = int(count) if count else int(environ["SLURM_ARRAY_TASK_MAX"]) - low + 1
    except (KeyError, ValueError) as error:
        raise ValueError(f"Cannot read the Slurm array variables ({error}): set SLURM_ARRAY_TASK_ID with "
                         "SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX, or give --shard_index and "
                         "--num_shards.") from None
    high = environ.get("SLURM_ARRAY_TASK_MAX")
    if high and int(high) - low + 1 != count:
        raise ValueError(f"The Slurm array {low}-{high} holds {count} tasks, not {int(high) - low + 1}: its indices "
                         "are not contiguous (a step or a list), so shards would be left undone. Submit "
                         "--array=0-N (a %limit is fine), or give --shard_index and --num_shards.")
    if not 0 <= task - low < count:
        raise ValueError(f"SLURM_ARRAY_TASK_ID={task} lies outside the array {low}..{low + count - 1}.")
    return task - low, count


def _column_features(rows):
    """One `datasets` type per column of `rows` (dicts), from all its values (so every part and shard agrees)."""
    from datasets import Value

    kinds = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add(type(value))
    features = {}
    for key in sorted({key for row in rows for key in row}):
        types = kinds.get(key, {str})
        if types == {bool}:
            features[key] = Value("bool")
        elif types <= {int}:
            features[key] = Value("int64")
        elif types <= {int, float}:
            features[key] = Value("float64")
        else:
            features[key] = Value("string")
    return features


@dataclass
class ExtractionSummary:
    """What one `run_extraction` call did (this shard only). Counts are of clips, except `num_videos`."""

    output_dir: str
    num_videos: int = 0  # source videos or frame folders in this shard
    num_clips: int = 0  # their clips (one per whole video)
    num_already_extracted: int = 0
    num_already_failed: int = 0
    num_damaged: int = 0  # parts that failed `check_part` and were extracted again
    num_updated: int = 0  # parts whose columns were rewritten (manifest changed)
    num_extracted: int = 0
    num_no_person: int = 0
    num_failed: int = 0
    num_frames: int = 0
    seconds: float = 0.0  # wall time of the run, worker start-up included
    processing_seconds: float = 0.0  # from the first video's start to the last one's end (in any worker)
    cpu_seconds: float = 0.0  # CPU time of the workers (all their threads) spent on videos
    failures: list = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.num_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def num_already_done(self) -> int:
        return self.num_already_extracted + self.num_already_failed


_worker_extractor = None

_worker_state = {}


def _init_worker(extractor_kwargs, features, quiet, settings=None, main_pid=None):
    global _worker_extractor
    if main_pid is not None:
        _end_with_parent(main_pid)
    if quiet:
        filter_native_stderr()
    _worker_extractor = HolisticExtractor(**extractor_kwargs)
    _worker_state.update(features=features, settings=settings)


def _worker_task(path, fps, jobs, extractor_kwargs, features, quiet, settings):
    """`_extract_source` in a worker that is handed tasks of any run (a Ray worker): the graph is built on the
    process's first task and kept while the settings stay the same."""
    global _worker_extractor
    key = repr((sorted(extractor_kwargs.items()), settings, quiet))
    if _worker_state.get("key") != key:
        if _worker_extractor is not None:
            _worker_extractor.close()
            _worker_extractor = None
        _init_worker(extractor_kwargs, features, quiet, settings)
        _worker_state["key"] = key
    _worker_state.update(features=features, settings=settings)
    return _extract_source(path, fps, jobs)


def _end_with_parent(main_pid):
    """Make this worker end when `msmae extract` dies (even by kill -9), not minutes later holding its memory: the
    kernel kills it when its parent (the fork server) exits (Linux), and a thread checks the main process too."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="msmae-parent-watch", daemon=True).start()


def _extract_source(path, fps, jobs):
    """Extract and write the clips `jobs` [(ClipSource, destination)] of one source, decoding it once; never
    raises (failures are returned as records for the log). Returns {"path", "clips": [result per clip], times}."""
    started, cpu = time.time(), time.process_time()  # wall clock: comparable across worker processes
    results = {}
    try:
        with open_frames(path, fps) as reader:
            rate = fps or reader.fps
            placed = _place_clips(path, fps, rate, jobs, results)
            ranges = [frames for _, frames in placed]
            for j, pose in _worker_extractor.extract_ranges(reader, ranges, source=path, fps=rate) if ranges else ():
                results[placed[j][0]] = _write_clip(*jobs[placed[j][0]], pose)
    except ExtractionError as error:
        failure = {"kind": "unreadable", "error": printable(error)}
    except Exception as error:  # one bad video (e.g. a MediaPipe RuntimeError) must not stop the run
        failure = {"kind": "error", "error": printable(f"{type(error).__name__}: {error}")}
    else:
        failure = None
    clips = [results.get(i) or _clip_result(clip, 0, **failure) for i, (clip, _) in enumerate(jobs)]
    return {"path": path, "clips": clips, "started": started, "finished": time.time(),
            "cpu_seconds": time.process_time() - cpu}


def _place_clips(path, fps, rate, jobs, results):
    """[(job index, frame range)] of the clips of `jobs` that can be placed in the source; a clip that cannot (no
    frame in its time range) gets its failure in `results`, alone: the source's other clips are still extracted.
    Time ranges of a video follow its frames' timestamps, unless an fps was given for it."""
    timed = any(clip.start is not None or clip.end is not None for clip, _ in jobs)
    times = frame_times(path) if timed and fps is None and os.path.isfile(path) else None
    placed = []
    for i, (clip, destination) in enumerate(jobs):
        try:
            placed.append((i, clip.frame_range(rate, times)))
        except ExtractionError as error:
            results[i] = _write_clip(clip, destination, error)
    return placed


def _failed_before(record, key) -> bool:
    """Whether the failure `record` (or None) still holds for the clip whose row has the content `key`: the same
    row failed. A record written before records had keys holds when it blames the clip's own input (unreadable,
    out of range, no person); an "error" there may have come from a neighbouring row of the same video (a NaN
    range failed them all), so that clip is tried once more."""
    if record is None:
        return False
    if "key" in record:
        return record["key"] == key
    return record.get("kind") != "error"


def failure_key(clip, settings) -> str:
    """What a failure is tied to: the clip's source (its id spelling, size and modification time), range and the
    extractor settings. A row fixed in the manifest, or a video replaced on disk, no longer matches its failure and
    is tried again without --retry_failed."""
    try:
        stat = os.stat(clip.path)
        source = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        source = None
    fields = [clip.clip_id, clip.id_path, clip.start, clip.end, clip.start_frame, clip.end_frame, clip.fps, source,
              settings]
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_clip(clip, destination, pose):
    if isinstance(pose, ExtractionError):
        return _clip_result(clip, 0, "out_of_range" if isinstance(pose, OutOfRangeError) else "unreadable", str(pose))
    if not pose.metadata["person_detected"]:
        return _clip_result(clip, pose.num_frames, "no_person",
                            f"no person detected in any of the {pose.num_frames} frames")
    pose.metadata["clip_id"] = printable(clip.clip_id)
    example = pose.to_example()
    example["source"] = printable(example["source"])
    example.update({key: clip.columns.get(key) for key in _worker_state["features"] if key not in example})
    try:
        write_part(destination, example, _worker_state["features"], _worker_state["settings"])
    except OSError as error:  # the output folder's fault (full, read-only), not the video's: the run stops
        return _clip_result(clip, pose.num_frames, WRITE_ERROR, output_error_message(error, destination))
    return _clip_result(clip, pose.num_frames, "ok")


class OutputError(OSError):
    """The output folder could not be written (full disk, permissions, read-only): the run stopped; nothing that
    was written is lost and the same command continues where it stopped."""


def output_error_message(error, path) -> str:
    """What to fix, for an OSError met while writing `path`."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free disk space (or raise the quota / file size limit)"
    elif error.errno in (errno.EACCES, errno.EPERM):
        fix = f"make {Path(path).parent} writable for this user"
    elif error.errno == errno.EROFS:
        fix = "the file system is read-only: give an --output_dir on a writable one"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = f"{Path(path).parent} or a folder above it is a file: give another --output_dir"
    else:
        fix = "check the output folder"
    return f"could not write {printable(path)} ({printable(error.strerror or error)}): {fix}"


def _clip_result(clip, frames, kind, error=None):
    return {"path": clip.path, "clip_id": clip.clip_id, "frames": frames, "kind": kind,
            "error": None if error is None else printable(error)}


def run_extraction(inputs=None, output_dir=None, *, clips=None, manifest=None, num_workers=1, shard_index=0,
                   num_shards=1, overwrite=False, retry_failed=False, progress=True, quiet=False,
                   extractor_kwargs=None, column_features=None, engine="local",
                   ray_address=None) -> ExtractionSummary:
    """Extract clips into `output_dir` as a resumable dataset (layout: `msmae.data.parts`), one row per clip.

    The clips are `clips` (`ClipSource`s: whole videos, ranges inside long videos, frame folders), or every video
    of `inputs` (see `msmae.data.discovery.find_clips`) as a whole, or with a `manifest` and no inputs, the
    manifest's videos; a manifest's columns go into its videos' rows. Each source is decoded once for all of its
    clips, which run with fresh MediaPipe tracking each. Shards split the sources (never the clips of one source).

    `output_dir` may be an object-store URL (s3://bucket/prefix; `msmae.data.storage` says what is guaranteed
    there: parts are written whole, but no lock keeps a second run off the same folder and shard).
    Clips whose part file exists and checks out (`check_part`: readable, its poses whole, the same extractor
    settings) are skipped; a damaged part is extracted again; a part whose columns changed (manifest edited) gets
    them rewritten without MediaPipe. Clips in the failure log are skipped unless `retry_failed` or their row
    changed (`failure_key`); `overwrite` re-extracts everything (replacing each part atomically). `num_workers` processes each run one Holistic graph.
    Missing or unreadable sources, ranges outside their video and clips without a person are logged to the failure
    log, never written, never fatal. A failed write (full disk, permissions) stops the run with `OutputError`
    naming what to fix; what was not written is extracted by the next run. Other extractor settings than the
    folder's, or parts of unlisted clips with other columns, raise ValueError before any work. A second run on the
    same folder and shard while one runs raises `ExtractionBusy`. `column_features` ({column: datasets feature},
    e.g. a `ClassLabel`) types the clips' columns; the others are typed from their values. `quiet` filters
    MediaPipe's native start-up messages from stderr (see `filter_native_stderr`).

    `engine`: "local" (a process pool on this machine) or "ray" (`msmae.data.ray_engine`: a local Ray, or the Ray
    cluster at `ray_address`; `num_workers` 0 there means one per CPU of the cluster). Both do the same work per
    source, so a folder begun with one can be finished with the other.
    """
    if engine not in ENGINES:
        raise ValueError(f"Unknown extraction engine {engine!r}; use one of {', '.join(ENGINES)}.")
    if ray_address is not None and engine != "ray":
        raise ValueError("ray_address is for engine='ray' (--engine ray); drop it or add --engine ray.")
    if output_dir is None:
        raise ValueError("run_extraction needs an output_dir.")
    if clips is not None and (inputs or manifest):
        raise ValueError("Give either clips or inputs/manifest to run_extraction, not both.")
    if clips is None:
        clips = clips_from_inputs(inputs, manifest)
    clips = list(clips)
    ids = {}
    for clip in clips:
        if ids.setdefault(clip.clip_id, clip) is not clip:
            raise ValueError(f"Two clips share the clip_id {clip.clip_id!r} (each row needs its own); give them "
                             "distinct clip_id values.")
    extractor_kwargs = dict(extractor_kwargs or {})
    settings = holistic_settings(**extractor_kwargs)  # bad settings fail here, not in every worker
    features = row_features({**_column_features([clip.columns for clip in clips]), **(column_features or {})},
                            num_kept_keypoints(extractor_kwargs.get("keep_landmarks", "model")))

    output_dir = storage.location(output_dir)  # a Path, or an object-store URL (msmae.data.storage)
    try:
        storage.makedirs(storage.join(output_dir, DATA_DIR))
        lock = _lock(output_dir, shard_index, num_shards)
    except OSError as error:
        raise OutputError(f"Cannot extract into {printable(output_dir)}: "
                          f"{output_error_message(error, error.filename or output_dir)}.") from error
    with lock:
        return _run_locked(clips, output_dir, features, settings, extractor_kwargs, num_workers=num_workers,
                           shard_index=shard_index, num_shards=num_shards, overwrite=overwrite,
                           retry_failed=retry_failed, progress=progress, quiet=quiet, engine=engine,
                           ray_address=ray_address)


def _run_locked(clips, output_dir, features, settings, extractor_kwargs, *, num_workers, shard_index, num_shards,
                overwrite, retry_failed, progress, quiet, engine="local", ray_address=None):
    info = _read_info(output_dir)
    if not overwrite and info.get("extractor") not in (None, settings):
        raise ValueError(
            f"{printable(output_dir)} was extracted with the settings {info['extractor']}, not {settings}: run "
            "with the same settings, or add --overwrite to extract every clip again with the new ones, or give "
            "another --output_dir.")
    moved = migrate_old_ids(output_dir, clips)
    if moved:
        logger.info("%d rows written under the old spelling of their clip id (the path as typed) now have the id "
                    "of their file relative to its input; duplicates of one clip were dropped.", moved)
    _check_unlisted_parts(output_dir, clips, features)
    by_source = {}
    for clip in clips:
        by_source.setdefault(clip.path, []).append(clip)
    shard = shard_paths(by_source, shard_index, num_shards)
    summary = ExtractionSummary(output_dir=str(output_dir), num_videos=len(shard),
                                num_clips=sum(len(by_source[path]) for path in shard))
    failed_before = {} if (overwrite or retry_failed) else read_failures(output_dir)
    present = {storage.name(part) for part in storage.glob(storage.join(output_dir, DATA_DIR), "*.parquet")}
    keys = {clip.clip_id: failure_key(clip, settings) for path in shard for clip in by_source[path]}
    tasks, rewrites = [], []
    for path in shard:
        jobs = []
        for clip in sorted(by_source[path], key=lambda c: c.clip_id):
            part = part_path(output_dir, clip.clip_id)
            if not overwrite and storage.name(part) in present:  # one listing, not a request per clip
                state, detail = check_part(part, clip, features, settings)
                if state != "extract":
                    summary.num_already_extracted += 1
                    if state == "columns":
                        rewrites.append((part, detail))
                    continue
                logger.warning("%s: its part %s is not used (%s); extracting it again.", printable(clip.clip_id),
                               storage.name(part), detail)
                summary.num_damaged += 1
            elif _failed_before(failed_before.get(clip.clip_id), keys[clip.clip_id]):
                summary.num_already_failed += 1
                continue
            jobs.append((clip, part))
        if jobs:
            fps = {clip.fps for clip, _ in jobs}
            if len(fps) > 1:
                raise ValueError(f"Clips of {printable(path)} give different fps values {sorted(fps)}; give one "
                                 "per source.")
            tasks.append((path, fps.pop(), jobs))
    if summary.num_already_done:
        logger.info("%d of %d clips already done (extracted or logged as failed); skipping them.",
                    summary.num_already_done, summary.num_clips)
    if not tasks and not rewrites:
        return summary

    previous = (info.get("rows_with_previous_settings") or {}).get("extractor") or info.get("extractor")
    try:
        _write_info(output_dir, features, settings, previous=previous)
        for part, table in rewrites:
            write_part(part, None, features, settings, table=table)
    except OSError as error:
        raise OutputError(f"Extraction stopped: {output_error_message(error, error.filename or output_dir)}. "
                          "Nothing is lost; run the same command again once fixed.") from error
    summary.num_updated = len(rewrites)
    if rewrites:
        logger.info("Rewrote the columns of %d rows whose manifest values or column types changed.", len(rewrites))
    log = failures_path(output_dir, shard_index, num_shards)
    bar = _progress_bar(sum(len(jobs) for *_, jobs in tasks), progress)
    started, first_start, last_finish = time.perf_counter(), float("inf"), float("-inf")
    stopped = None
    if engine == "ray":
        from .ray_engine import run_tasks

        results = run_tasks(tasks, _worker_task, _failed_task, (extractor_kwargs, features, quiet, settings),
                            num_workers, quiet, address=ray_address)
    else:
        results = _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet, settings)
    try:
        for done in results:
            if "started" in done:
                first_start, last_finish = min(first_start, done["started"]), max(last_finish, done["finished"])
                summary.processing_seconds = last_finish - first_start
                summary.cpu_seconds += done["cpu_seconds"]
            for result in done["clips"]:
                summary.num_frames += result["frames"]
                if result["kind"] == "ok":
                    summary.num_extracted += 1
                elif result["kind"] == WRITE_ERROR:
                    stopped = stopped or result["error"]
                elif not stopped:
                    try:
                        _append_failure(log, {**result, "key": keys.get(result["clip_id"])})
                    except OSError as error:  # not logged: the next run tries the clip again
                        stopped = output_error_message(error, log)
                        continue
                    summary.num_no_person += result["kind"] == "no_person"
                    summary.num_failed += result["kind"] != "no_person"
                    summary.failures.append(result)
                    logger.warning("%s: %s", printable(result["clip_id"]), result["error"])
            summary.seconds = time.perf_counter() - started
            if bar is not None:
                bar.set_postfix_str(f"{summary.frames_per_second:.1f} frames/s", refresh=False)
                bar.update(len(done["clips"]))
            if stopped:
                break
    finally:
        results.close()  # stops the workers
        if bar is not None:
            bar.close()
    if stopped:
        error = OutputError(
            f"Extraction stopped: {stopped}. The {summary.num_extracted} clips written before are kept; the "
            "others are extracted when you run the same command again.")
        error.summary = summary
        raise error
    if previous not in (None, settings) and num_shards == 1:
        _write_info(output_dir, features, settings)  # every row now has the new settings
    return summary


def _run_tasks(tasks, num_workers, extractor_kwargs, features, quiet, settings=None):
    """Yield `_extract_source` results as sources finish: in this process for one worker, else in a process pool.
    A task is (path, fps, jobs)."""
    if num_workers <= 1:
        _init_worker(extractor_kwargs, features, quiet, settings)
        try:
            for task in tasks:
                yield _extract_source(*task)
        finally:
            _worker_extractor.close()
        return
    context = _worker_context()
    pending, suspects = list(reversed(tasks)), {}  # pop() from the end keeps the sorted order
    while pending:
        pool = concurrent.futures.ProcessPoolExecutor(
            num_workers, mp_context=context, initializer=_init_worker,
            initargs=(extractor_kwargs, features, quiet, settings, os.getpid()),
        )
        in_flight, broken = {}, False
        try:
            while (pending or in_flight) and not broken:
                # After a worker died, the sources that were in flight are retried one at a time to find the culprit.
                isolate = (pending and pending[-1][0] in suspects) or any(t[0] in suspects for t in in_flight.values())
                limit = 1 if isolate else num_workers
                while pending and len(in_flight) < limit:
                    future = pool.submit(_extract_source, *pending[-1])
                    in_flight[future] = pending.pop()
                done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    if isinstance(future.exception(), BrokenProcessPool):
                        broken = True
                        continue
                    task = in_flight.pop(future)
                    if future.exception() is not None:
                        error = future.exception()
                        yield _failed_task(task, f"{type(error).__name__}: {error}")
                    else:
                        yield future.result()
        except BrokenProcessPool:  # from submit(): the pool broke between two waits
            broken = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for task in in_flight.values():  # a worker died (e.g. a native crash in MediaPipe)
            if task[0] in suspects and len(in_flight) == 1:
                yield _failed_task(task, "the worker process died while extracting this video")
            else:
                suspects[task[0]] = True
                pending.append(task)


def _failed_task(task, error):
    path, _, jobs = task
    return {"path": path, "clips": [_clip_result(clip, 0, "error", error) for clip, _ in jobs]}


def _worker_context():
    """Workers start from a fork server that has imported this module once (never a fork of this process, whose
    threads need not survive a fork), so they skip `msmae`'s imports (torch, transformers: seconds of CPU each);
    spawn where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _progress_bar(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc="extract", dynamic_ncols=True)
