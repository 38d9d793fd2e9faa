"""Signer-disjoint splits for corpora without official ones (`msmae prepare ... --split_by signer --seed N`).

Signers, not clips, are drawn: the signer ids (sorted as text) are shuffled with `random.Random(seed)`, then taken
in that order into `test` until it holds at least `TEST_FRACTION` of the clips, then into `validation` until it
holds at least `VALIDATION_FRACTION`, and the rest go to `train`. So no signer is in two splits, every clip is
kept, and one seed always gives the same split (the asl-signs competition built its hidden test the same way: by
participant). Each split gets at least one signer, so three signers are needed. A clip without a signer is an error
(naming it): it could not be kept out of training. The `split` column and `CorpusIndex.split_note` record it.
"""

import random
from dataclasses import replace

from .common import CorpusError

SPLIT_BY = ("signer",)
TEST_FRACTION = 0.1
VALIDATION_FRACTION = 0.1


def signer_disjoint(index, seed=0, test_fraction=TEST_FRACTION, validation_fraction=VALIDATION_FRACTION):
    """A copy of `index` whose clips are split train/validation/test by signer (see the module docstring)."""
    clips = index.clips()
    per_signer = {}
    for clip in clips:
        signer = clip.columns.get("signer")
        if signer in (None, ""):
            raise CorpusError(f"{index.name}: clip {clip.clip_id} has no signer, so a signer-disjoint split cannot "
                              "place it; leave out --split_by or give every clip a signer.")
        per_signer[str(signer)] = per_signer.get(str(signer), 0) + 1
    signers = sorted(per_signer)
    if len(signers) < 3:
        raise CorpusError(f"{index.name}: {len(signers)} signer(s) found; a train/validation/test split by signer "
                          "needs at least 3.")
    random.Random(seed).shuffle(signers)
    split_of, position = {}, 0
    for split, fraction in (("test", test_fraction), ("validation", validation_fraction)):
        taken = 0
        # Keep at least one signer per later split.
        while position < len(signers) - (2 if split == "test" else 1) and (taken == 0 or
                                                                            taken < fraction * len(clips)):
            split_of[signers[position]] = split
            taken += per_signer[signers[position]]
            position += 1
    for signer in signers[position:]:
        split_of[signer] = "train"
    splits = {"train": [], "validation": [], "test": []}
    for clip in clips:
        split = split_of[str(clip.columns["signer"])]
        splits[split].append(replace(clip, columns={**clip.columns, "split": split}))
    counts = {name: sorted({str(c.columns["signer"]) for c in split_clips}) for name, split_clips in splits.items()}
    note = (f"signer-disjoint splits (--split_by signer --seed {seed}): test {len(splits['test'])} clips of "
            f"{len(counts['test'])} signers ({', '.join(counts['test'])}), validation {len(splits['validation'])} of "
            f"{len(counts['validation'])} ({', '.join(counts['validation'])}), train {len(splits['train'])} of "
            f"{len(counts['train'])}; no signer is in two splits")
    return replace(index, splits=splits, notes=[*index.notes, note], split_note=note)


def apply_split(index, split_by, seed):
    """`index` as published (`split_by` None) or split by `split_by` ("signer") with `seed`."""
    if split_by is None:
        return index
    if split_by not in SPLIT_BY:
        raise CorpusError(f"--split_by must be one of {SPLIT_BY}, got {split_by!r}.")
    return signer_disjoint(index, int(seed))
