"""Dataset folders on a local disk or in object storage, for `msmae extract`, `prepare` and `compact`.

A location is a local path, or an fsspec URL (`s3://bucket/prefix`, `gs://...`, any protocol fsspec knows; s3 needs
s3fs: `pip install 'msmae[cluster]'`). `file://` URLs are local paths. Credentials and endpoints come from the
environment the protocol's library reads (for s3fs/botocore: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
AWS_ENDPOINT_URL for an S3-compatible server, instance roles), so every process of a run, Ray workers on other nodes
included, reaches the same storage with nothing passed along. Local locations are `Path`s, remote ones `str`s.

What each kind guarantees: a local write is a temporary file, fsync and rename; an object-store write is one PUT of
the whole object, which appears whole or not at all. Object stores have no append and no locks: a file that grows
(the failure log) is rewritten whole by its only writer (the run's driver), and two runs must not write the same
remote folder and shard at once (`msmae extract` cannot refuse the second one there, as it does on a local disk).
"""

import os
from pathlib import Path


def is_remote(location) -> bool:
    return "://" in str(location) and not str(location).startswith("file://")


def location(value):
    """`value` as a location: a `Path` for local folders (file:// URLs included), else the URL without a trailing /."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if is_remote(text):
        return text.rstrip("/")
    return Path(value)


def join(base, *names):
    return "/".join([str(base).rstrip("/"), *names]) if is_remote(base) else Path(base, *names)


def name(path) -> str:
    return str(path).rstrip("/").rsplit("/", 1)[-1] if is_remote(path) else Path(path).name


def filesystem(url):
    """(fsspec file system, path inside it) of a remote `url`; names the package to install when missing."""
    from fsspec.core import url_to_fs

    try:
        return url_to_fs(url)
    except ImportError as error:
        raise ImportError(f"Cannot reach {url}: {error}. For s3:// URLs: pip install 'msmae[cluster]'; for gs:// "
                          "pip install gcsfs.") from error


def _remote(fs, path) -> str:
    return fs.unstrip_protocol(path)


def makedirs(path):
    if is_remote(path):
        fs, inner = filesystem(path)
        fs.makedirs(inner, exist_ok=True)  # a no-op below a bucket; creates the bucket when it is missing
    else:
        Path(path).mkdir(parents=True, exist_ok=True)


def glob(base, pattern) -> list:
    """The files in folder `base` matching `pattern` (no subfolders), sorted, as locations."""
    if not is_remote(base):
        return sorted(Path(base).glob(pattern))
    fs, inner = filesystem(base)
    fs.invalidate_cache(inner)  # other processes (workers, other shards) write here
    return sorted(_remote(fs, path) for path in fs.glob(f"{inner.rstrip('/')}/{pattern}"))


def exists(path) -> bool:
    if not is_remote(path):
        return Path(path).exists()
    fs, inner = filesystem(path)
    return fs.exists(inner)


def read_bytes(path) -> bytes:
    if not is_remote(path):
        return Path(path).read_bytes()
    fs, inner = filesystem(path)
    return fs.cat_file(inner)


def remove(path):
    """Delete the file `path`; one already gone is fine (another shard removed it)."""
    if is_remote(path):
        fs, inner = filesystem(path)
        if fs.exists(inner):
            fs.rm_file(inner)
        return
    Path(path).unlink(missing_ok=True)


def read_text(path) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path, data: bytes, *, sync=True):
    """Write `path` whole or not at all: temporary file, fsync (unless not `sync`) and rename locally; one PUT of
    the object remotely."""
    if is_remote(path):
        fs, inner = filesystem(path)
        fs.pipe_file(inner, data)
        return
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")  # never matches *.parquet or *.json
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
