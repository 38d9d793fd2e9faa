"""MS-MAE: Multi-Stream Masked Autoencoders for sign language, as Hugging Face Transformers models.

Importing `msmae` registers the models with transformers' Auto classes and marks them for
`trust_remote_code` export: `save_pretrained` writes `auto_map` and copies the code files, so the
saved folder loads with `AutoModel.from_pretrained(path, trust_remote_code=True)` where msmae is not installed.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForSeq2SeqLM,
    AutoModelForVideoClassification,
)

from .configuration_msmae import MSMAEConfig
from .modeling_msmae import (
    MSMAEForPreTraining,
    MSMAEForPreTrainingOutput,
    MSMAEForSignClassification,
    MSMAEModel,
    MSMAEModelOutput,
    MSMAEPreTrainedModel,
)
from .pose_io import (
    SignPose,
    load_pose,
    read_asl_app_json,
    read_frame_folder,
    read_landmark_array,
    read_msl150_sample,
    read_pose_file,
)
from .processing_msmae import MSMAEPoseProcessor, normalize_keypoints
from .configuration_sign_translation import SignTranslationConfig
from .modeling_sign_translation import SignTranslationModel
from .embeddings import embed_clips
from .pipeline_msmae import (  # importing registers the three pipeline tasks
    SignLanguageEmbeddingPipeline,
    SignLanguageRecognitionPipeline,
    SignLanguageTranslationPipeline,
    add_pipeline_to_checkpoint,
)

__version__ = "0.1.0"

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

__all__ = [
    "MSMAEConfig",
    "MSMAEModel",
    "MSMAEForPreTraining",
    "MSMAEForSignClassification",
    "MSMAEPreTrainedModel",
    "MSMAEModelOutput",
    "MSMAEForPreTrainingOutput",
    "SignTranslationConfig",
    "SignTranslationModel",
    "SignLanguageRecognitionPipeline",
    "SignLanguageTranslationPipeline",
    "SignLanguageEmbeddingPipeline",
    "add_pipeline_to_checkpoint",
    "embed_clips",
    "MSMAEPoseProcessor",
    "normalize_keypoints",
    "SignPose",
    "load_pose",
    "read_pose_file",
    "read_landmark_array",
    "read_msl150_sample",
    "read_asl_app_json",
    "read_frame_folder",
]
