"""sdcourse: the Stable Diffusion v1 UNet rebuilt from scratch, one component at a time."""
from .attention import CrossAttention, SelfAttention, attention_weights
from .i18n import get_language, set_language
from .device import default_device, describe_device, on_colab, set_threads
from .text_to_image import TextToImage, load_text_to_image
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
from .text_encoder import CLIPTextEncoder, TextEncoderConfig, load_tokenizer, tokenize
from .text_encoder_weights import load_text_encoder
from .vae import LATENT_SCALE, AutoencoderKL, DiagonalGaussianDistribution, VAEConfig
from .vae_latents import decode_latents, encode_image
from .vae_weights import load_vae
from .weights import (
    ArchitectureError,
    CheckpointError,
    NotACheckpointError,
    TruncatedCheckpointError,
    UnsafeCheckpointError,
    read_checkpoint,
    convert_compvis_unet,
    convert_diffusers_unet,
    diffusers_config,
    load_state_dict_strict,
    load_unet,
    save_unet,
)

__version__ = "0.3.0"  # = pyproject.toml's version

__all__ = [
    "CrossAttention", "SelfAttention", "attention_weights",
    "set_language", "get_language",
    "default_device", "describe_device", "on_colab", "set_threads",
    "TimeEmbedding", "sinusoidal_embedding",
    "UNET", "Diffusion", "SwitchSequential", "UNET_AttentionBlock", "UNET_OutputLayer",
    "UNET_ResidualBlock", "UNetConfig", "Upsample",
    "AutoencoderKL", "DiagonalGaussianDistribution", "LATENT_SCALE", "VAEConfig", "decode_latents", "encode_image",
    "load_vae",
    "TextToImage", "load_text_to_image",
    "CLIPTextEncoder", "TextEncoderConfig", "load_text_encoder", "load_tokenizer", "tokenize",
    "ArchitectureError", "CheckpointError", "NotACheckpointError", "TruncatedCheckpointError", "UnsafeCheckpointError",
    "read_checkpoint", "convert_compvis_unet", "convert_diffusers_unet", "diffusers_config",
    "load_state_dict_strict", "load_unet", "save_unet",
]
