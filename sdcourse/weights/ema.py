"""Which UNet weights to take from an original (CompVis) training checkpoint: EMA or raw.

A CompVis training checkpoint (`sd-v1-4-full-ema.ckpt`, `v1-5-pruned.ckpt`) holds the UNet twice:
- the raw training weights under `model.diffusion_model.*` (the ones to continue training from), and
- their exponential moving average (EMA) under `model_ema.*`, the smoother copy meant for sampling:
  the "-emaonly" release files keep only it (already renamed to `model.diffusion_model.*`), and
  diffusers' converter calls it "usually better for inference" (`extract_ema=True`).
The EMA copy is the state of a `LitEma` module, whose buffers are the parameter names with every
dot removed (a buffer name may not contain dots): `diffusion_model.input_blocks.0.0.weight` is
stored as `model_ema.diffusion_modelinput_blocks00weight`, next to two counters (`model_ema.decay`,
`model_ema.num_updates`). (CompVis' scripts swap the EMA copy in with `model.ema_scope()` only when
their config says `use_ema: True`; `v1-inference.yaml` says False and samples with the raw copy.)
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

from .detect import EMA_PREFIX
from .errors import ArchitectureError, unknown_keys_error
from .tables import BLOCKS_COMPVIS, COMPVIS_PREFIX
from ..i18n import tr

EMA_COUNTERS = ("model_ema.decay", "model_ema.num_updates")


def ema_key(compvis_key: str) -> str:
    """"model.diffusion_model.input_blocks.0.0.weight" -> "model_ema.diffusion_modelinput_blocks00weight"."""
    if not compvis_key.startswith(COMPVIS_PREFIX):
        raise ValueError(f"ema_key: expected a key starting with {COMPVIS_PREFIX!r}, got {compvis_key!r}.")
    return EMA_PREFIX + compvis_key[len("model."):].replace(".", "")


def _every_unet_key() -> Iterable[str]:
    """Every key an SD v1 UNet may have in the CompVis layout, without the prefix (weight and bias)."""
    for src, _, names in BLOCKS_COMPVIS:
        for inner in ([""] if names is None else [f".{name}" for name in names]):
            for param in ("weight", "bias"):
                yield f"{src}{inner}.{param}"


def choose_unet_keys(keys, ema: Optional[bool], where: str) -> Tuple[Dict[str, str], Optional[str]]:
    """UNet key (no prefix) -> file key, taking the EMA copy or the raw one; and a note saying which.

    ema: None takes the EMA copy when the file has one (the copy meant for sampling), True insists on it,
    False takes the raw training weights. The note is None when the file had only one copy.
    """
    keys = list(keys)
    stored = [k for k in keys if k.startswith(EMA_PREFIX) and k not in EMA_COUNTERS]
    raw = {k[len(COMPVIS_PREFIX):]: k for k in keys if k.startswith(COMPVIS_PREFIX)}
    if not raw and not stored:  # a UNet-only file with bare keys (input_blocks.0.0.weight, ...)
        raw = {k: k for k in keys}
    if not stored:
        if ema:
            raise ArchitectureError(
                tr(f"ema=True, but {where} has no EMA copy of the UNet (no model_ema.* keys): it holds one set "
                   "of weights (an '-emaonly' file already stores the EMA weights as model.diffusion_model.*). "
                   "Pass ema=None to load what it has.")
            )
        return raw, None
    if ema is False:
        if not raw:
            raise ArchitectureError(
                tr(f"ema=False, but {where} holds only the EMA copy of the UNet (model_ema.*), no raw training "
                   "weights (model.diffusion_model.*). Pass ema=None or ema=True.")
            )
        return raw, tr(f"{where} holds two copies of the UNet: loaded the raw training weights "
                       "(model.diffusion_model.*) as asked (ema=False).")
    flat = {ema_key(COMPVIS_PREFIX + k): k for k in (raw or _every_unet_key())}
    unknown = [k for k in stored if k not in flat]
    if unknown:
        raise unknown_keys_error(unknown, tr(f"the EMA copy (model_ema.*) in {where}"))
    chosen = {flat[k]: k for k in stored}
    how = (tr("as asked (ema=True)") if ema
           else tr("the copy meant for sampling; pass ema=False for the raw training weights"))
    if raw:
        return chosen, tr(f"{where} holds two copies of the UNet: loaded the EMA weights (model_ema.*, "
                          f"{len(chosen)} tensors), {how}.")
    return chosen, tr(f"{where} holds the UNet as EMA weights only: loaded the EMA weights (model_ema.*, "
                      f"{len(chosen)} tensors), {how}.")
