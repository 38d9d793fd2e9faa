"""The extraction folder's lock (`msmae.data.parts._lock`): one run per folder and shard, and never a sharded and an
unsharded run (or runs of different shard counts) on one folder at once, which would do the same work twice."""

import pytest

from msmae.data.extract import run_extraction
from msmae.data.parts import ExtractionBusy, _lock
from msmae.data.sources import ClipSource


def test_shards_of_one_count_share_a_folder(tmp_path):
    with _lock(tmp_path, 0, 2), _lock(tmp_path, 1, 2):
        with pytest.raises(ExtractionBusy, match="shard 1 of 2"):
            _lock(tmp_path, 1, 2)


@pytest.mark.parametrize("first, second", [((0, 1), (0, 2)), ((1, 2), (0, 1)), ((0, 2), (0, 3))])
def test_a_sharded_and_an_unsharded_run_refuse_each_other(tmp_path, first, second):
    with _lock(tmp_path, *first):
        with pytest.raises(ExtractionBusy, match=f"extracting into {tmp_path}"):
            _lock(tmp_path, *second)
    with _lock(tmp_path, *second):  # once the first is gone, the second runs
        pass


def test_run_extraction_refuses_before_any_work(tmp_path):
    pytest.importorskip("mediapipe")
    (tmp_path / "data").mkdir()
    with _lock(tmp_path, 1, 4):
        with pytest.raises(ExtractionBusy, match="4 shards"):
            run_extraction(clips=[ClipSource(str(tmp_path / "a.mp4"))], output_dir=tmp_path, progress=False)


@pytest.mark.parametrize("num_keypoints, layout", [(160, "left hand (21)"), (543, "--keep_landmarks all")])
def test_the_folder_card_describes_the_stored_layout(tmp_path, num_keypoints, layout):
    from msmae.data.parts import _write_info
    from msmae.data.schema import row_features

    _write_info(tmp_path, row_features(None, num_keypoints), settings={})
    card = (tmp_path / "README.md").read_text()
    assert f"(frames, {num_keypoints}, 4)" in card and f"(frames, {num_keypoints}) bool" in card
    assert layout in card
