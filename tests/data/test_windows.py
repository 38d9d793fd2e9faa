"""Window-level reads (msmae.data.windows), the clip datasets and collator built on them, compaction, the Hub
upload's contents and multi-node streaming."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk

from msmae.configuration_msmae import MSMAEConfig
from msmae.data.parts import part_path, write_part
from msmae.data.loading import load_sign_dataset
from msmae.data.windows import PoseRow, PoseRows, compact, hub_folder, push_compacted, stream_for_node
from msmae.keypoint_layout import NUM_STORED_KEYPOINTS
from msmae.pose_io import SignPose
from msmae.data.schema import row_features
from msmae.processing_msmae import MSMAEPoseProcessor, normalize_keypoints
from msmae.training.collator import ClipSampler, PoseClipDataset, PoseCollator, clip_dataset

LENGTHS = (700, 45, 1300, 90, 610, 30)


def _recording(frames, seed):
    """A synthetic recording: the signer drifts (so window and whole-clip statistics differ), hands come and go,
    some frames lose a shoulder."""
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((frames, NUM_STORED_KEYPOINTS, 4), dtype=np.float32)
    keypoints[..., :2] = rng.uniform(0.3, 0.7, size=(frames, NUM_STORED_KEYPOINTS, 2))
    keypoints[..., 2:] = rng.normal(size=(frames, NUM_STORED_KEYPOINTS, 2))
    keypoints[:, :, 0] += np.linspace(0, 0.2, frames)[:, None]
    mask = np.ones((frames, NUM_STORED_KEYPOINTS), dtype=bool)
    mask[rng.random(frames) < 0.3, 6:27] = False  # left hand missing
    mask[rng.random(frames) < 0.1, 0] = False  # left shoulder missing
    keypoints[~mask] = 0
    return SignPose(keypoints, mask, fps=25.0, width=1280, height=720, source=f"video-{seed}.mp4")


@pytest.fixture(scope="module")
def poses():
    return [_recording(n, seed) for seed, n in enumerate(LENGTHS)]


@pytest.fixture(scope="module")
def stored(poses, tmp_path_factory):
    """The recordings saved as 2 Arrow files and memory-mapped again (a table of several chunks)."""
    rows = [dict(p.to_example(), label=i % 2) for i, p in enumerate(poses)]
    features = row_features({"label": Dataset.from_list([{"label": 0}]).features["label"]})
    folder = tmp_path_factory.mktemp("stored") / "data"
    Dataset.from_list(rows, features=features).save_to_disk(str(folder), num_shards=2)
    return load_from_disk(str(folder))


def test_read_frames_are_views_of_the_stored_rows(stored, poses):
    shuffled = concatenate_datasets([stored.shuffle(seed=3).select([4, 1, 0]), stored])
    rows = PoseRows(shuffled)
    decoded = shuffled.with_format("numpy")
    assert len(rows) == len(shuffled) == 9
    for index in range(len(rows)):
        row, expected = rows[index], decoded[index]
        assert row.num_frames == len(expected["keypoints"]) and row["source"] == expected["source"]
        assert row["label"] == expected["label"]
        for start, stop in ((0, row.num_frames), (row.num_frames // 3, row.num_frames // 3 + 17), (5, 5)):
            pose = row.read_frames(start, stop)
            np.testing.assert_array_equal(pose.keypoints, expected["keypoints"][start:stop])
            np.testing.assert_array_equal(pose.keypoint_mask, expected["keypoint_mask"][start:stop])
            assert (pose.fps, pose.width, pose.height) == (25.0, 1280, 720)
        # The keypoints are the file's bytes, not a copy.
        assert not row.read_frames(0, 10).keypoints.flags.owndata
        np.testing.assert_array_equal(row["keypoints"], expected["keypoints"])
    with pytest.raises(ValueError, match="outside its"):
        rows[0].read_frames(0, rows[0].num_frames + 1)
    with pytest.raises(IndexError):
        rows[len(rows)]
    with pytest.raises(ValueError, match="not a pose dataset"):
        PoseRows(stored.remove_columns("keypoint_mask"))


@pytest.mark.parametrize("training", [True, False])
def test_window_reads_give_the_in_memory_numbers(stored, poses, training):
    """process_clip on a lazily read row equals process_clip on the decoded SignPose, for every seed; a long clip
    is normalised over its window (documented), a clip no longer than the window over all its frames."""
    processor = MSMAEPoseProcessor.from_preset("pretraining")
    rows = PoseRows(stored)
    for index, pose in enumerate(poses):
        for seed in range(3):
            lazy = processor.process_clip(rows[index], training=training, rng=np.random.default_rng(seed))
            memory = processor.process_clip(pose, training=training, rng=np.random.default_rng(seed))
            for a, b in zip(lazy, memory):
                np.testing.assert_array_equal(a, b)
        start, stop = processor.frame_range(pose.num_frames, training, np.random.default_rng(0))
        window = SignPose(pose.keypoints[start:stop], pose.keypoint_mask[start:stop], 25.0, 1280, 720)
        values, _ = processor.process_clip(rows[index], training=training, rng=np.random.default_rng(0))
        np.testing.assert_array_equal(values, processor.process_clip(window)[0])
        assert stop - start == min(pose.num_frames, processor.window_size)


def test_long_clip_normalised_over_its_window(poses):
    """The one change from whole-clip processing: statistics come from the frames read (the window)."""
    processor = MSMAEPoseProcessor.from_preset("pretraining")
    pose = poses[2]  # 1300 frames, drifting signer
    start, stop = processor.frame_range(pose.num_frames)  # evaluation: centred
    values, mask = processor.process_clip(pose)
    whole = MSMAEPoseProcessor.from_preset("pretraining", window_size=pose.num_frames, num_frames=pose.num_frames)
    everything, _ = whole.process_clip(pose)  # every frame, normalised over the whole clip
    picked = everything[start + 1 : stop : 2]  # the window subsampled: every second frame from its second
    assert values.shape == picked.shape
    assert not np.allclose(values, picked)  # other statistics
    # Same frames, same keypoints: an affine map per axis (another centre and scale) relates them.
    for axis in range(2):
        x, y = picked[..., axis][mask], values[..., axis][mask]
        slope, intercept = np.polyfit(x, y, 1)
        np.testing.assert_allclose(slope * x + intercept, y, atol=1e-4)
    # A clip no longer than the window is read whole and normalised over all its frames, as before.
    short = poses[1]
    values, mask = processor.process_clip(short)
    index = processor._frame_indices(short.num_frames, False, None)
    whole_clip = normalize_keypoints(short.keypoints, short.keypoint_mask, width=1280, height=720)
    np.testing.assert_array_equal(values, whole_clip[index, :48])
    np.testing.assert_array_equal(mask, short.keypoint_mask[index, :48])


def test_clips_are_seeded_and_resumable(stored):
    config = MSMAEConfig()
    processor = MSMAEPoseProcessor.from_preset("pretraining", window_size=200, num_frames=100)
    sampler = ClipSampler(processor, training=True, label_column="label", masking=config)
    data = PoseClipDataset(stored, sampler, seed=11)
    first = [data[i] for i in range(len(data))]
    # A fresh dataset object (a resumed run) and one that went through pickling (a spawned worker) agree.
    for other in (PoseClipDataset(stored, sampler, seed=11), pickle.loads(pickle.dumps(data))):
        for i, item in enumerate(first):
            for key in ("pose_values", "keypoint_mask", "noise", "labels"):
                np.testing.assert_array_equal(item[key], other[i][key])
    assert first[0]["noise"].shape == config.noise_shape(len(first[0]["pose_values"]))
    data.set_epoch(1)
    second = [data[i] for i in range(len(data))]
    assert not np.array_equal(second[0]["noise"], first[0]["noise"])
    assert not np.array_equal(second[2]["pose_values"], first[2]["pose_values"])  # 1300 frames: a new window
    # A persistent worker keeps its copy of the dataset across epochs; the epoch still reaches it.
    data.set_epoch(0)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=1, persistent_workers=True)
    for epoch, expected in ((0, first), (1, second)):
        data.set_epoch(epoch)
        for item, reference in zip(loader, expected):
            np.testing.assert_array_equal(item["noise"], torch.from_numpy(reference["noise"]))
            np.testing.assert_array_equal(item["pose_values"], torch.from_numpy(reference["pose_values"]))


def test_streamed_rows_give_the_same_clips(stored):
    processor = MSMAEPoseProcessor.from_preset("pretraining", window_size=200, num_frames=100)
    sampler = ClipSampler(processor, training=True, masking=MSMAEConfig())
    stream = clip_dataset(stored.to_iterable_dataset(num_shards=2), sampler, seed=5)
    stream.set_epoch(2)
    items = list(stream)
    decoded = stored.with_format("numpy")
    assert len(items) == len(stored)
    for position, item in enumerate(items):
        expected = sampler(decoded[position], np.random.default_rng([5, 2, 0, position]))
        for key in ("pose_values", "keypoint_mask", "noise"):
            np.testing.assert_array_equal(item[key], expected[key])


def test_collator_pads_noise_to_the_configs_shape(stored):
    config = MSMAEConfig(cubelet_size=4)
    processor = MSMAEPoseProcessor.from_preset("pretraining", window_size=200, num_frames=100, pad_to_multiple_of=8)
    data = PoseClipDataset(stored, ClipSampler(processor, training=True, masking=config), seed=0)
    items = [data[i] for i in (1, 5, 0)]  # 45, 30 and 700 frames -> 23, 15 and 100 frames
    batch = PoseCollator(processor, masking=config)(items)
    assert batch["pose_values"].shape[1] == 104  # padded to a multiple of 8
    assert batch["noise"].shape == (3, *config.noise_shape(104)) == (3, 3, 26)
    for i, item in enumerate(items):
        streams, cubelets = item["noise"].shape
        torch.testing.assert_close(batch["noise"][i, :, :cubelets], torch.from_numpy(item["noise"]))
        assert (batch["noise"][i, :, cubelets:] == 1).all()
    with pytest.raises(ValueError, match="masking=model config"):
        PoseCollator(processor)(items)


@pytest.fixture(scope="module")
def parts(poses, tmp_path_factory):
    """An `msmae extract` output folder: one Parquet part per video."""
    folder = tmp_path_factory.mktemp("extracted")
    (folder / "data").mkdir()
    for pose in poses:
        write_part(part_path(folder, pose.source), pose.to_example(), row_features())
    (folder / "extraction_info.json").write_text(json.dumps({"features": row_features().to_dict()}))
    return folder


def _by_source(dataset):
    decoded = dataset.with_format("numpy")
    return {decoded[i]["source"]: decoded[i] for i in range(len(decoded))}


def test_compact_extracted_parts_into_shards(parts, poses, tmp_path):
    output = tmp_path / "corpus"
    compacted = compact(parts, output, max_shard_size="2MB")
    shards = sorted(p.name for p in (output / "train").glob("*.arrow"))
    assert len(shards) > 1 and shards[0] == f"data-00000-of-{len(shards):05d}.arrow"
    card = (output / "README.md").read_text()
    assert "path: train/data-*.arrow" in card and f"| train | {len(poses)} | {sum(LENGTHS)} |" in card
    assert not any(p.name.startswith(".corpus-cache") for p in tmp_path.iterdir())  # temporary cache removed
    loaded = load_sign_dataset(str(output))
    assert isinstance(loaded, DatasetDict) and list(loaded) == ["train"]
    # Memory-mapped where it lies: nothing was copied into a cache.
    assert all(str(output) in f["filename"] for f in loaded["train"].cache_files)
    rows = _by_source(loaded["train"])
    for pose in poses:
        np.testing.assert_array_equal(rows[pose.source]["keypoints"], pose.keypoints)
        np.testing.assert_array_equal(rows[pose.source]["keypoint_mask"], pose.keypoint_mask)
    assert len(compacted["train"]) == len(poses)
    with pytest.raises(FileExistsError, match="not empty"):
        compact(parts, output)


def test_cli_compact(parts, tmp_path):
    from msmae.cli import main

    assert main(["compact", str(parts), "--output_dir", str(tmp_path / "out"), "--max_shard_size", "1MB"]) == 0
    assert len(load_from_disk(str(tmp_path / "out"))["train"]) == len(LENGTHS)
    assert main(["compact", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out2")]) == 2


@pytest.fixture(scope="module")
def compacted(parts, tmp_path_factory):
    output = tmp_path_factory.mktemp("compacted") / "corpus"
    compact(parts, output, max_shard_size="1MB")
    return output


def test_hub_upload_contents(compacted, poses, tmp_path, monkeypatch):
    staging = hub_folder(compacted, tmp_path / "staging")
    arrow_shards = len(list((compacted / "train").glob("*.arrow")))
    names = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    assert names == ["README.md"] + [f"data/train-{i:05d}-of-{arrow_shards:05d}.parquet" for i in range(arrow_shards)]
    assert "path: data/train-*" in (staging / "README.md").read_text()
    rows = _by_source(load_sign_dataset(str(staging), split="train"))  # what the Hub's loader would read
    for pose in poses:
        np.testing.assert_array_equal(rows[pose.source]["keypoints"], pose.keypoints)

    calls = []

    class RecordingApi:  # records what would go to the Hub; nothing is sent
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs["repo_type"], kwargs["private"]))

        def upload_folder(self, *, repo_id, repo_type, folder_path, **kwargs):
            files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
            calls.append(("upload_folder", repo_id, repo_type, files))
            return "commit"

    monkeypatch.setattr("huggingface_hub.HfApi", RecordingApi)
    assert push_compacted(compacted, "someone/poses", token="t", private=True) == "commit"
    assert calls == [("token", "t"), ("create_repo", "someone/poses", "dataset", True),
                     ("upload_folder", "someone/poses", "dataset", names)]


@pytest.mark.parametrize("num_shards", [4, 3])
def test_stream_for_node_covers_the_corpus_once(compacted, num_shards):
    """world_size 2: whole shards per node (4 shards) or every other row (3 shards); disjoint, complete."""
    dataset = load_sign_dataset(str(compacted), split="train")
    seen = []
    for rank in range(2):
        stream = stream_for_node(dataset, rank, 2, num_shards=num_shards)
        seen.append([row["source"] for row in stream.select_columns(["source"])])
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(dataset["source"])
    # What a node's training reads: its rows as clips (window reads from the streamed Arrow rows).
    processor = MSMAEPoseProcessor.from_preset("pretraining", window_size=200, num_frames=100)
    clips = list(clip_dataset(stream_for_node(dataset, 1, 2, num_shards=num_shards), ClipSampler(processor, training=True)))
    assert len(clips) == len(seen[1]) and all(len(c["pose_values"]) <= 100 for c in clips)
    with pytest.raises(ValueError, match="rank must be"):
        stream_for_node(dataset, 2, 2)


def test_pose_row_from_streamed_table(stored):
    table = next(iter(stored.to_iterable_dataset().with_format("arrow")))
    row = PoseRow.from_table(table)
    np.testing.assert_array_equal(row.read_frames(3, 9).keypoints, stored.with_format("numpy")[0]["keypoints"][3:9])


def test_other_list_layouts(poses):
    """Large and fixed-size lists (what other writers produce) read the same frames."""
    import pyarrow as pa

    pose = poses[1]
    frames = pose.num_frames
    points = pa.FixedSizeListArray.from_arrays(pa.array(pose.keypoints.ravel()), 4)
    keypoints = pa.LargeListArray.from_arrays(pa.array([0, frames], pa.int64()),
                                              pa.FixedSizeListArray.from_arrays(points, NUM_STORED_KEYPOINTS))
    mask = pa.LargeListArray.from_arrays(pa.array([0, frames], pa.int64()),
                                         pa.FixedSizeListArray.from_arrays(pa.array(pose.keypoint_mask.ravel()), NUM_STORED_KEYPOINTS))
    table = pa.table({"keypoints": keypoints, "keypoint_mask": mask, "fps": pa.array([25.0]), "source": ["x"]})
    read = PoseRow.from_table(table).read_frames(7, 30)
    np.testing.assert_array_equal(read.keypoints, pose.keypoints[7:30])
    np.testing.assert_array_equal(read.keypoint_mask, pose.keypoint_mask[7:30])
    flat = pa.table({"keypoints": pa.array([b"x"]), "keypoint_mask": pa.array([b"x"])})
    with pytest.raises(ValueError, match="not as nested lists"):
        PoseRow.from_table(flat).num_frames
