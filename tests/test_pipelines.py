"""Sign-language pipelines (`msmae.pipeline_msmae`): inputs, batching, results, and loading a saved checkpoint with
`pipeline(..., trust_remote_code=True)` in a fresh Python process that cannot import msmae."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import (
    LABELS,
    WORDS,
    run_without_msmae,
    save_tiny_classifier,
    save_tiny_encoder,
    save_tiny_translator,
    synthetic_clip,
    tiny_overrides,
)
from transformers import pipeline

from msmae import MSMAEForSignClassification, MSMAEModel
from msmae.pipeline_msmae import (
    EMBEDDING_TASK,
    RECOGNITION_TASK,
    TRANSLATION_TASK,
    SignLanguageRecognitionPipeline,
)
from msmae.hub_packaging import add_pipeline_to_checkpoint
from msmae.clips import load_pose
from msmae.processing_msmae import MSMAEPoseProcessor


# ---- tiny checkpoints and clips: save_tiny_* in conftest -----------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"))


@pytest.fixture(scope="module")
def classifier(classifier_dir):
    return MSMAEForSignClassification.from_pretrained(classifier_dir).eval()


@pytest.fixture(scope="module")
def recognizer(classifier):
    return pipeline(RECOGNITION_TASK, model=classifier, device="cpu")


def expected_scores(model, processor, clip):
    """Label -> probability, computed by hand: processor, model, softmax."""
    with torch.no_grad():
        probabilities = model(**processor(clip, return_tensors="pt")).logits.softmax(-1)[0]
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}


def assert_same_results(results, others):
    assert [[r["label"] for r in result] for result in results] == [[r["label"] for r in other] for other in others]
    scores = [[r["score"] for r in result] for result in results]
    np.testing.assert_allclose(scores, [[r["score"] for r in other] for other in others], atol=1e-5)


def assert_matches(result, expected, top_k):
    assert [r["label"] for r in result] == sorted(expected, key=expected.get, reverse=True)[:top_k]
    for entry in result:
        assert entry["score"] == pytest.approx(expected[entry["label"]], abs=1e-5)


# ---- checkpoints -------------------------------------------------------------------------------------------------------


def test_checkpoint_carries_the_pipeline(classifier_dir):
    config = json.loads((classifier_dir / "config.json").read_text())
    assert config["custom_pipelines"] == {  # under the Hub's task name, the only entry: transformers infers it
        "video-classification": {
            "impl": "pipeline_msmae.SignLanguageRecognitionPipeline",
            "pt": ["AutoModelForVideoClassification"],
        }
    }
    assert config["auto_map"]["AutoModelForVideoClassification"] == "modeling_msmae.MSMAEForSignClassification"
    files = {path.name for path in classifier_dir.iterdir()}
    # The pipeline and everything it imports relatively (processor, readers, MediaPipe extraction, embeddings).
    assert {"pipeline_msmae.py", "processing_msmae.py", "pose_io.py", "holistic.py", "embeddings.py"} <= files
    assert "preprocessor_config.json" in files


def test_add_pipeline_to_checkpoint_arguments(tmp_path, classifier_dir):
    with pytest.raises(FileNotFoundError, match="config.json"):
        add_pipeline_to_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="Unknown task"):
        add_pipeline_to_checkpoint(classifier_dir, task="sign-language-dancing")
    encoder_dir = save_tiny_encoder(tmp_path / "encoder")
    assert add_pipeline_to_checkpoint(encoder_dir, task=[EMBEDDING_TASK, RECOGNITION_TASK]) == [
        EMBEDDING_TASK, RECOGNITION_TASK
    ]
    custom = json.loads((encoder_dir / "config.json").read_text())["custom_pipelines"]
    assert custom["feature-extraction"]["pt"] == ["AutoModel"] and "video-classification" in custom
    plain = tmp_path / "plain"  # saved without `import msmae` registering the classes: no auto_map, no remote code
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "msmae", "architectures": ["MSMAEForSignClassification"]}))
    with pytest.raises(ValueError, match="no auto_map entry for AutoModelForVideoClassification"):
        add_pipeline_to_checkpoint(plain)


# ---- recognition in process ----------------------------------------------------------------------------------------


def test_recognition_of_every_kind_of_clip(recognizer, classifier, tmp_path):
    processor = recognizer.feature_extractor
    assert isinstance(processor, MSMAEPoseProcessor) and processor.num_frames == 32  # the checkpoint's own
    clip = synthetic_clip(50, seed=0, source="clip")
    expected = expected_scores(classifier, processor, clip)
    npz = tmp_path / "clip.npz"
    np.savez(npz, **{k: v for k, v in clip.to_example().items() if k != "source"})
    model_ready = processor(clip)  # already normalised and sampled: the pipeline passes it straight to the model
    inputs = {
        "SignPose": clip,
        "landmark array": clip.keypoints,  # (frames, 160, 4) in the stored order
        ".npz path": str(npz),
        "dataset row": clip.to_example(),
        "model-ready dict": {"pose_values": model_ready["pose_values"][0], "keypoint_mask": model_ready["keypoint_mask"][0]},
    }
    for kind, value in inputs.items():
        kwargs = {"load_kwargs": {"width": 640, "height": 480}} if kind == "landmark array" else {}
        result = recognizer(value, top_k=3, **kwargs)
        assert len(result) == 3, kind
        assert_matches(result, expected, top_k=3)
    everything = recognizer(clip, top_k=100)  # capped at the number of labels
    assert len(everything) == len(LABELS) and sum(r["score"] for r in everything) == pytest.approx(1.0)
    logits = recognizer(clip, top_k=1, function_to_apply="none")[0]["score"]
    with torch.no_grad():
        assert logits == pytest.approx(float(classifier(**processor(clip, return_tensors="pt")).logits.max()), abs=1e-5)


def test_batches_give_the_same_results_as_single_clips(recognizer, classifier):
    clips = [synthetic_clip(frames, seed) for seed, frames in enumerate([12, 70, 33, 5, 40])]
    single = [recognizer(clip) for clip in clips]
    assert_same_results(recognizer(clips, batch_size=2), single)
    # Model-ready inputs of different lengths are padded together (attention_mask 0 on the padding).
    ready = [recognizer.feature_extractor(clip, return_tensors="pt") for clip in clips]
    ready = [{k: v[0, : 8 + 7 * i] for k, v in r.items() if k != "attention_mask"} for i, r in enumerate(ready)]
    batched = recognizer(ready, batch_size=5, top_k=5)
    for clip_inputs, result in zip(ready, batched):
        with torch.no_grad():
            logits = classifier(**{k: v[None] for k, v in clip_inputs.items()}).logits.softmax(-1)[0]
        assert_matches(result, {LABELS[i]: float(p) for i, p in enumerate(logits)}, top_k=5)


def test_bad_clips_are_named(recognizer, tmp_path):
    missing = tmp_path / "nowhere.pose"
    with pytest.raises(FileNotFoundError, match="nowhere.pose"):
        recognizer(str(missing))
    with pytest.raises(ValueError, match=r"array of shape \(10, 7, 2\)"):
        recognizer(np.zeros((10, 7, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"pose_values.*\(frames, 48, 2\)"):
        recognizer({"pose_values": np.zeros((10, 60, 2), dtype=np.float32)})
    with pytest.raises(ValueError, match="top_k"):
        recognizer(synthetic_clip(10, 0), top_k=0)


def test_recognition_of_real_pose_files(recognizer, classifier, shared_data):
    paths = [shared_data / "pose-format-samples" / "mediapipe.pose", shared_data / "asl-app-100" / "signs" / "book.json"]
    paths = [p for p in paths if p.exists()] or pytest.skip("sample files not found")
    results = recognizer([str(p) for p in paths], batch_size=2, top_k=2)
    for path, result in zip(paths, results):
        assert_matches(result, expected_scores(classifier, recognizer.feature_extractor, load_pose(path)), top_k=2)


def test_device_choice(classifier):
    pipe = pipeline(RECOGNITION_TASK, model=classifier, device="cpu")
    assert pipe.device.type == "cpu" and pipe.model.device.type == "cpu"
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device to compare with")
    clip = synthetic_clip(30, seed=4)
    on_gpu = pipeline(RECOGNITION_TASK, model=MSMAEForSignClassification.from_pretrained(classifier.name_or_path), device="cuda")
    assert on_gpu.model.device.type == "cuda"
    assert_same_results([on_gpu(clip)], [pipe(clip)])


def test_installed_pipeline_serves_a_checkpoint_path_without_remote_code(classifier_dir, classifier):
    recognizer = pipeline(RECOGNITION_TASK, model=str(classifier_dir))
    assert type(recognizer) is SignLanguageRecognitionPipeline  # the installed class, not the checkpoint's copy
    assert type(recognizer.model).__module__ == "msmae.modeling_msmae"
    clip = synthetic_clip(40, seed=6)
    assert_matches(recognizer(clip), expected_scores(classifier, recognizer.feature_extractor, clip), top_k=5)
    saved = json.loads((classifier_dir / "config.json").read_text())["custom_pipelines"]
    assert recognizer.model.config.to_dict()["custom_pipelines"] == saved  # saved again unchanged


# ---- translation in process ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator_dir(tmp_path_factory):
    return save_tiny_translator(tmp_path_factory.mktemp("translation") / "translator")


def test_translation_pipeline_decodes_generate(translator_dir):
    from transformers import AutoTokenizer

    from msmae.modeling_sign_translation import SignTranslationModel

    model = SignTranslationModel.from_pretrained(translator_dir).eval()
    translator = pipeline(TRANSLATION_TASK, model=model, device="cpu")
    assert translator.feature_extractor.sampling == "full"
    tokenizer = AutoTokenizer.from_pretrained(translator_dir, config=model.config)
    clips = [synthetic_clip(frames, seed) for seed, frames in enumerate([30, 9, 52])]
    texts = []
    for clip in clips:
        with torch.no_grad():
            ids = model.generate(**translator.feature_extractor(clip, return_tensors="pt"), max_new_tokens=6, min_new_tokens=2)
        texts.append(tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    assert any(texts) and all(set(t.split()) <= set(WORDS) for t in texts)
    single = [translator(clip, max_new_tokens=6, min_new_tokens=2)[0]["translation_text"] for clip in clips]
    assert single == texts
    batched = translator(clips, batch_size=3, max_new_tokens=6, min_new_tokens=2)  # clips of different lengths, padded together
    assert [r[0]["translation_text"] for r in batched] == texts


def test_translation_needs_a_generating_model(classifier):
    with pytest.raises(TypeError, match="generate"):
        pipeline(TRANSLATION_TASK, model=MSMAEModel(classifier.config))


# ---- a fresh process without msmae ---------------------------------------------------------------------------------

FRESH_PROCESS = """
import json, sys
from transformers import pipeline

results = {}
for task, checkpoint, clips, kwargs in json.loads(sys.argv[1]):
    pipe = pipeline(task, model=checkpoint, trust_remote_code=True, device="cpu")
    results[task] = {"module": type(pipe).__module__, "outputs": [pipe(clip, **kwargs) for clip in clips]}
results["msmae_imported"] = any(
    m == "msmae" or m.startswith("msmae.") for m, module in sys.modules.items() if module is not None
)
print("RESULTS" + json.dumps(results))
"""


def run_fresh_process(jobs, tmp_path):
    result = run_without_msmae(FRESH_PROCESS, json.dumps(jobs), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULTS"))
    return json.loads(line.removeprefix("RESULTS"))


@pytest.mark.slow
def test_checkpoints_load_with_trust_remote_code_where_msmae_is_missing(classifier_dir, classifier, translator_dir, tmp_path):
    encoder_dir = save_tiny_encoder(tmp_path / "encoder")
    clip = synthetic_clip(45, seed=5)
    clip_file = tmp_path / "clip.npz"
    np.savez(clip_file, **{k: v for k, v in clip.to_example().items() if k != "source"})
    results = run_fresh_process(
        [
            [RECOGNITION_TASK, str(classifier_dir), [str(clip_file)], {"top_k": 5}],
            [TRANSLATION_TASK, str(translator_dir), [str(clip_file)], {"max_new_tokens": 6, "min_new_tokens": 2}],
            [EMBEDDING_TASK, str(encoder_dir), [str(clip_file)], {}],
        ],
        tmp_path,
    )
    assert results["msmae_imported"] is False
    for task in (RECOGNITION_TASK, TRANSLATION_TASK, EMBEDDING_TASK):
        assert results[task]["module"].startswith("transformers_modules."), task  # the checkpoint's own code

    recognizer = pipeline(RECOGNITION_TASK, model=classifier)
    assert_matches(results[RECOGNITION_TASK]["outputs"][0], expected_scores(classifier, recognizer.feature_extractor, clip), 5)

    from msmae.modeling_sign_translation import SignTranslationModel

    translator = pipeline(TRANSLATION_TASK, model=SignTranslationModel.from_pretrained(translator_dir))
    assert results[TRANSLATION_TASK]["outputs"][0] == translator(clip, max_new_tokens=6, min_new_tokens=2)

    encoder = MSMAEModel.from_pretrained(encoder_dir)
    embedder = pipeline(EMBEDDING_TASK, model=encoder)
    np.testing.assert_allclose(results[EMBEDDING_TASK]["outputs"][0], embedder(clip), atol=1e-5)


def train_tiny_classifier(shared_data, output_dir) -> Path:
    """A tiny classifier fine-tuned for two steps on MSL-150 by examples/run_sign_classification.py."""
    script = Path(__file__).resolve().parents[1] / "examples" / "run_sign_classification.py"
    overrides = tiny_overrides(num_hidden_layers=1)
    command = [
        sys.executable, str(script), "--dataset_name", str(shared_data / "msl150"), "--config_overrides", overrides,
        "--output_dir", str(output_dir), "--do_train", "--max_steps", "2", "--per_device_train_batch_size", "8",
        "--warmup_epochs", "0", "--report_to", "none", "--dataloader_num_workers", "0", "--seed", "0",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=output_dir.parent)
    assert result.returncode == 0, result.stderr[-5000:]
    config = json.loads((output_dir / "config.json").read_text())
    assert "video-classification" in config["custom_pipelines"]  # save_pretrained adds the pipeline
    return output_dir


@pytest.mark.slow
def test_fresh_process_classifies_a_real_video(shared_data, tmp_path):
    pytest.importorskip("mediapipe")
    checkpoint = train_tiny_classifier(shared_data, tmp_path / "msl150-classifier")
    video = shared_data / "pose-format-samples" / "test_video.mp4"
    pose_file = shared_data / "pose-format-samples" / "mediapipe.pose"
    results = run_fresh_process([[RECOGNITION_TASK, str(checkpoint), [str(video), str(pose_file)], {"top_k": 5}]], tmp_path)
    assert results["msmae_imported"] is False
    from_video, from_pose = results[RECOGNITION_TASK]["outputs"]
    assert {r["label"] for r in from_video} == {"ambulancia", "doctor", "dolor", "hoy", "yo"}  # MSL-150's glosses

    from msmae.holistic import extract_video

    model = MSMAEForSignClassification.from_pretrained(checkpoint).eval()
    processor = MSMAEPoseProcessor.from_pretrained(checkpoint)
    assert_matches(from_video, expected_scores(model, processor, extract_video(video)), top_k=5)
    assert_matches(from_pose, expected_scores(model, processor, load_pose(pose_file)), top_k=5)


@pytest.mark.slow
def test_frame_arrays_go_through_mediapipe(recognizer, classifier, shared_data):
    pytest.importorskip("mediapipe")
    from msmae.holistic import VideoReader, extract_frames

    with VideoReader(shared_data / "pose-format-samples" / "test_video.mp4") as video:
        frames = np.stack([frame for _, frame in zip(range(20), video)])
    result = recognizer(frames, top_k=5, load_kwargs={"fps": 29.97})
    expected = expected_scores(classifier, recognizer.feature_extractor, extract_frames(frames, 29.97))
    assert_matches(result, expected, top_k=5)
