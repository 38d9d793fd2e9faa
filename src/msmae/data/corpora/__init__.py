"""Readers for the paper's corpora, from the files their publishers distribute (one module per corpus).

`read_corpus(name, root, **options)` returns a `CorpusIndex`: the clips of each official split as
`msmae.data.sources.ClipSource`s, the class names in the official order, and the source files that are missing.
`msmae.data.prepare.prepare` turns an index into a pose dataset. Each module's docstring says which publisher
files and code its layout was checked against. `phoenix_skels` reads the PHOENIX14T skeleton files (`.skels`,
the Progressive Transformers layout) into `SignPose`s and datasets for the translation recipe's `--phoenix_dir`.

| name          | corpus                         | task                | options                                   |
| ------------- | ------------------------------ | ------------------- | ----------------------------------------- |
| `wlasl`       | WLASL100/300/1000/2000         | recognition         | subset, annotations, video_dir            |
| `asl_citizen` | ASL Citizen                    | recognition         |                                           |
| `slovo`       | Slovo                          | recognition         | trimmed, video_dir, class_list            |
| `phoenix14t`  | RWTH-PHOENIX-Weather 2014 T    | translation         |                                           |
| `csl_daily`   | CSL-Daily                      | translation         | fps                                       |
| `how2sign`    | How2Sign (re-aligned)          | translation         | source, video_dir                         |
| `youtube_asl` | YouTube-ASL                    | pretraining         | video_ids, video_dir                      |
| `manifest`    | JSL or any ELAN-style corpus   | recognition / both  | class_list                                |
| `asl_signs`   | Kaggle asl-signs (landmarks)   | recognition         | fps, split_by, seed                       |
| `asl_fingerspelling` | Kaggle asl-fingerspelling (landmarks) | translation | fps, split_by, seed                |
| `openpose`    | OpenPose JSON folders (How2Sign) | translation / any | frame_size, fps, split_by, seed           |

Landmark corpora (`asl_signs`, ...) are published as keypoints: their index carries `load_pose` and `prepare`
writes their rows without MediaPipe. `splits` makes signer-disjoint splits for corpora without official ones.
"""

from .asl_citizen import read_asl_citizen
from .asl_fingerspelling import read_asl_fingerspelling
from .asl_signs import read_asl_signs
from .common import CorpusError, CorpusIndex
from .csl_daily import read_csl_daily
from .how2sign import read_how2sign
from .manifest import read_manifest_corpus
from .openpose import read_openpose
from .phoenix14t import read_phoenix14t
from .slovo import read_slovo
from .wlasl import read_wlasl
from .youtube_asl import read_youtube_asl

READERS = {
    "wlasl": read_wlasl,
    "asl_citizen": read_asl_citizen,
    "slovo": read_slovo,
    "phoenix14t": read_phoenix14t,
    "csl_daily": read_csl_daily,
    "how2sign": read_how2sign,
    "youtube_asl": read_youtube_asl,
    "manifest": read_manifest_corpus,
    "asl_signs": read_asl_signs,
    "asl_fingerspelling": read_asl_fingerspelling,
    "openpose": read_openpose,
}


def read_corpus(name, root, **options) -> CorpusIndex:
    """The `CorpusIndex` of corpus `name` (a key of `READERS`) under `root`; `options` go to its reader."""
    key = str(name).lower().replace("-", "_")
    if key not in READERS:
        raise CorpusError(f"Unknown corpus {name!r}; known: {', '.join(READERS)}.")
    return READERS[key](root, **options)


__all__ = ["READERS", "CorpusError", "CorpusIndex", "read_corpus"]
