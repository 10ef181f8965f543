"""Exercise checkers, one module per notebook on one shared core (`core.py`).

`checks.check_x(candidate)` returns the candidate when it is right, raises `ExerciseError` naming
the mistake when it is wrong, and prints `[todo] ...` and returns sdcourse's reference while the
candidate is a stub raising `NotImplementedError` (see `core.exercise`). `checks.hint("x")` prints a
hint for an exercise without giving the answer away.
"""
from .advice import *  # noqa: F401,F403 - the mistake names (MISSING_SCALE, SKIP_FIRST, ...)
from .core import (CheckResult, ExerciseError, ShapeCheckResult, ShortcutUsed, compare, copy_weights, exercise,
                   forbid, perturb_, say)
from .hints import hint
from .nb00_inputs import check_latent_shape, check_unet_inputs
from .nb01_time_embedding import check_sinusoidal_embedding, check_time_embedding
from .nb02_residual_block import (check_groupnorm, check_residual_block, check_residual_block_parameters,
                                  check_time_broadcast)
from .nb03_attention import (check_cross_attention, check_merge_heads, check_scaled_dot_product, check_self_attention,
                             check_split_heads)
from .nb04_attention_block import (check_attention_block, check_geglu, check_image_to_sequence,
                                   check_sequence_to_image)
from .nb05_unet import (check_any_latent_size, check_decoder_channels, check_switch_sequential, check_unet,
                        check_upsample, check_upsample_module)
from .nb06_diffusion import (check_add_noise, check_ddim_step, check_ddpm_step, check_diffusion, check_guidance,
                             check_output_layer)
from .nb07_training import check_localisation_score, check_space_to_depth, check_training_loss, check_training_step
from .nb08_weights import check_rename_attention_block, check_single_file_keys
from .nb09_vae import check_diagonal_gaussian, check_downsample, check_encode_for_unet, check_vae_attention
from .nb10_text_encoder import (check_causal_mask, check_clip_layer, check_pad_prompt, check_quick_gelu,
                                check_text_embeddings)
from .nb11_text_to_image import check_decode, check_denoise, check_guided_context
