"""What every msmae checkpoint folder carries so that it loads and serves where msmae is not installed.

- `auto_map` naming every head of the model's family (`AUTO_MAPS`), written by each msmae model's `save_pretrained`
  (`HubModelMixin`); transformers then copies each class's code file and its relative imports.
- `custom_pipelines`: the checkpoint's task under its Hub name (`custom_pipelines_for`), with the pipeline code and
  the Inference Endpoints handler (`copy_pipeline_code`), written by the config's `save_pretrained`
  (`HubConfigMixin`), or by `add_pipeline_to_checkpoint` for folders written otherwise.
- What a push uploads (`UPLOAD_IGNORE_PATTERNS`, `files_to_upload`): model files, never pickles or resume state.
- A checksum of the weights in each safetensors file's own metadata (`WEIGHTS_CHECKSUM_KEY`), written by every msmae
  model's `save_pretrained` and verified by its `from_pretrained` (here, so the checkpoint's own code checks too) and
  by automatic resume: weights damaged in place after saving are refused, not loaded.

It knows the pipelines by name (`PIPELINE_CLASSES`) and never imports the pipeline module, which builds on it. At
module level it imports only the standard library (the configuration imports it; transformers is imported inside the
functions that use it).
"""

import contextlib
import hashlib
import json
import shutil
import struct
import tempfile
import threading
from pathlib import Path

RECOGNITION_TASK = "sign-language-recognition"
TRANSLATION_TASK = "sign-language-translation"
EMBEDDING_TASK = "sign-language-embedding"
# The Hub's task (`pipeline_tag`) for each: the name `custom_pipelines` lists it under.
HUB_PIPELINE_TAGS = {
    RECOGNITION_TASK: "video-classification",
    TRANSLATION_TASK: "translation",
    EMBEDDING_TASK: "feature-extraction",
}
# Which task a checkpoint serves, by its saved architecture.
ARCHITECTURE_TASKS = {
    "MSMAEForSignClassification": RECOGNITION_TASK,
    "MSMAEForPreTraining": EMBEDDING_TASK,
    "MSMAEModel": EMBEDDING_TASK,
    "SignTranslationModel": TRANSLATION_TASK,
}
PIPELINE_MODULE = "pipeline_msmae"  # the flat module whose classes `custom_pipelines` names
# The pipeline class (in `PIPELINE_MODULE`) and the Auto class that loads the model, of each task.
PIPELINE_CLASSES = {
    RECOGNITION_TASK: ("SignLanguageRecognitionPipeline", "AutoModelForVideoClassification"),
    TRANSLATION_TASK: ("SignLanguageTranslationPipeline", "AutoModelForSeq2SeqLM"),
    EMBEDDING_TASK: ("SignLanguageEmbeddingPipeline", "AutoModel"),
}

# Every checkpoint names all heads of its family (by `model_type`), so e.g. `AutoModel` loads the encoder of a
# pretraining checkpoint with trust_remote_code.
AUTO_MAPS = {
    "msmae": {
        "AutoConfig": "configuration_msmae.MSMAEConfig",
        "AutoModel": "modeling_msmae.MSMAEModel",
        "AutoModelForPreTraining": "modeling_msmae.MSMAEForPreTraining",
        "AutoModelForVideoClassification": "modeling_msmae.MSMAEForSignClassification",
    },
    "msmae_translation": {
        "AutoConfig": "configuration_sign_translation.SignTranslationConfig",
        "AutoModel": "modeling_sign_translation.SignTranslationModel",
        "AutoModelForSeq2SeqLM": "modeling_sign_translation.SignTranslationModel",
    },
}

# What a push leaves out. As Trainer.push_to_hub: private files (`_*`) and intermediate checkpoints (transformers'
# `PREFIX_CHECKPOINT_DIR`, spelled out: its module imports torch). Also training_args.bin, a pickle (loading it runs
# code), and trainer_state.json (resume-only state, with this machine's absolute checkpoint paths); the card records
# the hyperparameters and results instead.
UPLOAD_IGNORE_PATTERNS = [
    "_*",
    "checkpoint-*",
    "checkpoint-*/**",
    "**/__pycache__/**",
    "training_args.bin",
    "trainer_state.json",
    # Pickles (optimizer, scheduler, RNG states): user-facing weights are safetensors.
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
]


# ---- auto_map and custom_pipelines on save ---------------------------------------------------------------------------


class HubModelMixin:
    """Model mixin: `save_pretrained` writes the family's `AUTO_MAPS` entry into `config.auto_map` (transformers copies
    the code files once the class is registered for an Auto class, as `import msmae` does)."""

    def save_pretrained(self, save_directory, *args, **kwargs):
        # Write the current parameter names, not the renaming's original ones: the Trainer resumes from a
        # checkpoint with a plain `load_state_dict`, which knows nothing of conversion mappings.
        kwargs.setdefault("save_original_format", False)
        if self._auto_class is not None:
            family = AUTO_MAPS.get(self.config.model_type, {})
            self.config.auto_map = {**family, **(getattr(self.config, "auto_map", None) or {})}
        with _checksummed_saves():
            result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            # What serves the model, written here so that it is there also when this code runs from a checkpoint's
            # code cache (a model loaded with trust_remote_code and saved again): its processor and a model card.
            save_processor_for(self, save_directory)
            write_default_card(save_directory)
        return result

    def push_to_hub(self, repo_id, *, commit_message=None, commit_description=None, private=None, token=None,
                    revision=None, create_pr=False, max_shard_size="50GB", tags=None, **kwargs):
        """As transformers' `push_to_hub`, in one commit, with what `save_pretrained` writes: the weights, config,
        code, `handler.py`, `requirements.txt`, the processor and msmae's model card (an existing card in the
        repository is kept, as transformers keeps it). Not transformers' generic card, and never pickles."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder, max_shard_size=max_shard_size)
            return upload_checkpoint(folder, repo_id, commit_message=commit_message or "Upload model",
                                     commit_description=commit_description, private=private, token=token,
                                     revision=revision, create_pr=create_pr)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        check_checkpoint_folder(pretrained_model_name_or_path, kwargs.get("ignore_mismatched_sizes", False),
                                kwargs.get("config"))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def _load_pretrained_model(cls, model, state_dict, checkpoint_files, load_config, *args, **kwargs):
        # transformers' one step between resolving the weight files (local, Hub cache, shards) and reading them.
        name = getattr(load_config, "pretrained_model_name_or_path", None)
        for path in checkpoint_files or []:
            if str(path).endswith(".safetensors"):
                verify_weights_checksum(path, name)
        return super()._load_pretrained_model(model, state_dict, checkpoint_files, load_config, *args, **kwargs)


# ---- checkpoint folders a user gives ---------------------------------------------------------------------------------


def check_checkpoint_folder(path, ignore_mismatched_sizes=False, config=None) -> None:
    """Raise, naming `path` and what to do, for a local checkpoint that cannot load: a path that does not exist, a
    folder without `config.json` (unless a `config` object is given), or a config (`config`, else `config.json`)
    whose labels do not match the classifier in the weights (an edited config, or one copied from another
    checkpoint). Hub ids pass unchecked."""
    text = str(path)
    folder = Path(text).expanduser()
    if not folder.exists():
        if text.startswith(("/", "./", "../", "~")) or text in (".", ".."):
            raise OSError(f"No checkpoint folder {text}: give the folder that save_pretrained or training wrote, or "
                          "a Hub repository id.")
        return
    if not folder.is_dir():
        raise OSError(f"{text} is a file, not a checkpoint folder: give the folder that holds config.json and the "
                      "weights.")
    if config is None and not (folder / "config.json").is_file():
        names = sorted(p.name for p in folder.iterdir())
        held = ", ".join(([n for n in names if not n.endswith(".py")] or names)[:8]) or "nothing"
        raise OSError(f"{text} has no config.json, so it is not a complete checkpoint (it holds {held}): give the "
                      "folder that save_pretrained or training wrote (a checkpoint-N folder, or the output folder "
                      "once training finished), or put back its config.json.")
    if not ignore_mismatched_sizes:
        _check_label_count(folder, text, config)


def _check_label_count(folder: Path, name: str, config=None) -> None:
    rows = _tensor_rows(folder, "classifier.weight")
    if rows is None:
        return
    if config is not None:
        labels = getattr(config, "num_labels", None)
    else:
        try:
            values = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            return  # transformers names an unreadable config.json
        if not isinstance(values, dict):
            return
        labels = len(values["id2label"]) if isinstance(values.get("id2label"), dict) else values.get("num_labels")
    if isinstance(labels, int) and labels != rows:
        raise ValueError(f"{name}: the config names {labels} labels (num_labels / id2label) but the classifier in its "
                         f"weights has {rows}: config.json was edited or belongs to other weights (or another config "
                         "was given). Put back the "
                         "config.json saved with these weights (to train a new head instead, pass "
                         "ignore_mismatched_sizes=True).")


def _tensor_rows(folder: Path, tensor: str):
    """The first dimension of `tensor` in the folder's safetensors weights (read from the file's header), or None."""
    weights = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    try:
        if index.is_file():
            weights = folder / json.loads(index.read_text())["weight_map"][tensor]
        with open(weights, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(length)) if length < (1 << 27) else {}
        return int(header[tensor]["shape"][0])
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error):
        return None  # no such tensor, or weights msmae's other checks report


# ---- checksums of the weights ----------------------------------------------------------------------------------------

# Key, in a safetensors file's metadata, of the sha256 of its tensors (`tensors_sha256`). Files without it (saved by
# msmae 0.1.0 or by other tools) load unchecked.
WEIGHTS_CHECKSUM_KEY = "msmae_weights_sha256"
_CHUNK = 1 << 24
_SAVE_LOCK = threading.RLock()


class DamagedWeightsError(ValueError):
    """Weights that do not match the checksum written when they were saved."""


def _entry(name, dtype, shape) -> bytes:
    return json.dumps([name, dtype, list(shape)]).encode() + b"\n"


def tensors_sha256(tensors: dict) -> str:
    """sha256 over the tensors in name order: each one's name, safetensors dtype and shape, then its bytes as
    safetensors stores them (little-endian, C order). `weights_checksum_problem` computes the same from a file."""
    import torch
    from safetensors.torch import _TYPES

    dtype_names = {dtype: name for name, dtype in _TYPES.items()}
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        digest.update(_entry(name, dtype_names[tensor.dtype], tensor.shape))
        digest.update(tensor.reshape(-1).contiguous().cpu().view(torch.uint8).numpy())
    return digest.hexdigest()


@contextlib.contextmanager
def _checksummed_saves():
    """While a model saves in this thread, transformers' safetensors writer adds `WEIGHTS_CHECKSUM_KEY` to each
    file's metadata: one write, from the tensors being written (save_pretrained takes no metadata argument)."""
    from transformers import modeling_utils

    original = getattr(modeling_utils, "safe_save_file", None)
    if original is None:  # another transformers layout: weights are saved without a checksum
        yield
        return
    owner = threading.get_ident()

    def save_file(tensors, filename, metadata=None):
        if threading.get_ident() == owner:
            metadata = {**(metadata or {}), WEIGHTS_CHECKSUM_KEY: tensors_sha256(tensors)}
        return original(tensors, filename, metadata=metadata)

    with _SAVE_LOCK:
        modeling_utils.safe_save_file = save_file
        try:
            yield
        finally:
            modeling_utils.safe_save_file = original


def weights_checksum_problem(path) -> str | None:
    """Why the safetensors file `path` does not match the checksum saved in its metadata, or None: it matches, it
    carries none (weights saved by msmae 0.1.0 or by other tools), or its header does not read (the reader says so)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
            expected = (header.get("__metadata__") or {}).get(WEIGHTS_CHECKSUM_KEY)
            if not expected:
                return None
            digest = hashlib.sha256()
            for name in sorted(key for key in header if key != "__metadata__"):
                info = header[name]
                digest.update(_entry(name, info["dtype"], info["shape"]))
                begin, end = info["data_offsets"]
                f.seek(8 + length + begin)
                remaining = end - begin
                while remaining:
                    chunk = f.read(min(remaining, _CHUNK))
                    if not chunk:
                        return f"{path} is shorter than its header says (tensor {name} ends at byte {8 + length + end})"
                    digest.update(chunk)
                    remaining -= len(chunk)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error):
        return None
    actual = digest.hexdigest()
    if actual != expected:
        return (f"the tensors in {path} do not match the checksum written when they were saved (sha256 "
                f"{actual[:16]}..., saved {expected[:16]}...)")
    return None


def verify_weights_checksum(path, checkpoint=None) -> None:
    """Raise `DamagedWeightsError` naming the checkpoint when `path` fails `weights_checksum_problem`."""
    problem = weights_checksum_problem(path)
    if problem:
        raise DamagedWeightsError(
            f"Damaged weights in {checkpoint or Path(path).parent}: {problem}. The file changed after it was saved "
            "(disk or copy damage, an edit); restore it from where it came from (a backup, the Hub) or use another "
            "checkpoint."
        )


class HubConfigMixin:
    """Config mixin: a model's config saves its pipeline (`custom_pipelines`, the pipeline code and `handler.py`)."""

    def save_pretrained(self, save_directory, **kwargs):
        """Saves the config; a model's config (with `architectures` and `auto_map`) also gets its pipeline:
        `custom_pipelines` and the pipeline code with `handler.py` (as `add_pipeline_to_checkpoint`)."""
        serves = any(name in ARCHITECTURE_TASKS for name in self.architectures or [])
        if serves and getattr(self, "auto_map", None):
            try:
                custom = custom_pipelines_for(self.to_dict())
                self.custom_pipelines = merged_custom_pipelines(self.__dict__.get("custom_pipelines"), custom)
            except ValueError:  # an auto_map without the pipeline's Auto class: the model loads, no pipeline serves it
                pass
        super().save_pretrained(save_directory, **kwargs)
        if self.__dict__.get("custom_pipelines"):
            copy_pipeline_code(save_directory)


# ---- pipelines ------------------------------------------------------------------------------------------------------


def tasks_for_checkpoint(config: dict) -> list[str]:
    """The pipeline tasks a saved config serves, from its `architectures`."""
    tasks = [ARCHITECTURE_TASKS[name] for name in config.get("architectures") or [] if name in ARCHITECTURE_TASKS]
    if not tasks:
        raise ValueError(
            f"No sign-language pipeline serves architectures {config.get('architectures')}; pass task= explicitly "
            f"({', '.join(HUB_PIPELINE_TAGS)})."
        )
    return list(dict.fromkeys(tasks))


def checkpoint_task(model) -> str:
    """The task an application serves for a checkpoint (a folder or Hub id): recognition if the checkpoint has a
    classification head, else translation. `msmae predict`, `msmae app` and `msmae live` all use this rule; a
    pretrained encoder (embedding only) is refused with what to do instead."""
    from transformers import AutoConfig  # msmae's configs resolve without trust_remote_code once msmae is imported

    check_checkpoint_folder(model)
    config = AutoConfig.from_pretrained(str(model)).to_dict()
    tasks = tasks_for_checkpoint(config)
    for task in (RECOGNITION_TASK, TRANSLATION_TASK):
        if task in tasks:
            return task
    raise ValueError(
        f"{model} holds {', '.join(config['architectures'])}, a pretrained encoder without a task head (it serves "
        f"{', '.join(tasks)}); a checkpoint fine-tuned for sign recognition (examples/run_sign_classification.py) or "
        "translation (examples/run_sign_translation.py) is needed."
    )


def custom_pipelines_for(config: dict, tasks=None) -> dict:
    """The `custom_pipelines` entry of a saved config: each task under its Hub name (`HUB_PIPELINE_TAGS`).

    Listed under the Hub's name, `pipeline("video-classification", model=repo, trust_remote_code=True)` (the snippet
    the Hub shows for `pipeline_tag: video-classification`) builds this pipeline, and a checkpoint with one task lets
    transformers infer it (`pipeline(model=repo, trust_remote_code=True)`). The `sign-language-*` names resolve too:
    the checkpoint's configuration code registers them when it loads (`HubConfigMixin.custom_pipelines`).
    """
    tasks = [tasks] if isinstance(tasks, str) else list(tasks) if tasks is not None else tasks_for_checkpoint(config)
    custom = {}
    for name in tasks:
        if name not in PIPELINE_CLASSES:
            raise ValueError(f"Unknown task {name!r}; use one of {', '.join(PIPELINE_CLASSES)}.")
        pipeline_class, auto_class = PIPELINE_CLASSES[name]
        if auto_class not in (config.get("auto_map") or {}):
            raise ValueError(
                f"The config has no auto_map entry for {auto_class}, so {name} could not load the model "
                "with trust_remote_code; save the model after `import msmae`."
            )
        custom[HUB_PIPELINE_TAGS[name]] = {"impl": f"{PIPELINE_MODULE}.{pipeline_class}", "pt": [auto_class]}
    return custom


def merged_custom_pipelines(saved, custom: dict) -> dict:
    """`custom` over the saved entries, without the saved entries of these pipelines (inherited from the checkpoint a
    model was fine-tuned from, or under the sign-language-* names by older versions or a pipeline's own
    `save_pretrained`): a second entry would keep transformers from inferring the task."""
    kept = {
        name: info
        for name, info in (saved or {}).items()
        if name not in HUB_PIPELINE_TAGS and not str(info.get("impl", "")).startswith(f"{PIPELINE_MODULE}.")
    }
    return {**kept, **custom}


def copy_pipeline_code(output_dir):
    """Copies the pipeline module, the sibling modules it imports (this one among them) and the endpoint handler
    (`handler.py`) into `output_dir`, and writes the `requirements.txt` of the code there (`write_requirements`)."""
    from transformers.dynamic_module_utils import get_relative_import_files

    pipeline_file = Path(__file__).with_name(f"{PIPELINE_MODULE}.py")
    sources = [pipeline_file, *map(Path, get_relative_import_files(pipeline_file))]
    # Found through an import, which also makes transformers copy handler.py into a checkpoint's code cache, so a
    # model loaded with trust_remote_code saves it again.
    from .handler import __file__ as handler_file

    handler = Path(handler_file)
    for source in dict.fromkeys(sources + ([handler] if handler.is_file() else [])):
        target = Path(output_dir) / source.name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
    write_requirements(output_dir)


def add_pipeline_to_checkpoint(output_dir, task=None) -> list[str]:
    """Makes a saved checkpoint serve `pipeline(model=output_dir, trust_remote_code=True)` where msmae is missing.

    Writes `custom_pipelines` (see `custom_pipelines_for`) into `output_dir/config.json` and copies the pipeline code,
    the sibling modules it imports (processor, pose readers, video extraction, embeddings) and the Inference Endpoints
    handler (`handler.py`) next to it. `save_pretrained` of every msmae model does this itself (through its config);
    call it for folders written otherwise.

    Args:
        output_dir: the checkpoint folder (with `config.json`).
        task: a task name or a list of them; by default, the task of the saved architecture
            (`MSMAEForSignClassification` -> recognition, `MSMAEModel`/`MSMAEForPreTraining` -> embedding,
            `SignTranslationModel` -> translation).

    Returns: the tasks written.
    """
    output_dir = Path(output_dir)
    config_path = output_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found; save the model there (model.save_pretrained) first.")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    tasks = [task] if isinstance(task, str) else list(task) if task is not None else tasks_for_checkpoint(config)
    try:
        custom = custom_pipelines_for(config, tasks)
        config["custom_pipelines"] = merged_custom_pipelines(config.get("custom_pipelines"), custom)
    except ValueError as error:
        raise ValueError(f"{config_path}: {error}") from None
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    copy_pipeline_code(output_dir)
    return tasks


# ---- requirements.txt: what the carried code needs besides the standard library ----------------------------------

REQUIREMENTS_FILE = "requirements.txt"
# The transformers releases a checkpoint's code is tested under without msmae (tests/test_checkpoint_venvs.py loads
# and runs a checkpoint in a fresh environment with each): the newest 4.x, which huggingface-inference-toolkit images
# pin, and the newest 5.x.
TESTED_TRANSFORMERS = ("4.57.6", "5.25.0")
# torch and transformers (with what transformers itself requires) are what the serving image or the user's
# environment already has, and a pin would replace them: they get the oldest version known to work (torch: msmae's
# own floor) and the version tested in a comment. Every other package is pinned to the version it was saved with.
FLOORS = {"torch": "2.4", "transformers": TESTED_TRANSFORMERS[0], "huggingface-hub": None, "safetensors": None}
# Packages the code imports only for work a served checkpoint does not do: commented out, with the reason. Not a
# package that a module transformers loads by name imports (modeling_*, configuration_*, pipeline_msmae,
# processing_msmae): transformers refuses to load such a module where any package it imports, even inside a function,
# is missing (peft in modeling_sign_translation).
OPTIONAL = {
    "datasets": "only to read clips from msmae's own saved datasets",
    "pyarrow": "only to read clips from msmae's own saved datasets",
}


def _distribution(import_name: str) -> str:
    """The distribution (pip name, canonical spelling) that provides the top-level module `import_name`."""
    import re
    from importlib.metadata import packages_distributions

    names = packages_distributions().get(import_name) or [import_name]
    return re.sub(r"[-_.]+", "-", names[0]).lower()


def imported_packages(folder) -> list[str]:
    """Distributions that the Python files in `folder` import (at module level or inside functions), sorted; the
    standard library and the folder's own modules left out."""
    import ast
    import sys

    files = sorted(Path(folder).glob("*.py"))
    local = {path.stem for path in files}
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    third_party = {name for name in found if name not in sys.stdlib_module_names and name not in local}
    return sorted({_distribution(name) for name in third_party})


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution).split("+")[0]  # 2.13.0+cpu: the local build tag names no release
    except PackageNotFoundError:
        return None


def requirement_lines(folder) -> list[str]:
    """The lines of `folder`'s `requirements.txt` (see `write_requirements`)."""
    required, optional = [], []
    floors = dict(FLOORS)
    if (Path(folder) / "modeling_sign_translation.py").is_file():
        # Translation checkpoints need transformers 5: their text tokenizer is saved in 5.x's format and their
        # config's sub-configs are 5.x dataclass fields (recognition and embedding checkpoints load under 4.x too).
        floors["transformers"] = TESTED_TRANSFORMERS[-1]
    for name in imported_packages(folder):
        tested = _installed_version(name)
        if name in floors:
            floor = floors[name]
            # transformers' floor is one of the tested releases: it and the newer ones tested
            versions = TESTED_TRANSFORMERS[TESTED_TRANSFORMERS.index(floor):] if name == "transformers" else [tested]
            note = f"tested: {' and '.join(v for v in versions if v)}" if any(versions) else ""
            line = f"{name}>={floor}" if floor else name
            required.append(f"{line}  # {note}" if note else line)
        elif name in OPTIONAL:
            optional.append(f"# {name}=={tested}  ({OPTIONAL[name]})" if tested else f"# {name}  ({OPTIONAL[name]})")
        else:
            required.append(f"{name}=={tested}" if tested else f"{name}  # not installed where this was saved")
    header = ["# The packages this checkpoint's Python files import, at the versions tested. Install them with",
              "# pip install -r requirements.txt (Inference Endpoints install this file themselves)."]
    return header + required + optional


def write_requirements(folder) -> Path:
    """Writes `folder/requirements.txt`: every package the folder's Python files import (`imported_packages`), pinned
    to the version installed here (the one tested), except torch and transformers and theirs (`FLOORS`) and what only
    msmae's own data work needs (`OPTIONAL`, as comments)."""
    path = Path(folder) / REQUIREMENTS_FILE
    path.write_text("\n".join(requirement_lines(folder)) + "\n", encoding="utf-8")
    return path


def install_command(folder) -> str:
    """`pip install ...` with the requirements of `folder` (the line a model card's "How to use" starts with)."""
    path = Path(folder) / REQUIREMENTS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else requirement_lines(folder)
    specs = [line.split("#")[0].strip() for line in lines]
    return "pip install " + " ".join(f'"{spec}"' if ">" in spec or "<" in spec else spec for spec in specs if spec)


# ---- what a saved model serves with: its processor and a model card -------------------------------------------------

PROCESSOR_FILE = "preprocessor_config.json"
CARD_FILE = "README.md"
# The processor preset of each task, for a model saved without its training processor (as the pipeline's fallback).
PROCESSOR_PRESETS = {RECOGNITION_TASK: "recognition", EMBEDDING_TASK: "pretraining", TRANSLATION_TASK: "translation"}


def save_processor_for(model, folder) -> None:
    """Saves the pose processor of `model` into `folder` unless one is there: the processor of the checkpoint the
    model was loaded from, else the preset of its task (what the pipeline would fall back to), registered for
    `AutoFeatureExtractor` so that it loads with trust_remote_code."""
    from .processing_msmae import MSMAEPoseProcessor

    if (Path(folder) / PROCESSOR_FILE).is_file():
        return
    config = model.config
    processor = None
    source = str(getattr(model, "name_or_path", "") or "")
    if source and (not Path(source).exists() or (Path(source) / PROCESSOR_FILE).is_file()):
        try:
            processor = MSMAEPoseProcessor.from_pretrained(source)
        except (OSError, ValueError):  # a Hub id whose processor is not in the cache and cannot be fetched
            processor = None
    if processor is None:
        tasks = [ARCHITECTURE_TASKS[name] for name in config.architectures or [] if name in ARCHITECTURE_TASKS]
        task = tasks[0] if tasks else ARCHITECTURE_TASKS.get(type(model).__name__, EMBEDDING_TASK)
        streams = getattr(getattr(config, "encoder", None), "streams", None) or config.streams
        processor = MSMAEPoseProcessor.from_preset(PROCESSOR_PRESETS[task], streams=list(streams))
    processor.register_for_auto_class("AutoFeatureExtractor")
    processor.save_pretrained(folder)


def write_default_card(folder, repo_id=None, overwrite=False):
    """Writes a model card (`README.md`) into a saved checkpoint `folder` that has none: Hub metadata (library,
    pipeline_tag of its task, tags) and a How to use that starts with the install line (`install_command`). The
    training recipes replace it with their full card (data, results, hyperparameters). Returns its path, or None
    where a card was kept."""
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    path = folder / CARD_FILE
    if path.is_file() and not overwrite:
        return None
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tasks = [ARCHITECTURE_TASKS[name] for name in config.get("architectures") or [] if name in ARCHITECTURE_TASKS]
    task = tasks[0] if tasks else EMBEDDING_TASK
    name = repo_id or f"<your-username>/{folder.resolve().name}"
    data = ModelCardData(library_name="transformers", pipeline_tag=HUB_PIPELINE_TAGS[task],
                         tags=["sign-language", "pose", "mediapipe", "msmae", "ms-mae"])
    example = '"sign.mp4", top_k=5' if task == RECOGNITION_TASK else '"sign.mp4"'
    text = f"""# {name.split("/")[-1]}

An MS-MAE (Multi-Stream Masked Autoencoder) model for sign language ({task}): it reads MediaPipe Holistic keypoints,
extracted from a video by its own code, or given as a pose-format `.pose` file. Saved with msmae.

## How to use

```bash
{install_command(folder)}
```

```python
from transformers import pipeline

# trust_remote_code runs this repository's Python files: read them, then pin the commit you read with revision=.
pipe = pipeline(model="{name}", trust_remote_code=True)
print(pipe({example}))
```
"""
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}").save(path)
    return path


# ---- pushes ---------------------------------------------------------------------------------------------------------


def files_to_upload(folder) -> list[str]:
    """Paths (relative to `folder`, sorted) that a push of `folder` uploads: everything but `UPLOAD_IGNORE_PATTERNS`."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    return sorted(filter_repo_objects(paths, ignore_patterns=UPLOAD_IGNORE_PATTERNS))


def upload_checkpoint(folder, repo_id, *, commit_message, commit_description=None, private=None, token=None,
                      revision=None, create_pr=False, api=None):
    """Uploads what `files_to_upload` allows of `folder` to the Hub model repository `repo_id` (created if needed,
    and the branch `revision` too) in one commit; a README.md already in the repository stays. Returns the commit."""
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision and not revision.startswith("refs/pr"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    files = files_to_upload(folder)
    if CARD_FILE in files and api.file_exists(repo_id, CARD_FILE, revision=revision):
        files.remove(CARD_FILE)  # the card written for the repository (by training, or by hand) stays
    return api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                             commit_description=commit_description, revision=revision, create_pr=create_pr,
                             allow_patterns=files)


__all__ = [
    "save_processor_for",
    "upload_checkpoint",
    "write_default_card",
    "AUTO_MAPS",
    "ARCHITECTURE_TASKS",
    "PIPELINE_CLASSES",
    "PIPELINE_MODULE",
    "HUB_PIPELINE_TAGS",
    "RECOGNITION_TASK",
    "TRANSLATION_TASK",
    "EMBEDDING_TASK",
    "UPLOAD_IGNORE_PATTERNS",
    "HubConfigMixin",
    "HubModelMixin",
    "DamagedWeightsError",
    "WEIGHTS_CHECKSUM_KEY",
    "tensors_sha256",
    "verify_weights_checksum",
    "weights_checksum_problem",
    "add_pipeline_to_checkpoint",
    "checkpoint_task",
    "copy_pipeline_code",
    "custom_pipelines_for",
    "files_to_upload",
    "imported_packages",
    "install_command",
    "requirement_lines",
    "write_requirements",
    "REQUIREMENTS_FILE",
    "TESTED_TRANSFORMERS",
    "merged_custom_pipelines",
    "tasks_for_checkpoint",
]
