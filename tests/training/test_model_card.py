"""Model cards and what `--push_to_hub` uploads, checked on a folder saved by the classification script."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import RecordingHfApi, run_classification_recipe, sample_clip_file
from huggingface_hub import ModelCard

from msmae.training.hub import files_to_upload
from msmae.training.model_card import build_model_card, write_model_card
from msmae.training.synthetic import synthetic_sign_dataset



def three_signs(folder, source=None):
    """A saved synthetic dataset of 3 signs x 4 clips by 3 signers; `source(i)` names clip i's source."""
    signs = synthetic_sign_dataset(num_classes=3, clips_per_class=4, num_signers=3, seed=0, cache_dir=str(folder / "cache"))
    if source is not None:
        signs = signs.map(lambda row, i: {"source": source(i)}, with_indices=True)
    signs.save_to_disk(str(folder / "signs"))
    return folder / "signs"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny fine-tuned model saved by examples/run_sign_classification.py (checkpoints included)."""
    folder = tmp_path_factory.mktemp("card")
    run_classification_recipe(
        three_signs(folder), folder / "out", "--do_eval", "--do_predict", "--eval_strategy", "steps", "--eval_steps", 2,
        "--save_strategy", "steps", "--save_steps", 2,
    )
    return folder / "out"


def test_upload_holds_model_code_processor_and_card(trained):
    files = files_to_upload(trained)
    required = {
        "README.md", "config.json", "model.safetensors", "preprocessor_config.json",
        "configuration_msmae.py", "modeling_msmae.py",
    }
    assert required <= set(files)
    assert (trained / "checkpoint-2").is_dir() and (trained / "training_args.bin").is_file()
    assert not [f for f in files if f.startswith("checkpoint-") or f == "training_args.bin" or f.startswith("_")]
    # Every class auto_map points to (model and processor) comes with its code file, and that file's own
    # relative imports come too: what trust_remote_code needs to load the repository.
    config = json.loads((trained / "config.json").read_text())
    processor = json.loads((trained / "preprocessor_config.json").read_text())
    modules = {v.split(".")[0] for v in {**config["auto_map"], **processor.get("auto_map", {})}.values()}
    assert {"configuration_msmae", "modeling_msmae"} <= modules
    pending, seen = list(modules), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        assert f"{module}.py" in files, module
        pending += re.findall(r"^from \.(\w+) import", (trained / f"{module}.py").read_text(), flags=re.M)
    assert config["id2label"] == {"0": "motion-00", "1": "motion-01", "2": "motion-02"}


def test_card_metadata_from_the_script(trained):
    card = ModelCard.load(trained / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "video-classification"
    assert {"sign-language", "pose", "mediapipe", "msmae"} <= set(data["tags"]) and data["license"] == "apache-2.0"
    assert "base_model" not in data and "datasets" not in data  # local paths are not Hub ids
    test = json.loads((trained / "test_results.json").read_text())
    # A local dataset is no Hub id: its results are in the card's table, not in the model-index.
    assert card.data.eval_results is None and "model-index" not in data
    table = card.text.split("## Evaluation", 1)[1]
    assert f"| test | Top-1 accuracy (per instance) | {test['test_top1']:.4f} |" in table
    assert f"| test | Top-5 accuracy (per instance) | {test['test_top5']:.4f} |" in table
    assert "trust_remote_code=True" in card.text and "revision" in card.text
    assert "## Intended use and limitations" in card.text and "pose estimator" in card.text
    assert str(trained.parent) not in card.content  # no local paths in a public card


def test_card_for_each_task_and_hub_metadata(trained, tmp_path):
    card = build_model_card(
        trained,
        task="sign-classification",
        repo_id="someone/msmae-msl150",
        base_model="someone/msmae-base",
        datasets=["/data/msl150", "someone/sign-poses"],
        eval_results=[
            {"metric": "top1", "type": "accuracy", "value": 0.9, "dataset": "MSL-150", "split": "test"},
            {"metric": "top1", "type": "accuracy", "value": 0.8, "dataset": "someone/sign-poses", "split": "test"},
        ],
    )
    data = card.data.to_dict()
    assert data["base_model"] == "someone/msmae-base" and data["datasets"] == ["someone/sign-poses"]
    assert data["language"] == ["mfs"]  # Mexican Sign Language, from the dataset name
    # Only results on a Hub dataset enter the model-index (its dataset `type` is a Hub id); the table has both.
    assert [r.dataset_type for r in card.data.eval_results] == ["someone/sign-poses"]
    assert data["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.8
    assert "| MSL-150 | test | top1 | 0.9000 |" in card.text and "| someone/sign-poses | test | top1 | 0.8000 |" in card.text
    assert 'repo_id = "someone/msmae-msl150"' in card.text
    assert build_model_card(trained, task="pretraining").data.pipeline_tag == "feature-extraction"
    generation = {"num_beams": 5, "max_length": 100, "length_penalty": 1.0, "checkpoint": "the highest bleu4"}
    translation = build_model_card(trained, task="translation", usage="print('custom')", generation=generation,
                                   eval_results=[{"metric": "bleu4", "value": 21.5, "dataset": "phoenix14t"}])
    assert translation.data.pipeline_tag == "translation" and "print('custom')" in translation.text
    table = translation.text.split("## Generation", 1)[1]
    assert "| num_beams | 5 |" in table and "| length_penalty | 1.0 |" in table
    # Settings are printed as given: a 5e-05 learning rate rounded to four decimals would read 0.0001.
    hyperparameters = {"learning_rate": 5e-05, "weight_decay": 0.05, "warmup_ratio": 0.0001234}
    procedure = build_model_card(trained, task="pretraining", hyperparameters=hyperparameters).text
    procedure = procedure.split("## Training procedure", 1)[1]
    assert "| learning_rate | 5e-05 |" in procedure and "| warmup_ratio | 0.0001234 |" in procedure
    assert "| checkpoint | the highest bleu4 |" in table and "TwoStreamSLT" in translation.text
    assert "## Generation" not in build_model_card(trained, task="translation").text
    # The text language of a translation model (its mBART-50 target code) is in `language` beside the sign language.
    translator = tmp_path / "translator"
    translator.mkdir()
    (translator / "config.json").write_text(json.dumps({"model_type": "msmae-sign-translation", "target_lang": "de_DE"}))
    assert build_model_card(translator, task="translation", datasets=["phoenix14t"]).data.language == ["gsg", "de"]
    with pytest.raises(ValueError, match="Unknown task"):
        build_model_card(trained, task="segmentation")
    # A local base model's card passes on the sign languages its pretraining saw.
    base = tmp_path / "base"
    base.mkdir()
    (base / "README.md").write_text("---\nlanguage:\n- sgg\n- ase\n---\n# base\n")
    data = build_model_card(trained, task="sign-classification", base_model=str(base), datasets=["msl150"]).data.to_dict()
    assert data["language"] == ["mfs", "sgg", "ase"] and "base_model" not in data


@pytest.mark.slow
def test_usage_snippet_runs_where_msmae_is_not_installed(trained, tmp_path):
    """The card's code, pasted into a process that cannot import msmae, loads the folder with
    trust_remote_code and classifies a real pose file (a clip shipped with msmae, saved as .npz)."""
    pose_file = sample_clip_file(tmp_path, "asl-app-100/hello")
    write_model_card(trained, task="sign-classification", repo_id="someone/tiny")
    snippet = re.search(r"```python\n(.*?)```", (trained / "README.md").read_text(), flags=re.S).group(1)
    snippet = snippet.replace('repo_id = "someone/tiny"', f"repo_id = {str(trained)!r}")
    snippet = snippet.replace('"sign.pose"', repr(str(pose_file)))
    script = tmp_path / "snippet.py"
    script.write_text("import sys\nsys.modules['msmae'] = None  # not installed\n" + snippet)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if re.match(r"motion-0\d: \d\.\d{3}$", line)]
    assert len(lines) == 3  # all three signs with probabilities, best first
    probabilities = [float(line.split(": ")[1]) for line in lines]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) == pytest.approx(1, abs=2e-3)


def test_push_to_hub_commits_exactly_the_intended_files(tmp_path, monkeypatch):
    import transformers.trainer

    import msmae.training.hub

    RecordingHfApi.commits = []
    monkeypatch.setattr(transformers.trainer, "hf_api", RecordingHfApi)
    monkeypatch.setattr(msmae.training.hub, "HfApi", RecordingHfApi)
    # Sources as a dataset read from files has them (absolute local paths): the upload must not carry them.
    data = three_signs(tmp_path, source=lambda i: str(tmp_path / "clips" / f"{i}.pose"))
    run_classification_recipe(
        data, tmp_path / "out", "--do_predict", "--save_strategy", "steps", "--save_steps", 1, "--eval_strategy", "steps",
        "--eval_steps", 1, "--push_to_hub", "--hub_model_id", "someone/tiny",
    )
    commits = RecordingHfApi.commits
    # One commit per save (steps 1 and 2), then the final one: nothing else (no Trainer.save_model push).
    assert [c["message"] for c in commits] == [
        "Training in progress, step 1", "Training in progress, step 2", "End of training"
    ]
    assert {c["repo_id"] for c in commits} == {"someone/tiny"}
    model_files = {"config.json", "model.safetensors", "preprocessor_config.json", "configuration_msmae.py", "modeling_msmae.py"}
    for commit in commits:
        files = set(commit["files"])
        assert model_files <= files, commit["message"]
        pickles = [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl")) or f.startswith("checkpoint-")]
        assert not pickles, (commit["message"], pickles)
        config = json.loads(commit["contents"]["config.json"])
        assert config["auto_map"]["AutoModelForVideoClassification"] and config["custom_pipelines"]
        for name, content in commit["contents"].items():
            assert str(tmp_path).encode() not in content, f"{commit['message']}: {name} holds a local path"
    assert all("trainer_state.json" not in c["files"] for c in commits)  # resume-only, with absolute paths
    final = commits[-1]
    assert "README.md" in final["files"] and b"msmae" in final["contents"]["README.md"]
    assert "handler.py" in final["files"]
    assert any(name.startswith("predict") or "prediction" in name for name in final["files"]), final["files"]
    predictions = final["contents"]["predictions_test.csv"].decode()
    assert "clips/" in predictions  # the clips are still named, relative to the folder above theirs
