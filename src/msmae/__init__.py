"""MS-MAE: Multi-Stream Masked Autoencoders for sign language, as Hugging Face Transformers models."""

from .configuration_msmae import MSMAEConfig

__version__ = "0.1.0"
__all__ = ["MSMAEConfig"]
