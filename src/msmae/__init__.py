"""MS-MAE: Multi-Stream Masked Autoencoders for sign language, as Hugging Face Transformers models.

What a checkpoint carries sits here, as the flat modules of this folder (configuration, modeling, processing,
pipeline, clip loading, pose reading, MediaPipe Holistic, keypoint layout, augmentation, embeddings, Hub packaging,
the endpoint handler). `save_pretrained` copies them into the checkpoint folder, where msmae may be missing, so each
imports only third-party packages and its flat siblings, relatively (`from .pose_io import SignPose`): never `msmae`
by name nor a subpackage. Everything else lives in subpackages that checkpoints do not carry: `data` (datasets,
extraction, corpora), `training` and `recipes`, `serving` (web demo, live, ONNX export, drawing) and `cli`.
tests/test_layout.py enforces this and the layers of README's "Code map".

`import msmae` is cheap: the names below are imported when first used (PEP 562), so data-only work (`msmae.pose_io`,
`msmae.data`, `msmae --help`) never loads torch. One import hook registers msmae with transformers' Auto classes and
pipeline registry (`register_auto_classes`) as soon as one of the model, config, processor or pipeline modules is
imported, or transformers' Auto classes are loaded, and marks the classes for `trust_remote_code` export:
`save_pretrained` writes `auto_map` and copies the code files, so the saved folder loads with
`AutoModel.from_pretrained(path, trust_remote_code=True)` where msmae is not installed.
"""

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> flat module that defines it
_LAZY_NAMES = {
    "MSMAEConfig": "configuration_msmae",
    "MSMAEModel": "modeling_msmae",
    "MSMAEForPreTraining": "modeling_msmae",
    "MSMAEForSignClassification": "modeling_msmae",
    "MSMAEPreTrainedModel": "modeling_msmae",
    "MSMAEModelOutput": "modeling_msmae",
    "MSMAEForPreTrainingOutput": "modeling_msmae",
    "SignTranslationConfig": "configuration_sign_translation",
    "SignTranslationModel": "modeling_sign_translation",
    "SignLanguageRecognitionPipeline": "pipeline_msmae",
    "SignLanguageTranslationPipeline": "pipeline_msmae",
    "SignLanguageEmbeddingPipeline": "pipeline_msmae",
    "add_pipeline_to_checkpoint": "hub_packaging",
    "embed_clips": "embeddings",
    "MSMAEPoseProcessor": "processing_msmae",
    "normalize_keypoints": "processing_msmae",
    "SignPose": "pose_io",
    "load_pose": "clips",
    "read_pose_file": "pose_io",
    "read_landmark_array": "pose_io",
    "read_msl150_sample": "data.corpora.msl150",
    "read_asl_app_json": "pose_io",
    "read_frame_folder": "pose_io",
}

__all__ = [*_LAZY_NAMES, "register_auto_classes"]


def __getattr__(name):
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule: msmae.data, msmae.cli, ...
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


_registration = None  # None, "running" or "done"

# The modules whose classes the Auto classes and the pipeline registry name: importing any of them registers msmae.
REGISTERING_MODULES = frozenset(
    f"{__name__}.{module}"
    for module in (
        "configuration_msmae",
        "configuration_sign_translation",
        "modeling_msmae",
        "modeling_sign_translation",
        "processing_msmae",
        "pipeline_msmae",
    )
)


def register_auto_classes():
    """Register msmae's configs, models and processor with transformers' Auto classes and its pipelines with the
    pipeline registry, once; returns whether msmae is registered.

    The import hook below calls it at the right time, so users rarely need to. Where one of `REGISTERING_MODULES` or
    a transformers module is still being imported, it returns False and the hook registers when that import ends.
    """
    global _registration
    if _registration is not None:
        return _registration == "done"
    if _importing(REGISTERING_MODULES.__contains__) or _importing(lambda name: name.partition(".")[0] == "transformers"):
        return False
    _registration = "running"
    try:
        from transformers import (
            AutoConfig,
            AutoFeatureExtractor,
            AutoModel,
            AutoModelForPreTraining,
            AutoModelForSeq2SeqLM,
            AutoModelForVideoClassification,
        )

        from .configuration_msmae import MSMAEConfig
        from .configuration_sign_translation import SignTranslationConfig
        from .modeling_msmae import MSMAEForPreTraining, MSMAEForSignClassification, MSMAEModel
        from .modeling_sign_translation import SignTranslationModel
        from .pipeline_msmae import register_pipelines
        from .processing_msmae import MSMAEPoseProcessor
    except BaseException:
        _registration = None
        raise
    AutoConfig.register("msmae", MSMAEConfig, exist_ok=True)
    AutoModel.register(MSMAEConfig, MSMAEModel, exist_ok=True)
    AutoModelForPreTraining.register(MSMAEConfig, MSMAEForPreTraining, exist_ok=True)
    # Isolated sign recognition is classification of a (pose) video: the Hub's video-classification task.
    AutoModelForVideoClassification.register(MSMAEConfig, MSMAEForSignClassification, exist_ok=True)
    AutoFeatureExtractor.register(MSMAEConfig, MSMAEPoseProcessor, exist_ok=True)
    # Translation is pose in, text out through generate(), as SpeechEncoderDecoderModel is for speech.
    AutoConfig.register("msmae_translation", SignTranslationConfig, exist_ok=True)
    AutoModel.register(SignTranslationConfig, SignTranslationModel, exist_ok=True)
    AutoModelForSeq2SeqLM.register(SignTranslationConfig, SignTranslationModel, exist_ok=True)

    MSMAEConfig.register_for_auto_class()
    MSMAEPoseProcessor.register_for_auto_class("AutoFeatureExtractor")
    SignTranslationConfig.register_for_auto_class()
    SignTranslationModel.register_for_auto_class("AutoModelForSeq2SeqLM")
    MSMAEModel.register_for_auto_class("AutoModel")
    MSMAEForPreTraining.register_for_auto_class("AutoModelForPreTraining")
    MSMAEForSignClassification.register_for_auto_class("AutoModelForVideoClassification")
    register_pipelines()
    _registration = "done"
    return True


def _importing(selected) -> bool:
    """Whether a module whose name `selected` accepts is in the middle of its import."""
    return any(
        selected(name) and getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
    )


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """The one registration path: registers msmae when one of its `REGISTERING_MODULES` has been imported, or when
    transformers' Auto classes have been loaded (so that `import msmae` then `AutoModel.from_pretrained(checkpoint)`
    resolves `model_type="msmae"` without `import msmae` paying for transformers), each time once no such import is
    still running: registering in the middle of one would re-enter it. Removes itself once msmae is registered."""

    is_msmae_registration_hook = True  # one per process: a re-imported msmae replaces the old one

    def find_spec(self, fullname, path=None, target=None):
        if not (fullname in REGISTERING_MODULES or fullname.startswith("transformers.")):
            return None
        for finder in sys.meta_path:
            hook = getattr(finder, "is_msmae_registration_hook", False)
            find = getattr(finder, "find_spec", None) if not hook else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisterAfterExec(spec.loader, self)
                return spec
        return None


class _RegisterAfterExec(importlib.abc.Loader):
    def __init__(self, loader, finder):
        self.loader, self.finder = loader, finder

    def __getattr__(self, name):  # get_source, is_package, resource readers: the real loader's
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if self.finder not in sys.meta_path:
            return
        if module.__name__ in REGISTERING_MODULES or _AUTO_MODULE in sys.modules:
            module.__spec__._initializing = False  # this import has ended; the spec says so only after we return
            if register_auto_classes():
                sys.meta_path.remove(self.finder)


_AUTO_MODULE = "transformers.models.auto"
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "is_msmae_registration_hook", False)]
if not (_AUTO_MODULE in sys.modules and register_auto_classes()):
    sys.meta_path.insert(0, _RegisterOnImport())


if TYPE_CHECKING:  # what the lazy names resolve to, for type checkers and IDEs
    from .configuration_msmae import MSMAEConfig
    from .configuration_sign_translation import SignTranslationConfig
    from .embeddings import embed_clips
    from .modeling_msmae import (
        MSMAEForPreTraining,
        MSMAEForPreTrainingOutput,
        MSMAEForSignClassification,
        MSMAEModel,
        MSMAEModelOutput,
        MSMAEPreTrainedModel,
    )
    from .hub_packaging import add_pipeline_to_checkpoint
    from .modeling_sign_translation import SignTranslationModel
    from .pipeline_msmae import (
        SignLanguageEmbeddingPipeline,
        SignLanguageRecognitionPipeline,
        SignLanguageTranslationPipeline,
    )
    from .pose_io import SignPose, read_asl_app_json, read_frame_folder, read_landmark_array, read_pose_file
    from .clips import load_pose
    from .data.corpora.msl150 import read_msl150_sample
    from .processing_msmae import MSMAEPoseProcessor, normalize_keypoints
