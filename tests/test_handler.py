"""`handler.py` (the Inference Endpoints convention) in every checkpoint, called as the endpoint runtime calls it: loaded
from the checkpoint folder in a fresh process where msmae cannot be imported, `EndpointHandler(path)`, then one call
per request body."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_without_msmae, save_tiny_translator, synthetic_clip
from huggingface_hub import ModelCard
from transformers import pipeline

from msmae.handler import decode_video
from msmae.clips import bytes_suffix as video_suffix  # the one signature check, which the pipeline applies
from msmae.pipeline_msmae import EMBEDDING_TASK, RECOGNITION_TASK, TRANSLATION_TASK

# As huggingface-inference-toolkit's check_and_register_custom_pipeline_from_directory: the folder on sys.path, the
# file imported by location, EndpointHandler built with the folder. Each request is a JSON body (or raw bytes).
ENDPOINT = """
import importlib.util, json, sys
model_dir, requests = sys.argv[1], json.loads(open(sys.argv[2]).read())
sys.path.insert(0, model_dir)
spec = importlib.util.spec_from_file_location("handler.EndpointHandler", model_dir + "/handler.py")
module = importlib.util.module_from_spec(spec)
sys.modules["handler.EndpointHandler"] = module
spec.loader.exec_module(module)
endpoint = module.EndpointHandler(model_dir)
answers = []
for request in requests:
    if "raw_file" in request:  # a binary request body: the runtime passes the bytes as inputs
        request = {"inputs": open(request.pop("raw_file"), "rb").read(), **request}
    try:
        answers.append({"ok": endpoint(request)})
    except ValueError as error:
        answers.append({"error": str(error)})
imported = [name for name, m in sys.modules.items() if m is not None and name.split(".")[0] == "msmae"]
print("ANSWERS" + json.dumps({"answers": answers, "msmae_imported": imported}))
"""


def call_endpoint(checkpoint, requests, tmp_path):
    request_file = tmp_path / "requests.json"
    request_file.write_text(json.dumps(requests))
    result = run_without_msmae(ENDPOINT, checkpoint, request_file, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("ANSWERS"))
    answers = json.loads(line.removeprefix("ANSWERS"))
    assert answers["msmae_imported"] == []
    return answers["answers"]


def test_video_suffix_and_decoding(sample_video):
    video = sample_video.read_bytes()
    assert video_suffix(video) == ".mp4"
    assert video_suffix(b"\x1a\x45\xdf\xa3" + bytes(20)) == ".webm"
    assert video_suffix(b"RIFF\0\0\0\0AVI LIST") == ".avi"
    with pytest.raises(ValueError, match="not a video"):
        video_suffix(b"%PDF-1.7 hello")
    text = base64.b64encode(video).decode()
    assert decode_video(text) == video == decode_video(f"data:video/mp4;base64,{text}") == decode_video(video)
    with pytest.raises(ValueError, match="not base64"):
        decode_video("hello.mp4")
    with pytest.raises(ValueError, match="base64 text or raw bytes"):
        decode_video(12)


def test_every_demo_checkpoint_carries_the_handler(demo_output):
    import msmae.handler

    for name in ("pretraining", "sign-classification"):
        assert (demo_output / name / "handler.py").read_bytes() == Path(msmae.handler.__file__).read_bytes(), name
        # and serves one task, under the Hub's name, so that transformers infers it; the card's pipeline_tag is that
        # name, so the snippet the Hub shows for it, pipeline(pipeline_tag, model=repo, trust_remote_code=True), works
        custom = json.loads((demo_output / name / "config.json").read_text())["custom_pipelines"]
        card = ModelCard.load(demo_output / name / "README.md")
        assert list(custom) == [card.data.pipeline_tag], name


@pytest.mark.slow
def test_endpoint_recognises_a_video_sent_as_base64_or_raw_bytes(demo_output, sample_video, tmp_path):
    pytest.importorskip("mediapipe")
    checkpoint = demo_output / "sign-classification"
    video = sample_video
    encoded = base64.b64encode(video.read_bytes()).decode()
    answers = call_endpoint(
        checkpoint,
        [
            {"inputs": encoded, "parameters": {"top_k": 3}},
            {"raw_file": str(video)},
            {"inputs": "not a video"},
            {"inputs": encoded, "parameters": {"top_k": 0}},
        ],
        tmp_path,
    )
    expected = pipeline(RECOGNITION_TASK, model=str(checkpoint))(str(video), top_k=5)
    by_base64, by_bytes = answers[0]["ok"], answers[1]["ok"]
    assert [r["label"] for r in by_base64] == [r["label"] for r in expected[:3]]
    assert [r["label"] for r in by_bytes] == [r["label"] for r in expected]  # the pipeline's default top 5
    np.testing.assert_allclose([r["score"] for r in by_bytes], [r["score"] for r in expected], atol=1e-5)
    assert "not base64" in answers[2]["error"]
    assert "top_k must be at least 1" in answers[3]["error"]


@pytest.mark.slow
def test_endpoint_embeds_and_translates_model_ready_inputs(demo_output, tmp_path):
    from msmae.modeling_sign_translation import SignTranslationModel

    translator_dir = save_tiny_translator(tmp_path / "translator")
    encoder_dir = demo_output / "pretraining"
    clip = synthetic_clip(40, seed=3)
    embedder = pipeline(EMBEDDING_TASK, model=str(encoder_dir))
    inputs = embedder.feature_extractor(clip, return_tensors="np")
    request = {"inputs": {"pose_values": inputs["pose_values"][0].tolist(), "keypoint_mask": inputs["keypoint_mask"][0].tolist()}}
    [embedding] = call_endpoint(encoder_dir, [request], tmp_path)
    np.testing.assert_allclose(embedding["ok"], embedder(clip), atol=1e-5)

    translator = pipeline(TRANSLATION_TASK, model=SignTranslationModel.from_pretrained(translator_dir))
    inputs = translator.feature_extractor(clip, return_tensors="np")
    request = {
        "inputs": {"pose_values": inputs["pose_values"][0].tolist(), "keypoint_mask": inputs["keypoint_mask"][0].tolist()},
        "parameters": {"max_new_tokens": 6, "min_new_tokens": 2},
    }
    [translation] = call_endpoint(translator_dir, [request], tmp_path)
    assert translation["ok"] == translator(clip, max_new_tokens=6, min_new_tokens=2)
    assert translation["ok"][0]["translation_text"]


# ---- point 1: any folder an msmae script or save_pretrained writes serves pipeline(model=path, trust_remote_code=True)

ANY_TASK_NAME = """
import json, sys
from transformers import pipeline
jobs, clip = json.loads(sys.argv[1]), sys.argv[2]
results = {}
for folder, tasks, kwargs in jobs:
    for task in tasks:  # None: inferred from config.json
        pipe = pipeline(task, model=folder, trust_remote_code=True, device="cpu")
        results[f"{folder}|{task}"] = {"class": type(pipe).__name__, "module": type(pipe).__module__,
                                       "output": pipe(clip, **kwargs)}
imported = [name for name, m in sys.modules.items() if m is not None and name.split(".")[0] == "msmae"]
print("RESULTS" + json.dumps({"results": results, "msmae_imported": imported}))
"""


@pytest.mark.slow
def test_checkpoints_serve_with_the_task_inferred_or_named_without_msmae(demo_output, tmp_path):
    translator_dir = save_tiny_translator(tmp_path / "translator")
    clip = synthetic_clip(45, seed=7)
    clip_file = tmp_path / "clip.npz"
    np.savez(clip_file, **{k: v for k, v in clip.to_example().items() if k != "source"})
    classifier = demo_output / "sign-classification"
    trainer_checkpoint = next(classifier.glob("checkpoint-*"))  # the Trainer's own save, mid-training
    jobs = [
        [str(classifier), [None, "video-classification", RECOGNITION_TASK], {"top_k": 3}],
        [str(trainer_checkpoint), [None], {"top_k": 3}],
        [str(demo_output / "pretraining"), [None, "feature-extraction", EMBEDDING_TASK], {}],
        [str(translator_dir), [None, "translation", TRANSLATION_TASK], {"max_new_tokens": 5, "min_new_tokens": 2}],
    ]
    result = run_without_msmae(ANY_TASK_NAME, json.dumps(jobs), clip_file, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    answers = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULTS"))[7:])
    assert answers["msmae_imported"] == []
    expected_class = {str(classifier): "SignLanguageRecognitionPipeline", str(trainer_checkpoint): "SignLanguageRecognitionPipeline",
                      str(demo_output / "pretraining"): "SignLanguageEmbeddingPipeline",
                      str(translator_dir): "SignLanguageTranslationPipeline"}
    for folder, tasks, _ in jobs:
        outputs = []
        for task in tasks:
            answer = answers["results"][f"{folder}|{task}"]
            assert answer["class"] == expected_class[folder] and answer["module"].startswith("transformers_modules.")
            outputs.append(answer["output"])
        assert all(output == outputs[0] for output in outputs), folder  # every name, one pipeline

    from msmae.modeling_sign_translation import SignTranslationModel

    recognizer = pipeline(RECOGNITION_TASK, model=str(classifier))
    got = answers["results"][f"{classifier}|None"]["output"]
    assert [r["label"] for r in got] == [r["label"] for r in recognizer(clip, top_k=3)]
    embedder = pipeline(EMBEDDING_TASK, model=str(demo_output / "pretraining"))
    np.testing.assert_allclose(answers["results"][f"{demo_output / 'pretraining'}|None"]["output"], embedder(clip), atol=1e-5)
    translator = pipeline(TRANSLATION_TASK, model=SignTranslationModel.from_pretrained(translator_dir))
    assert answers["results"][f"{translator_dir}|None"]["output"] == translator(clip, max_new_tokens=5, min_new_tokens=2)


# ---- the request bodies huggingface-inference-toolkit hands a custom handler -------------------------------------------
# Its webservice deserialises `application/json` bodies with orjson (any other body type is refused for a video task
# before the handler: `video/*` is in no deserializer table, `application/octet-stream` resolves only for audio and
# image tasks), adds the URL's query parameters as `parameters` (numbers converted) when the body has none, and passes
# the dict to `EndpointHandler.__call__`; in Vertex AI mode the body is `{"instances": [...], "parameters": ...}`.


def test_the_handler_answers_the_bodies_the_toolkit_passes(tmp_path):
    from conftest import sample_pose_file, save_tiny_classifier

    from msmae.handler import EndpointHandler

    checkpoint = save_tiny_classifier(tmp_path / "ckpt")
    pose_file = sample_pose_file(tmp_path)
    encoded = base64.b64encode(pose_file.read_bytes()).decode()
    endpoint = EndpointHandler(str(checkpoint))
    expected = pipeline(RECOGNITION_TASK, model=str(checkpoint))(str(pose_file), top_k=3)

    def labels(answer):
        return [r["label"] for r in answer]

    # POST / with Content-Type: application/json, body {"inputs": "<base64>"} and ?top_k=3 in the URL
    assert labels(endpoint(json.loads(json.dumps({"inputs": encoded, "parameters": {"top_k": 3}})))) == labels(expected)
    # {"inputs": {"video": ...}}: a key the toolkit's media checks leave alone whatever the endpoint's task
    assert labels(endpoint({"inputs": {"video": encoded}, "parameters": {"top_k": 2}})) == labels(expected)[:2]
    answer = endpoint({"instances": [encoded, {"video": encoded}], "parameters": {"top_k": 1}})
    assert [labels(p) for p in answer["predictions"]] == [labels(expected)[:1]] * 2
    with pytest.raises(ValueError, match='"instances" must be a JSON list'):
        endpoint({"instances": encoded})
    with pytest.raises(ValueError, match='must be JSON with "inputs"'):
        endpoint({"data": encoded})
