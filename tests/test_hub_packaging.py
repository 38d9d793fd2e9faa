"""`hub_packaging.py`: the one module that decides what a checkpoint folder carries (auto_map, custom_pipelines, code
files) and what a push uploads; every checkpoint carries the module itself."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from msmae import MSMAEForSignClassification, hub_packaging
from msmae.hub_packaging import (
    AUTO_MAPS,
    HUB_PIPELINE_TAGS,
    RECOGNITION_TASK,
    add_pipeline_to_checkpoint,
    files_to_upload,
)

from conftest import run_without_msmae, tiny_config



def save_classifier(folder) -> Path:
    torch.manual_seed(0)
    MSMAEForSignClassification(tiny_config(num_labels=3)).save_pretrained(folder)
    return Path(folder)


def test_a_saved_classifier_carries_the_module_and_its_entries(tmp_path):
    folder = save_classifier(tmp_path / "ckpt")
    assert (folder / "hub_packaging.py").read_bytes() == Path(hub_packaging.__file__).read_bytes()
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAPS["msmae"]
    assert config["custom_pipelines"] == {
        "video-classification": {
            "impl": "pipeline_msmae.SignLanguageRecognitionPipeline", "pt": ["AutoModelForVideoClassification"]
        }
    }
    # Every module an auto_map or custom_pipelines entry names is in the folder, with handler.py.
    named = {entry.split(".")[0] for entry in config["auto_map"].values()}
    named |= {info["impl"].split(".")[0] for info in config["custom_pipelines"].values()}
    assert {f"{module}.py" for module in named} | {"handler.py"} <= {p.name for p in folder.iterdir()}


def test_the_saved_entries_come_from_the_module(tmp_path, monkeypatch):
    """The model and config mixins read `AUTO_MAPS` and `HUB_PIPELINE_TAGS`: no other copy of them decides."""
    extra = {"AutoModelForImageClassification": "modeling_msmae.MSMAEForSignClassification"}
    monkeypatch.setitem(AUTO_MAPS, "msmae", {**AUTO_MAPS["msmae"], **extra})
    monkeypatch.setitem(HUB_PIPELINE_TAGS, RECOGNITION_TASK, "sign-recognition-test-tag")
    config = json.loads((save_classifier(tmp_path / "ckpt") / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageClassification"] == extra["AutoModelForImageClassification"]
    assert list(config["custom_pipelines"]) == ["sign-recognition-test-tag"]


def test_add_pipeline_to_checkpoint_copies_the_module(tmp_path):
    folder = tmp_path / "written-otherwise"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "msmae", "architectures": ["MSMAEForSignClassification"], "auto_map": AUTO_MAPS["msmae"],
        "custom_pipelines": {"sign-language-recognition": {"impl": "pipeline_msmae.Old", "pt": []}},  # an old entry
    }))
    assert add_pipeline_to_checkpoint(folder) == [RECOGNITION_TASK]
    config = json.loads((folder / "config.json").read_text())
    assert list(config["custom_pipelines"]) == ["video-classification"]  # one entry: transformers infers the task
    assert {"hub_packaging.py", "pipeline_msmae.py", "handler.py"} <= {p.name for p in folder.iterdir()}


def test_files_to_upload_leave_out_pickles_checkpoints_and_resume_state(tmp_path):
    kept = ["README.md", "config.json", "model.safetensors", "hub_packaging.py", "handler.py", "sub/notes.txt"]
    left_out = ["training_args.bin", "trainer_state.json", "optimizer.pt", "rng_state.pth", "data.pkl", "_private.txt",
                f"{PREFIX_CHECKPOINT_DIR}-3/model.safetensors", "__pycache__/x.pyc", "sub/__pycache__/y.pyc"]
    for name in kept + left_out:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert files_to_upload(tmp_path) == sorted(kept)


def test_the_module_imports_only_the_standard_library():
    """Checkpoints carry it and the configuration imports it: nothing heavy at module level."""
    script = ("import json, sys\nimport msmae.hub_packaging\n"
              "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'huggingface_hub', 'numpy') if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


WITHOUT_MSMAE = """
import json, sys
from transformers import pipeline
recognizer = pipeline(model=sys.argv[1], trust_remote_code=True)
config_module = next(c.__module__ for c in type(recognizer.model.config).__mro__ if c.__name__ == "HubConfigMixin")
scores = recognizer({"pose_values": [[[0.1, 0.2]] * 48] * 6}, top_k=3)
print(json.dumps([config_module, recognizer.task, len(scores)]))
"""


@pytest.mark.slow
def test_the_checkpoint_copy_serves_without_msmae(tmp_path):
    folder = save_classifier(tmp_path / "ckpt")
    result = run_without_msmae(WITHOUT_MSMAE, folder, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    config_module, task, count = json.loads(result.stdout.strip().splitlines()[-1])
    assert config_module.startswith("transformers_modules.") and config_module.endswith(".hub_packaging")
    assert task == "video-classification" and count == 3


# ---- requirements.txt ------------------------------------------------------------------------------------------------


def imported_top_level_names(folder) -> set[str]:
    """Top-level names of every `import X` / `from X import` in the folder's Python files (read here without
    hub_packaging, so that the module's own scan is checked against an independent one)."""
    import re

    names = set()
    for path in Path(folder).glob("*.py"):
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:import\s+([A-Za-z_]\w*)|from\s+([A-Za-z_]\w*)[\w.]*\s+import\s)", line)
            if match:
                names.add(match.group(1) or match.group(2))
    return names


def test_every_package_the_carried_code_imports_is_in_requirements(tmp_path):
    """A carried module that imports a package requirements.txt does not name fails here."""
    import re
    from importlib.metadata import packages_distributions

    folder = save_classifier(tmp_path / "ckpt")
    lines = (folder / "requirements.txt").read_text().splitlines()
    listed = {re.split(r"[=<> #(]", line.lstrip("# "), maxsplit=1)[0] for line in lines if line.strip()}
    local = {path.stem for path in folder.glob("*.py")}
    distributions = packages_distributions()
    missing = [
        name for name in sorted(imported_top_level_names(folder) - local - set(sys.stdlib_module_names))
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(name, [name])} & listed
    ]
    assert missing == []
    # What serving needs is a requirement, not a comment: videos (av, MediaPipe, which needs numpy<2), .pose files.
    required = {line.split("==")[0] for line in lines if "==" in line and not line.startswith("#")}
    assert {"av", "mediapipe", "numpy", "pose-format"} <= required
    assert "mediapipe==0.10.21" in lines
    assert any(line.startswith(f"transformers>={hub_packaging.TESTED_TRANSFORMERS[0]}") for line in lines)


def test_an_import_added_to_the_code_is_listed(tmp_path):
    folder = save_classifier(tmp_path / "ckpt")
    (folder / "extra_module.py").write_text("def f():\n    import yaml\n    return yaml\n")
    hub_packaging.write_requirements(folder)
    assert any(line.startswith("pyyaml==") for line in (folder / "requirements.txt").read_text().splitlines())


def test_the_install_line_comes_from_requirements(tmp_path):
    folder = save_classifier(tmp_path / "ckpt")
    command = hub_packaging.install_command(folder)
    assert command.startswith("pip install ") and "mediapipe==0.10.21" in command and '"torch>=2.4"' in command
    assert "datasets" not in command  # optional packages stay comments


def test_the_cards_how_to_use_starts_with_the_install_line(tmp_path):
    from msmae.training.model_card import write_model_card

    folder = save_classifier(tmp_path / "ckpt")
    card = write_model_card(folder, task="sign-classification", repo_id="someone/tiny").read_text()
    how_to_use = card.split("## How to use", 1)[1].lstrip()
    assert how_to_use.startswith(f"```bash\n{hub_packaging.install_command(folder)}\n```")


def test_what_transformers_checks_before_loading_the_code_is_required_not_optional(tmp_path):
    """transformers refuses to load a module it names (auto_map, custom_pipelines, the processor) where a package the
    module imports is missing, imports inside functions included (`check_imports`): each such package is a
    requirement line, never a comment (peft, imported by modeling_sign_translation where adapters are built)."""
    import re
    from importlib.metadata import packages_distributions

    from conftest import save_tiny_translator
    from transformers.dynamic_module_utils import get_imports

    distributions = packages_distributions()
    for folder in (save_classifier(tmp_path / "classifier"), save_tiny_translator(tmp_path / "translator")):
        lines = (folder / "requirements.txt").read_text().splitlines()
        required = {re.split(r"[=<> #]", line, maxsplit=1)[0] for line in lines if line and not line.startswith("#")}
        config = json.loads((folder / "config.json").read_text())
        named = {entry.split(".")[0] for entry in config["auto_map"].values()} | {"pipeline_msmae", "processing_msmae"}
        checked = {name for module in named for name in get_imports(folder / f"{module}.py")}
        checked -= {path.stem for path in folder.glob("*.py")} | set(sys.stdlib_module_names)
        wanted = {re.sub(r"[-_.]+", "-", distributions.get(name, [name])[0]).lower() for name in checked}
        assert wanted <= required, (folder.name, sorted(wanted - required))


def test_a_translation_checkpoint_asks_for_transformers_5(tmp_path):
    """Its tokenizer is saved in transformers 5's format and its config's sub-configs are 5.x dataclass fields, so
    it does not load under 4.x (recognition and embedding checkpoints do: tests/test_checkpoint_venvs.py)."""
    from conftest import save_tiny_translator

    lines = (save_tiny_translator(tmp_path / "translator") / "requirements.txt").read_text().splitlines()
    assert f"transformers>={hub_packaging.TESTED_TRANSFORMERS[-1]}  # tested: {hub_packaging.TESTED_TRANSFORMERS[-1]}" in lines
    lines = (save_classifier(tmp_path / "classifier") / "requirements.txt").read_text().splitlines()
    assert "transformers>=4.57.6  # tested: 4.57.6 and 5.25.0" in lines
