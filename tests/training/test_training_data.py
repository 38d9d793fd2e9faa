"""Training data: the schema, builders from the shared formats and manifests, loading, splits, and the seeded
clip datasets and collator."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import sample_pose_file
from datasets import ClassLabel, DatasetDict, IterableDataset

from msmae.configuration_msmae import MSMAEConfig
from msmae.data.discovery import find_clips
from msmae.keypoint_layout import NUM_STORED_KEYPOINTS
from msmae.pose_io import SignPose
from msmae.processing_msmae import MSMAEPoseProcessor
from msmae.training.collator import ClipSampler, PoseClipDataset, PoseCollator, clip_dataset
from msmae.data.loading import (
    dataset_from_asl_app,
    dataset_from_manifest,
    dataset_from_msl150,
    dataset_from_records,
    load_pose_corpus,
    load_sign_dataset,
    pose_features,
    split_dataset,
)
from msmae.training.synthetic import synthetic_pretraining_dataset, synthetic_sign_clips, synthetic_sign_dataset


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("datasets-cache"))


@pytest.fixture(scope="module")
def signs(cache):
    return synthetic_sign_dataset(num_classes=4, clips_per_class=6, num_signers=3, seed=0, cache_dir=cache)


def test_schema_features():
    features = pose_features(["a", "b"], text=True, signer=True, split=True)
    assert features["keypoints"].shape == (None, NUM_STORED_KEYPOINTS, 4)
    assert features["keypoint_mask"].shape == (None, NUM_STORED_KEYPOINTS)
    assert isinstance(features["label"], ClassLabel) and features["label"].names == ["a", "b"]
    assert {"text", "signer", "split", "fps", "width", "height", "num_frames", "source"} <= set(features)
    assert "label" not in pose_features()


def test_synthetic_clips_are_deterministic_and_class_dependent():
    first = synthetic_sign_clips(num_classes=3, clips_per_class=2, seed=5)
    again = synthetic_sign_clips(num_classes=3, clips_per_class=2, seed=5)
    for (a, label_a, _), (b, label_b, _) in zip(first, again):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert label_a == label_b
    pose = first[0][0]
    assert pose.keypoints.shape[1:] == (NUM_STORED_KEYPOINTS, 4) and np.isfinite(pose.keypoints).all()
    xy = pose.keypoints[..., :2][pose.keypoint_mask]
    assert xy.min() > -0.5 and xy.max() < 1.5  # normalised to the frame, as MediaPipe gives them
    # The right wrist (body index 5) moves along a class-specific path: mean paths of two classes differ.
    def mean_path(label):
        paths = [p.keypoints[:, 5, :2] for p, lab, _ in first if lab == label]
        return np.mean([np.interp(np.linspace(0, 1, 20), np.linspace(0, 1, len(x)), x[:, 0]) for x in paths], 0)
    assert np.abs(mean_path(0) - mean_path(1)).max() > 0.02


def test_synthetic_dataset_columns(signs, cache):
    assert len(signs) == 24
    assert signs.features["label"].names[0] == "motion-00"
    assert len(set(signs["signer"])) == 3
    corpus = synthetic_pretraining_dataset(num_clips=3, seed=1, cache_dir=cache)
    assert len(corpus) == 3 and min(corpus["num_frames"]) >= 90 and "label" not in corpus.column_names


def test_records_skip_unreadable_clip(tmp_path, cache, caplog):
    good = sample_pose_file(tmp_path, "asl-app-100/hello")  # a real clip shipped with msmae, as a .pose file
    bad = tmp_path / "empty.pose"  # as met in the wild: an empty file
    bad.write_bytes(b"")
    dataset = dataset_from_records([{"path": good}, {"path": bad}], cache_dir=cache)
    assert len(dataset) == 1 and dataset[0]["source"] == str(good)
    assert "empty.pose" in caplog.text
    with pytest.raises(ValueError, match="None of the 1 clips"):
        dataset_from_records([{"path": bad}], cache_dir=cache)


def test_msl150_and_asl_app(shared_data, cache):
    msl = dataset_from_msl150(shared_data / "msl150", cache_dir=cache)
    assert len(msl) == 86
    assert msl.features["label"].names == ["ambulancia", "doctor", "dolor", "hoy", "yo"]
    assert set(msl["num_frames"]) == {30}
    assert np.bincount(msl["label"]).tolist() == [11, 15, 20, 20, 20]
    row = msl.with_format("numpy")[0]
    assert row["keypoints"].shape == (30, NUM_STORED_KEYPOINTS, 4) and row["width"] == 1280
    asl = dataset_from_asl_app(shared_data / "asl-app-100", cache_dir=cache)
    assert len(asl) == 100 and len(asl.features["label"].names) == 100
    assert load_sign_dataset(shared_data / "msl150", cache_dir=cache).num_rows == 86  # layout detected


def test_pose_folder_and_corpus(shared_data, cache):
    clips = find_clips(shared_data / "signsuisse")
    assert len(clips) == 198 and all(p.endswith(".pose") for p in clips)
    assert len(find_clips(shared_data / "msl150" / "data" / "sample_npy")) == 86  # per-frame .npy folders
    corpus = load_pose_corpus([shared_data / "signsuisse", shared_data / "asl-app-100"], cache_dir=cache)
    assert len(corpus) == 298 and corpus.column_names == list(pose_features())
    assert sum(corpus["num_frames"]) > 20_000


def _write_manifest(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_of_pose_files(tmp_path, cache):
    folder = tmp_path / "clips"
    folder.mkdir()
    names = ["msl150/hoy/1", "msl150/yo/1", "asl-app-100/hello", "asl-app-100/goodbye"]  # real clips shipped with msmae
    for i, name in enumerate(names):
        shutil.move(sample_pose_file(tmp_path / "poses", name), folder / f"clip{i}.pose")
    rows = [
        {"path": f"clips/clip{i}.pose", "label": "hello" if i % 2 else "thanks", "signer": f"s{i // 2}",
         "split": "test" if i == 3 else "train"}
        for i in range(4)
    ]
    dataset = dataset_from_manifest(_write_manifest(tmp_path / "manifest.csv", rows), cache_dir=cache)
    assert dataset.features["label"].names == ["hello", "thanks"]
    assert dataset["signer"] == ["s0", "s0", "s1", "s1"]
    assert load_sign_dataset(tmp_path / "manifest.csv", cache_dir=cache).num_rows == 4
    splits = split_dataset(dataset)  # the manifest's own split column wins
    assert len(splits["train"]) == 3 and len(splits["test"]) == 1

    with pytest.raises(FileNotFoundError, match="row 1: no such file"):
        dataset_from_manifest(_write_manifest(tmp_path / "missing.csv", [{"path": "nope.pose", "label": "x"}]))
    with pytest.raises(ValueError, match="`path` column"):
        dataset_from_manifest(_write_manifest(tmp_path / "nopath.csv", [{"file": "a.pose"}]))
    with pytest.raises(ValueError, match="msmae extract --manifest"):  # clips inside videos need extraction
        dataset_from_manifest(_write_manifest(tmp_path / "ranged.csv", [{"path": "clips/clip0.pose", "start": "1"}]))
    with pytest.raises(ValueError, match="split must be one of"):
        dataset_from_manifest(_write_manifest(tmp_path / "badsplit.csv", [{"path": "clips/clip0.pose", "split": "dev"}]))


@pytest.mark.slow
def test_manifest_of_videos_runs_mediapipe(shared_data, tmp_path, cache):
    pytest.importorskip("mediapipe")
    video = shared_data / "pose-format-samples" / "test_video.mp4"
    manifest = _write_manifest(tmp_path / "videos.csv", [{"path": str(video), "label": "sample", "text": "hi"}])
    dataset = dataset_from_manifest(manifest, cache_dir=cache)
    row = dataset.with_format("numpy")[0]
    assert row["num_frames"] == 58 and row["text"] == "hi"
    assert row["keypoint_mask"][:, :6].all(1).mean() > 0.9  # the signer's upper body in almost every frame
    assert row["keypoint_mask"][:, 6:48].any()  # and hands where MediaPipe found them


def test_load_saved_parquet_extracted_and_streaming(signs, tmp_path, cache):
    signs.save_to_disk(str(tmp_path / "saved"))
    assert load_sign_dataset(tmp_path / "saved").num_rows == len(signs)
    (tmp_path / "shards").mkdir()
    signs.select(range(10)).to_parquet(str(tmp_path / "shards" / "train-00000.parquet"))
    signs.select(range(10, 14)).to_parquet(str(tmp_path / "shards" / "test-00000.parquet"))
    shards = load_sign_dataset(tmp_path / "shards", cache_dir=cache)
    assert isinstance(shards, DatasetDict) and shards["train"].num_rows == 10 and shards["test"].num_rows == 4
    # `msmae extract`'s layout: data/train-<hash>.parquet plus extraction_info.json.
    (tmp_path / "extracted" / "data").mkdir(parents=True)
    signs.select(range(5)).to_parquet(str(tmp_path / "extracted" / "data" / "train-0123456789abcdef.parquet"))
    (tmp_path / "extracted" / "extraction_info.json").write_text(json.dumps({}))
    assert load_sign_dataset(tmp_path / "extracted", cache_dir=cache).num_rows == 5
    stream = load_sign_dataset(tmp_path / "saved", streaming=True)
    assert isinstance(stream, IterableDataset)
    assert next(iter(stream))["source"] == signs[0]["source"]
    with pytest.raises(FileNotFoundError):
        load_sign_dataset(tmp_path / "does" / "not" / "exist")


def test_split_by_signer_keeps_signers_apart(cache):
    dataset = synthetic_sign_dataset(num_classes=3, clips_per_class=10, num_signers=5, seed=1, cache_dir=cache)
    splits = split_dataset(dataset, validation_size=0.2, test_size=0.2, seed=3)
    signers = {name: set(split["signer"]) for name, split in splits.items()}
    assert set(splits) == {"train", "validation", "test"} and all(signers.values())
    assert not (signers["train"] & signers["validation"]) and not (signers["train"] & signers["test"])
    assert not (signers["validation"] & signers["test"])
    assert sum(len(s) for s in splits.values()) == len(dataset)
    again = split_dataset(dataset, validation_size=0.2, test_size=0.2, seed=3)
    assert again["test"]["source"] == splits["test"]["source"]


def test_split_stratified_without_signers(signs):
    dataset = signs.remove_columns("signer")
    splits = split_dataset(dataset, validation_size=0.25, test_size=0.25, seed=0)
    for name in ("validation", "test"):
        assert sorted(set(splits[name]["label"])) == [0, 1, 2, 3]  # every sign in every split
    assert sum(len(s) for s in splits.values()) == len(dataset)
    only_train = split_dataset(dataset, validation_size=0.25, test_size=0.0)
    assert set(only_train) == {"train", "validation"}
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(dataset, validation_size=0.6, test_size=0.5)


def test_clip_dataset_is_seeded_by_epoch_and_index(signs):
    processor = MSMAEPoseProcessor.from_preset("recognition", num_frames=16)
    train = PoseClipDataset(signs, ClipSampler(processor, training=True, label_column="label", masking=MSMAEConfig()), seed=7)
    first = train[3]
    assert first["pose_values"].shape == (16, 48, 2) and first["noise"].shape == (3, 8)
    assert first["labels"] == signs[3]["label"]
    again = PoseClipDataset(signs, ClipSampler(processor, training=True, label_column="label", masking=MSMAEConfig()), seed=7)[3]
    for key in ("pose_values", "keypoint_mask", "noise"):
        np.testing.assert_array_equal(first[key], again[key])  # same clip, epoch and seed: same draw
    train.set_epoch(1)
    assert not np.array_equal(train[3]["pose_values"], first["pose_values"])  # a new epoch draws anew
    evaluation = PoseClipDataset(signs, ClipSampler(processor, training=False, label_column="label"), seed=7)
    np.testing.assert_array_equal(evaluation[3]["pose_values"], evaluation[3]["pose_values"])
    with pytest.raises(ValueError, match="no label column 'gloss'"):
        PoseClipDataset(signs, ClipSampler(processor, training=True, label_column="gloss"))


def test_collator_pads_to_model_inputs(signs):
    processor = MSMAEPoseProcessor.from_preset("pretraining", window_size=40, num_frames=20)
    data = PoseClipDataset(signs, ClipSampler(processor, training=True, masking=MSMAEConfig()), seed=0)
    items = [data[i] for i in range(4)]
    lengths = [len(item["pose_values"]) for item in items]
    batch = PoseCollator(processor, masking=MSMAEConfig())(items)
    assert set(batch) == {"pose_values", "keypoint_mask", "attention_mask", "noise"}
    longest = max(lengths)
    assert batch["pose_values"].shape == (4, longest, 48, 2)
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["noise"].shape == (4, 3, -(-longest // 2))
    for i, item in enumerate(items):
        torch.testing.assert_close(batch["noise"][i, :, : item["noise"].shape[1]], torch.from_numpy(item["noise"]))


def test_streaming_clip_dataset(signs):
    processor = MSMAEPoseProcessor.from_preset("recognition", num_frames=8)
    stream = clip_dataset(signs.to_iterable_dataset(), ClipSampler(processor, training=True, label_column="label"), seed=1)
    items = list(stream)
    assert len(items) == len(signs) and items[0]["pose_values"].shape == (8, 48, 2)
    again = list(clip_dataset(signs.to_iterable_dataset(), ClipSampler(processor, training=True, label_column="label"), seed=1))
    np.testing.assert_array_equal(items[5]["pose_values"], again[5]["pose_values"])


def test_processed_clip_matches_processor_on_same_pose(signs):
    """The dataset path gives the processor's own output for a clip (evaluation mode: no randomness)."""
    processor = MSMAEPoseProcessor.from_preset("recognition", num_frames=12)
    item = PoseClipDataset(signs, ClipSampler(processor, training=False))[2]
    row = signs.with_format("numpy")[2]
    direct = processor(SignPose.from_example(row), return_tensors="np")
    np.testing.assert_allclose(item["pose_values"], direct["pose_values"][0])
