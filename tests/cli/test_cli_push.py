"""One publish path: `msmae push FOLDER REPO_ID` (a finished run, or one of its checkpoints), and `push_to_hub` /
`save_pretrained` of msmae models (also of a model loaded with trust_remote_code where msmae is missing) write what
serves the model: processor, code, handler.py, requirements.txt and msmae's card. The Hub is the recording stand-in:
it lists exactly what would be uploaded, in which commits."""

import json
from pathlib import Path

import huggingface_hub
import pytest
from conftest import RecordingHfApi, run_without_msmae, save_tiny_classifier
from huggingface_hub import ModelCard

from msmae.cli import main
from msmae.training.model_card import write_model_card

PICKLES = (".bin", ".pt", ".pth", ".pkl")


@pytest.fixture
def hub(monkeypatch):
    RecordingHfApi.reset()
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    return RecordingHfApi


def finished_run(folder) -> Path:
    """A run folder as the classification recipe leaves it: the final model with its card and results, one
    Trainer checkpoint with optimizer state and a pickle of the training arguments, logs in a subfolder."""
    run = save_tiny_classifier(folder)
    write_model_card(run, task="sign-classification")
    (run / "all_results.json").write_text(json.dumps({"eval_top1": 0.5, "eval_top5": 1.0, "test_top1": 0.25,
                                                       "epoch": 2.0, "train_runtime": 3.2}))
    (run / "training_args.bin").write_bytes(b"pickle")
    (run / "trainer_state.json").write_text("{}")
    (run / "runs").mkdir()
    (run / "runs" / "events.out.tfevents").write_bytes(b"log")
    checkpoint = save_tiny_classifier(run / "checkpoint-4")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        (checkpoint / name).write_bytes(b"pickle")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "log_history": [
        {"step": 2, "eval_top1": 0.1}, {"step": 4, "eval_top1": 0.75, "eval_top5": 1.0, "eval_loss": 0.3},
        {"step": 4, "loss": 0.4}]}))
    (checkpoint / "README.md").unlink()  # Trainer checkpoints carry no card from the recipes
    return run


def carried_code(folder) -> set[str]:
    return {p.name for p in Path(folder).glob("*.py")}


def test_push_publishes_the_final_model_in_one_commit(hub, tmp_path):
    run = finished_run(tmp_path / "run")
    code = main(["push", str(run), "someone/signs", "--revision", "v1", "--private", "--dataset", "someone/msl-150"])
    assert code == 0
    [commit] = hub.commits
    assert (commit["repo_id"], commit["revision"]) == ("someone/signs", "v1")
    assert hub.repos == [{"repo_id": "someone/signs", "private": True}] and hub.branches == [("someone/signs", "v1")]
    assert set(commit["files"]) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json",
                                    "requirements.txt", "all_results.json"} | carried_code(run)
    assert {"handler.py", "pipeline_msmae.py", "modeling_msmae.py"} <= set(commit["files"])
    card = ModelCard(commit["contents"]["README.md"].decode())
    assert card.data.pipeline_tag == "video-classification" and card.data.model_name == "signs"
    index = {(r.dataset_type, r.dataset_split, r.metric_type, r.metric_value) for r in card.data.eval_results}
    assert index == {("someone/msl-150", "validation", "accuracy", 0.5), ("someone/msl-150", "validation", "accuracy", 1.0),
                     ("someone/msl-150", "test", "accuracy", 0.25)}
    assert "<your-username>" not in card.text and 'repo_id = "someone/signs"' in card.text
    assert (run / "README.md").read_text() != commit["contents"]["README.md"].decode()  # the run folder is untouched


def test_push_publishes_a_chosen_checkpoint_without_its_training_state(hub, tmp_path):
    run = finished_run(tmp_path / "run")
    assert main(["push", str(run), "someone/signs", "--checkpoint", "checkpoint-4"]) == 0
    [commit] = hub.commits
    assert not [f for f in commit["files"] if f.endswith(PICKLES) or "/" in f or f == "trainer_state.json"]
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "handler.py", "requirements.txt",
            "README.md"} <= set(commit["files"])
    assert commit["revision"] is None and hub.branches == []
    card = ModelCard(commit["contents"]["README.md"].decode())
    assert "Top-1 accuracy" in card.text and "0.7500" in card.text  # the evaluation logged at step 4
    assert card.text.split("## How to use", 1)[1].lstrip().startswith("```bash\npip install ")


def test_push_refuses_what_is_not_a_run(hub, tmp_path, caplog):
    run = finished_run(tmp_path / "run")
    assert main(["push", str(tmp_path / "missing"), "someone/signs"]) == 2
    assert main(["push", str(run), "someone/signs", "--checkpoint", "checkpoint-9"]) == 2
    assert "checkpoint-4" in caplog.text  # the message lists the checkpoints there are
    (tmp_path / "empty").mkdir()
    assert main(["push", str(tmp_path / "empty"), "someone/signs"]) == 2
    assert "holds no saved model" in caplog.text
    assert hub.commits == []


def test_push_reports_a_hub_it_cannot_reach(monkeypatch, tmp_path, caplog):
    class Unreachable(RecordingHfApi):
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(huggingface_hub, "HfApi", Unreachable)
    assert main(["push", str(finished_run(tmp_path / "run")), "someone/signs"]) == 1
    assert "did not take the upload" in caplog.text and "no route" in caplog.text


def test_model_push_to_hub_writes_msmaes_card_processor_and_handler(hub, tmp_path):
    from msmae import MSMAEForSignClassification

    model = MSMAEForSignClassification.from_pretrained(save_tiny_classifier(tmp_path / "ckpt"))
    model.push_to_hub("someone/signs", revision="v2")
    hub.existing = {"README.md"}  # a card written for the repository stays
    model.push_to_hub("someone/signs", commit_message="Second")
    first, second = hub.commits
    assert first["revision"] == "v2" and first["message"] == "Upload model"
    assert {"README.md", "preprocessor_config.json", "handler.py", "requirements.txt", "config.json",
            "model.safetensors"} <= set(first["files"])
    assert not [f for f in first["files"] if f.endswith(PICKLES)]
    card = ModelCard(first["contents"]["README.md"].decode())
    assert card.data.pipeline_tag == "video-classification" and "msmae" in card.data.tags
    assert 'pipeline(model="<your-username>/' in card.text or "someone/signs" in card.text
    assert json.loads(first["contents"]["preprocessor_config.json"]) == json.loads(
        (tmp_path / "ckpt" / "preprocessor_config.json").read_text())  # the checkpoint's own processor
    assert "README.md" not in second["files"] and second["message"] == "Second"


RESAVE = """
import json, os, sys
import huggingface_hub
from transformers import AutoModelForVideoClassification
folder, out = sys.argv[1:3]
model = AutoModelForVideoClassification.from_pretrained(folder, trust_remote_code=True)
model.save_pretrained(out)

class Recording:
    commits = []
    def __init__(self, *args, **kwargs): pass
    def create_repo(self, repo_id, **kwargs): return type("Repo", (), {"repo_id": repo_id})()
    def create_branch(self, *args, **kwargs): pass
    def file_exists(self, *args, **kwargs): return False
    def upload_folder(self, *, folder_path, allow_patterns, **kwargs):
        Recording.commits.append(sorted(allow_patterns))

huggingface_hub.HfApi = Recording
model.push_to_hub("someone/again")
print("RESULT" + json.dumps({"saved": sorted(os.listdir(out)), "pushed": Recording.commits,
                             "module": type(model).__module__}))
"""


@pytest.mark.slow
def test_a_model_loaded_with_trust_remote_code_saves_and_pushes_everything_again(tmp_path):
    folder = save_tiny_classifier(tmp_path / "ckpt")
    result = run_without_msmae(RESAVE, folder, tmp_path / "again", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))[6:])
    assert answer["module"].startswith("transformers_modules.")
    wanted = {"README.md", "preprocessor_config.json", "handler.py", "requirements.txt", "config.json",
              "model.safetensors", "pipeline_msmae.py", "processing_msmae.py"}
    assert wanted <= set(answer["saved"])
    [pushed] = answer["pushed"]
    assert wanted <= set(pushed) and not [f for f in pushed if f.endswith(PICKLES)]
    again = tmp_path / "again"
    assert json.loads((again / "preprocessor_config.json").read_text()) == json.loads(
        (folder / "preprocessor_config.json").read_text())
    assert (again / "handler.py").read_bytes() == (folder / "handler.py").read_bytes()
