"""MS-MAE: Multi-Stream Masked Autoencoders for sign language, as Hugging Face Transformers models.

Importing `msmae` registers the models with transformers' Auto classes and marks them for
`trust_remote_code` export: `save_pretrained` writes `auto_map` and copies the code files, so the
saved folder loads with `AutoModel.from_pretrained(path, trust_remote_code=True)` where msmae is not installed.
"""

from transformers import AutoConfig, AutoModel, AutoModelForPreTraining, AutoModelForVideoClassification

from .configuration_msmae import MSMAEConfig
from .modeling_msmae import (
    MSMAEForPreTraining,
    MSMAEForPreTrainingOutput,
    MSMAEForSignClassification,
    MSMAEModel,
    MSMAEModelOutput,
    MSMAEPreTrainedModel,
)

__version__ = "0.1.0"

AutoConfig.register("msmae", MSMAEConfig, exist_ok=True)
AutoModel.register(MSMAEConfig, MSMAEModel, exist_ok=True)
AutoModelForPreTraining.register(MSMAEConfig, MSMAEForPreTraining, exist_ok=True)
# Isolated sign recognition is classification of a (pose) video: the Hub's video-classification task.
AutoModelForVideoClassification.register(MSMAEConfig, MSMAEForSignClassification, exist_ok=True)

MSMAEConfig.register_for_auto_class()
MSMAEModel.register_for_auto_class("AutoModel")
MSMAEForPreTraining.register_for_auto_class("AutoModelForPreTraining")
MSMAEForSignClassification.register_for_auto_class("AutoModelForVideoClassification")

__all__ = [
    "MSMAEConfig",
    "MSMAEModel",
    "MSMAEForPreTraining",
    "MSMAEForSignClassification",
    "MSMAEPreTrainedModel",
    "MSMAEModelOutput",
    "MSMAEForPreTrainingOutput",
]
