"""The package imports lazily: `import msmae`, the data-only modules and `msmae --help` never load torch; the Auto
classes and pipelines are registered before any msmae model, config or pipeline is used, whichever way it is reached;
no module of msmae is part of an import cycle. Each check runs in a fresh interpreter."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "datasets", "mediapipe", "peft")


def _run(script):
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _loaded_after(statement):
    return _run(f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")


@pytest.mark.parametrize(
    "statement",
    [
        "import msmae",
        "import msmae.pose_io",
        "import msmae.keypoint_layout",
        "from msmae.data import discovery, manifest",
        "from msmae.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "import msmae; msmae.SignPose; msmae.load_pose",
    ],
)
def test_light_imports_load_nothing_heavy(statement):
    assert _loaded_after(statement) == []


def test_help_of_the_installed_command(tmp_path):
    from pathlib import Path

    script = Path(sys.executable).with_name("msmae")
    if not script.exists():
        pytest.skip("the msmae console script is not installed beside this interpreter")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "extract" in result.stdout and "predict" in result.stdout


REGISTERED = """
import json
from transformers import AutoConfig, AutoModel, AutoModelForVideoClassification
from transformers.pipelines import PIPELINE_REGISTRY
{statement}
tiny = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32,
            decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64, num_labels=3)
model = AutoModelForVideoClassification.from_config(AutoConfig.for_model("msmae", **tiny))
print(json.dumps([type(model).__module__, type(AutoConfig.for_model("msmae_translation")).__name__,
                  "sign-language-recognition" in PIPELINE_REGISTRY.supported_tasks,
                  type(model)._auto_class == "AutoModelForVideoClassification" and type(model.config)._auto_class]))
"""


@pytest.mark.parametrize(
    "statement",
    [
        "import msmae; msmae.MSMAEConfig",  # the quick loop runs this one; each takes a fresh interpreter (~10 s)
        *(pytest.param(statement, marks=pytest.mark.slow) for statement in (
            "import msmae; msmae.SignLanguageRecognitionPipeline",
            "from msmae.modeling_msmae import MSMAEModel",
            "from msmae.configuration_msmae import MSMAEConfig",
            "from msmae.processing_msmae import MSMAEPoseProcessor",
            "from msmae.pipeline_msmae import SignLanguageRecognitionPipeline",
            "from msmae.modeling_sign_translation import SignTranslationModel",
            "from msmae.configuration_sign_translation import SignTranslationConfig",
        )),
    ],
)
def test_registrations_happen_before_first_use(statement):
    module, translation_config, pipeline_registered, exported = _run(REGISTERED.format(statement=statement))
    assert module == "msmae.modeling_msmae" and translation_config == "SignTranslationConfig"
    assert pipeline_registered and exported  # marked for trust_remote_code export (auto_map on save)


NO_CYCLES = """
import importlib, json, pkgutil, sys
import msmae
names = sorted(m.name for m in pkgutil.walk_packages(msmae.__path__, "msmae.") if not m.name.endswith("__main__"))
failures = {}
for name in names:
    for loaded in [k for k in sys.modules if k == "msmae" or k.startswith("msmae.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)  # first msmae import of this interpreter state: a cycle would fail here
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "msmae":
            failures[name] = repr(error)
    except Exception as error:
        failures[name] = repr(error)
print(json.dumps([len(names), failures]))
"""


@pytest.mark.slow
def test_every_module_imports_first_without_a_cycle():
    count, failures = _run(NO_CYCLES)
    assert count > 30 and failures == {}


@pytest.mark.slow
def test_peft_is_imported_only_where_adapters_are_built():
    loaded = _loaded_after("import msmae\nmsmae.SignTranslationModel\nmsmae.MSMAEForSignClassification(msmae.MSMAEConfig("
                           "hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))")
    assert "torch" in loaded and "peft" not in loaded


AUTO_ONLY = """
import json, sys
{before}
import msmae
light = "torch" not in sys.modules
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1])  # no trust_remote_code: the local registration must resolve it
print(json.dumps([light, type(model).__module__]))
"""


@pytest.mark.parametrize("before", ["", "import transformers.models.auto"])
@pytest.mark.slow
def test_auto_classes_resolve_msmae_after_a_bare_import(tmp_path, before):
    """`import msmae` then an Auto class, naming no msmae class: registered as transformers' Auto classes load (or
    at `import msmae` when they were loaded already)."""
    _run(f"import msmae\nmsmae.MSMAEModel(msmae.MSMAEConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,"
         f" intermediate_size=64)).save_pretrained({str(tmp_path)!r})\nprint('[]')")
    script = AUTO_ONLY.format(before=before)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    light, module = json.loads(result.stdout.strip().splitlines()[-1])
    assert module == "msmae.modeling_msmae"
    assert light == (before == "")
