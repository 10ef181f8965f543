"""sdcourse: the Stable Diffusion v1 UNet rebuilt from scratch, one component at a time."""
from .attention import CrossAttention, SelfAttention, attention_weights
from .device import default_device, describe_device, on_colab, set_threads
from .time_embedding import TimeEmbedding, sinusoidal_embedding
from .unet import (
    UNET,
    Diffusion,
    SwitchSequential,
    UNET_AttentionBlock,
    UNET_OutputLayer,
    UNET_ResidualBlock,
    UNetConfig,
    Upsample,
)
from .weights import (
    CheckpointError,
    convert_compvis_unet,
    convert_diffusers_unet,
    diffusers_config,
    load_state_dict_strict,
    load_unet,
    save_unet,
)

__version__ = "0.1.0"

__all__ = [
    "CrossAttention", "SelfAttention", "attention_weights",
    "default_device", "describe_device", "on_colab", "set_threads",
    "TimeEmbedding", "sinusoidal_embedding",
    "UNET", "Diffusion", "SwitchSequential", "UNET_AttentionBlock", "UNET_OutputLayer",
    "UNET_ResidualBlock", "UNetConfig", "Upsample",
    "CheckpointError", "convert_compvis_unet", "convert_diffusers_unet", "diffusers_config",
    "load_state_dict_strict", "load_unet", "save_unet",
]
