"""Signer-disjoint splits (`msmae.data.corpora.splits`, `msmae prepare ... --split_by signer --seed N`)."""

import pytest

from msmae.data.corpora import CorpusError
from msmae.data.corpora.common import CorpusIndex
from msmae.data.corpora.splits import signer_disjoint
from msmae.data.sources import ClipSource


def index_of(counts):
    """A one-split index with counts[s] clips by signer s."""
    clips = [ClipSource(f"/data/{signer}/{i}.parquet", clip_id=f"{signer}-{i}", columns={"signer": signer,
                                                                                         "split": "train"})
             for signer, count in counts.items() for i in range(count)]
    return CorpusIndex("toy", {"train": clips}, label_names=None)


COUNTS = {f"p{n:02d}": 5 + (n * 7) % 11 for n in range(21)}  # 21 signers, uneven like asl-signs


def signers(index, split):
    return {clip.columns["signer"] for clip in index.splits[split]}


def test_no_signer_in_two_splits_and_every_clip_kept():
    index = index_of(COUNTS)
    split = signer_disjoint(index, seed=0)
    assert list(split.splits) == ["train", "validation", "test"]
    parts = [signers(split, name) for name in split.splits]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(COUNTS)
    assert sorted(c.clip_id for c in split.clips()) == sorted(c.clip_id for c in index.clips())
    for name, clips in split.splits.items():
        assert {c.columns["split"] for c in clips} <= {name}
    total = index.num_clips
    assert len(split.splits["test"]) >= 0.1 * total and len(split.splits["validation"]) >= 0.1 * total
    assert "--split_by signer --seed 0" in split.split_note and split.split_note in split.notes
    assert index.splits["train"][0].columns["split"] == "train"  # the input index is left alone


def test_deterministic_for_a_seed():
    one, two = signer_disjoint(index_of(COUNTS), seed=7), signer_disjoint(index_of(COUNTS), seed=7)
    assert {n: [c.clip_id for c in v] for n, v in one.splits.items()} == \
        {n: [c.clip_id for c in v] for n, v in two.splits.items()}
    # The order of clips in the input does not matter, only the seed.
    reordered = index_of(dict(reversed(list(COUNTS.items()))))
    assert signers(signer_disjoint(reordered, seed=7), "test") == signers(one, "test")
    assert any(signers(signer_disjoint(index_of(COUNTS), seed=s), "test") != signers(one, "test")
               for s in range(8))


def test_three_signers_is_the_least_and_every_clip_needs_one():
    small = signer_disjoint(index_of({"a": 50, "b": 1, "c": 1}), seed=0)
    assert all(len(signers(small, name)) == 1 for name in small.splits)
    with pytest.raises(CorpusError, match="2 signer"):
        signer_disjoint(index_of({"a": 3, "b": 3}), seed=0)
    index = index_of({"a": 1, "b": 1, "c": 1})
    index.splits["train"][1].columns["signer"] = ""
    with pytest.raises(CorpusError, match="clip b-0 has no signer"):
        signer_disjoint(index, seed=0)


def test_prepare_asl_signs_split_by_signer_via_the_cli(tmp_path):
    from datasets import load_from_disk

    from msmae.cli import main

    from conftest import asl_signs_root

    root, _ = asl_signs_root(tmp_path)
    out = tmp_path / "out"
    assert main(["prepare", "asl_signs", str(root), "--output_dir", str(out), "--split_by", "signer", "--seed", "3",
                 "--no_progress"]) == 0
    data = load_from_disk(str(out))
    assert list(data) == ["train", "validation", "test"]
    found = [set(data[name]["signer"]) for name in data]
    assert all(len(s) == 1 for s in found) and len(set().union(*found)) == 3
    assert sum(data[name].num_rows for name in data) == 6
    for name in data:
        assert set(data[name]["split"]) == {name}
    card = (out / "README.md").read_text()
    assert "splits made by msmae: signer-disjoint splits (--split_by signer --seed 3)" in card
    with pytest.raises(SystemExit) as exit_info:  # corpora with official splits keep them
        main(["prepare", "wlasl", str(root), "--output_dir", str(tmp_path / "w"), "--split_by", "signer"])
    assert exit_info.value.code == 2
