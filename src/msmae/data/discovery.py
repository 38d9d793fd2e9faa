"""The one way to find clips on disk, for `msmae extract` inputs and the dataset builders."""

import logging
import os
from pathlib import Path

from ..pose_io import POSE_SUFFIXES, VIDEO_SUFFIXES

logger = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".lst", ".list")
# What `find_clips` looks for: videos only (to run MediaPipe on), or every clip a pose reader takes.
KINDS = ("videos", "clips")


def find_clips(inputs, kind="clips") -> list[str]:
    """Paths of the clips in `inputs` (a path or a list of paths), sorted, each file once.

    Each input is a file (taken as it is), a folder (searched recursively, following links to folders once each;
    hidden files and folders skipped; links to nothing skipped with a warning naming them) or a
    `.txt`/`.lst`/`.list` file listing one path per line (relative to the list; `#` starts a comment). `kind`:
    `"videos"` finds video files (`VIDEO_SUFFIXES`); `"clips"` also finds pose files (`POSE_SUFFIXES`, except
    ASL-App's `metadata.json`) and folders of numbered per-frame `.npy` vectors (MSL-150's layout, one clip each).

    A path listed in a text file need not exist (a reader reports it later); an input that does not exist raises
    `FileNotFoundError`.
    """
    return [path for path, _ in find_named_clips(inputs, kind)]


def find_named_clips(inputs, kind="clips") -> list[tuple[str, str]]:
    """`(path, id_path)` of each clip `find_clips` finds. `id_path` names the file the same way whatever the
    spelling of the input or the working folder (the clip's id is built from it): the path from the folder an
    input names, that folder's real name included (`clips/a.mp4` for the input `clips`, `./clips/`, `/data/clips`
    or a symlink to it;
    a file given alone counts from its own folder: `clips/a.mp4` too); a list file's entries as listed."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    suffixes = VIDEO_SUFFIXES if kind == "videos" else POSE_SUFFIXES + VIDEO_SUFFIXES
    found = []
    for item in [inputs] if isinstance(inputs, (str, os.PathLike)) else inputs:
        path = Path(item)
        if path.is_dir():
            found += [(source, _from_folder(source, path))
                      for source in _search(path, suffixes, frame_folders=kind == "clips")]
        elif path.suffix.lower() in LIST_SUFFIXES and path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"List file {path} is not UTF-8 text (byte {error.start}: {error.reason}); save "
                                 "it as UTF-8.") from None
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    found.append((os.path.normpath(os.path.join(path.parent, line)), os.path.normpath(line)))
        elif path.exists():
            found.append((os.path.normpath(path), _from_folder(path, path.parent)))
        else:
            raise FileNotFoundError(f"Input not found: {item} (give clip files, folders or .txt lists of paths).")
    # One entry per file, even when reached by two spellings (e.g. a folder and a list).
    unique = {}
    for source, id_path in sorted(set(found)):
        unique.setdefault(os.path.realpath(source), (source, id_path))
    return sorted(unique.values())


def _from_folder(path, folder):
    """`path` (inside `folder`) from the folder above `folder`: spelled the same for every spelling of `folder`,
    a symlink of another name to it included (the folder's own name is its real one)."""
    inside = os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    return os.path.normpath(os.path.join(os.path.basename(os.path.realpath(folder)), inside))


def _search(folder, suffixes, frame_folders):
    found, seen, dangling = [], set(), []
    for root, dirs, files in os.walk(folder, followlinks=True):
        root = Path(root)
        if os.path.realpath(root) in seen:  # a link back to a folder already searched (a loop, or two links)
            dirs[:] = []
            continue
        seen.add(os.path.realpath(root))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        dangling += [root / name for name in files if not name.startswith(".") and not (root / name).exists()]
        files = [name for name in files if (root / name).exists()]
        if frame_folders and root != folder and is_frame_folder(root):
            found.append(os.path.normpath(root))
            dirs[:] = []
            continue
        found += [os.path.normpath(root / name) for name in files
                  if Path(name).suffix.lower() in suffixes and not name.startswith(".") and name != "metadata.json"]
    for link in dangling:
        target = os.readlink(link) if link.is_symlink() else "?"
        logger.warning("Skipping %s: a link to %s, which does not exist.", *(
            os.fsencode(name).decode("utf-8", "backslashreplace") for name in (link, target)))
    return found


def is_frame_folder(path) -> bool:
    """A folder holding one clip as per-frame `.npy` vectors (MSL-150's layout): only numbered `.npy` files."""
    files = [p for p in Path(path).iterdir() if not p.name.startswith(".")]
    return bool(files) and all(p.is_file() and p.suffix == ".npy" and p.stem.isdigit() for p in files)
