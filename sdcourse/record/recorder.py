"""Record attention weights from the course's own attention modules, aggregated online.

The course's `SelfAttention` and `CrossAttention` call `module.observer(module, weights)` with
the (B, H, Lq, Lk) softmax weights whenever `observer` is set (see `sdcourse.attention`). The
recorder sets those observers on the modules you ask for, reduces every call at once to what
you asked to keep (one batch half, mean over heads, one query pixel, ...) and adds it to a
running sum in an `AttentionMaps`. Nothing of another library is patched, and memory does not
grow with the number of denoising steps (unless you ask for one map per timestep).

    rec = AttentionRecorder(model, kind="cross", cfg=True)
    with rec:
        for t in timesteps:
            eps = model(torch.cat([x, x]), torch.cat([uncond, cond]), sinusoidal_embedding(t))
            ...
    maps = rec.maps                             # an AttentionMaps (CPU tensors)
    heat = maps.token_maps([1, 2], size=(64, 64), normalize="max")   # (2, 64, 64)

Each call is tagged with its timestep, read back exactly from the time input (see
`sdcourse.record.timestep`), or the one you set with `rec.timestep = t` in your own loop.
Blocks are named after where they sit in the UNet ("down.1 (H/8)", "mid (H/64)", ...; see
`sdcourse.blocks`).

Classifier-free guidance batch order in this course is [uncond, cond] (as in diffusers): the
first half of the batch is the unconditional pass, the second half the prompt. With
`cfg=True` the recorder checks that the batch is even and that both halves got the same latent,
then keeps only the cond half (`half="cond"`, or "uncond" to study the other one).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..blocks import BlockInfo, attention_blocks, block_grid, find_entry, latent_to_grid, sequence_index
from .maps import AttentionMaps
from .timestep import Timestep, decode_timestep
from ..i18n import tr


def as_tag(t) -> Timestep:
    """A timestep as a plain number: 981, torch.tensor(981) and 981.0 all become the int 981."""
    if isinstance(t, torch.Tensor):
        if t.numel() != 1:
            raise ValueError(tr(f"AttentionRecorder: a timestep tag must be one number, got a tensor of shape {tuple(t.shape)}."))
        t = t.item()
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(tr(f"AttentionRecorder: a timestep must be a number such as 981, got {t!r}.")) from None
    return int(value) if value.is_integer() else value


class AttentionRecorder:
    """Context manager recording the attention weights of a course model.

    model: a `Diffusion`, a `UNET`, or any module holding them (e.g. the tiny trained model of 07);
        the latent's size and the timestep are read where the first Diffusion (else UNET) is called.
    kind: "cross" (image tokens -> context tokens) or "self" (image tokens -> image tokens).
    blocks: None (all) or names/keys/groups to keep, e.g. ["down.1", "mid", "up"].
    factors: None or the resolutions to keep as image/grid factors, e.g. [16, 32] (H/16, H/32).
    heads: "mean" (average heads at once, cheapest) or "all".
    query: self-attention only: the latent pixel (row, col) whose row to keep in every block
        (mapped to each block's grid). None keeps all rows, allowed only while a block's stored
        map has at most `max_elements` numbers (fine for 8x8 or 16x16 latents, not for 64x64).
    cfg: True when the batch is [uncond, cond] (classifier-free guidance, this course's order):
        the batch must be even and both halves must get the same latent; `half` is kept.
    half: "cond" (second half, default) or "uncond" (first half); only with cfg=True.
    sample: None averages the kept batch, an int keeps one sample of it.
    per_timestep: False sums all calls into one map per block (memory bounded); True keeps one
        sum per (block, timestep): memory grows with the timesteps, so restrict `timesteps`.
    timesteps: None records every call; else only calls whose timestep is among these numbers.
    latent_hw: the latent's (height, width) if the model is not a Diffusion/UNET.
    uncond_context: optional (1|B/2, L, d) context of the empty prompt; with cfg=True the first
        half of every context must equal it (checks the [uncond, cond] order for real).
    tokens: optional labels of the context tokens (kept with the maps, for plots).

    The timestep of a call is `rec.timestep` when you set it (e.g. in your own sampling loop), else
    it is read from the model's time input (see `decode_timestep`: whole timesteps come back exactly
    in float32, float16 and bfloat16), else it counts the forward calls.
    Recorders nest (each keeps calling the observer it found). On exit (also after an exception)
    every observer is put back as it was.
    """

    def __init__(self, model: nn.Module, kind: str = "cross", blocks=None, factors=None, heads: str = "mean",
                 query: Optional[Tuple[int, int]] = None, cfg: bool = False, half: str = "cond",
                 sample: Optional[int] = None, per_timestep: bool = False, timesteps=None,
                 latent_hw: Optional[Tuple[int, int]] = None, max_elements: int = 2 ** 22,
                 uncond_context: Optional[torch.Tensor] = None, tokens: Optional[Sequence[str]] = None):
        if not isinstance(model, nn.Module):
            raise ValueError(tr(f"AttentionRecorder: model must be a torch nn.Module (e.g. sdcourse.Diffusion), got {type(model).__name__}."))
        if kind not in ("self", "cross"):
            raise ValueError(tr(f"AttentionRecorder: kind must be 'cross' or 'self', got {kind!r}."))
        if heads not in ("mean", "all"):
            raise ValueError(tr(f"AttentionRecorder: heads must be 'mean' or 'all', got {heads!r}."))
        if half not in ("cond", "uncond"):
            raise ValueError(tr(f"AttentionRecorder: half must be 'cond' or 'uncond', got {half!r}."))
        if query is not None and kind != "self":
            raise ValueError(tr("AttentionRecorder: query=(row, col) is for kind='self'; cross-attention keeps every pixel."))
        self.model, self.kind, self.heads, self.query = model, kind, heads, (tuple(query) if query is not None else None)
        self.cfg, self.half, self.sample = cfg, half, sample
        self.max_elements, self.uncond_context = max_elements, uncond_context
        self.timesteps_filter = {as_tag(t) for t in timesteps} if timesteps is not None else None
        self._timestep: Timestep = None
        self._decoded: Timestep = None
        self._calls = 0
        self._handles: list = []
        self._saved: list = []
        self._active = False

        found = attention_blocks(model, kind)
        if not found:
            raise ValueError(tr(f"AttentionRecorder: {type(model).__name__} holds no course {kind}-attention module."))
        chosen = [(info, m) for info, m in found if self._wanted(info, blocks, factors)]
        if not chosen:
            raise ValueError(
                tr(f"AttentionRecorder: blocks={blocks} factors={factors} match none of {[i.name for i, _ in found]}.")
            )
        self._modules = chosen
        self.maps = AttentionMaps(kind=kind, heads=heads, query=self.query,
                                  latent_hw=tuple(latent_hw) if latent_hw else None,
                                  blocks={info.name: info for info, _ in chosen}, per_timestep=per_timestep,
                                  tokens=list(tokens) if tokens is not None else None,
                                  latent_factor=getattr(find_entry(model), "latent_factor", 8))

    @staticmethod
    def _wanted(info: BlockInfo, blocks, factors) -> bool:
        if factors is not None and info.factor not in set(factors):
            return False
        if blocks is None:
            return True
        blocks = [blocks] if isinstance(blocks, str) else list(blocks)
        return any(b in (info.name, info.key, info.group, info.path) for b in blocks)

    @property
    def timestep(self) -> Timestep:
        """The tag you set for the coming calls (None: read it from the time input)."""
        return self._timestep

    @timestep.setter
    def timestep(self, t) -> None:
        self._timestep = None if t is None else as_tag(t)

    # ---- context manager
    def __enter__(self) -> "AttentionRecorder":
        if self._active:
            raise ValueError(tr("AttentionRecorder: this recorder is already recording; nest different recorders instead."))
        self._saved = [(m, m.observer) for _, m in self._modules]
        for (info, m), (_, old) in zip(self._modules, self._saved):
            m.observer = self._observer(info, old)  # an observer already there keeps being called
        self._handles.append(find_entry(self.model).register_forward_pre_hook(self._pre_hook, with_kwargs=True))
        self._active = True
        return self

    def __exit__(self, *exc) -> bool:
        for m, old in self._saved:
            m.observer = old
        for h in self._handles:
            h.remove()
        self._handles, self._saved, self._active = [], [], False
        for k, v in self.maps.sums.items():  # hand the results back on the CPU
            self.maps.sums[k] = v.cpu()
        return False  # never swallow the exception

    def reset(self) -> None:
        """Forget what was recorded (keeps the settings)."""
        self.maps.sums.clear()
        self.maps.counts.clear()
        self.maps.timesteps.clear()
        self._calls = 0

    def __repr__(self) -> str:
        cfg = f", cfg=[uncond, cond] keeps {self.half}" if self.cfg else ""
        return (f"AttentionRecorder({self.kind}, {len(self._modules)} block(s), heads={self.heads}{cfg}; "
                f"recorded: {self.maps!r})")

    # ---- conveniences
    def token_maps(self, *args, **kwargs) -> torch.Tensor:
        """Same as `rec.maps.token_maps(...)`."""
        return self.maps.token_maps(*args, **kwargs)

    def query_map(self, *args, **kwargs) -> torch.Tensor:
        """Same as `rec.maps.query_map(...)`."""
        return self.maps.query_map(*args, **kwargs)

    @property
    def names(self) -> List[str]:
        return list(self.maps.blocks)

    # ---- hooks
    def _pre_hook(self, module, args, kwargs):
        """Before each model forward: the latent's size, the CFG checks, the timestep."""
        inputs = list(args) + [kwargs[k] for k in ("latent", "x", "context", "time") if k in kwargs]
        latent = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        self._calls += 1
        if latent is not None and latent.ndim == 4:
            self.maps.latent_hw = tuple(latent.shape[-2:])
            if self.cfg:
                self._check_cfg(latent, inputs[1] if len(inputs) > 1 else None)
        time = inputs[2] if len(inputs) > 2 and isinstance(inputs[2], torch.Tensor) else None
        self._decoded = decode_timestep(time) if time is not None else None
        t = self.current_timestep()
        if not self.maps.timesteps or self.maps.timesteps[-1] != t:
            self.maps.timesteps.append(t)
        return None

    def _check_cfg(self, latent: torch.Tensor, context: Optional[torch.Tensor]) -> None:
        b = latent.shape[0]
        if b % 2:
            raise ValueError(
                tr(f"AttentionRecorder(cfg=True): batch {b} is odd, but classifier-free guidance runs [uncond, cond] "
                   "halves. Pass torch.cat([x, x]) and torch.cat([uncond_context, cond_context]), or use cfg=False.")
            )
        if latent.device.type != "meta" and not torch.equal(latent[: b // 2], latent[b // 2:]):
            raise ValueError(
                tr("AttentionRecorder(cfg=True): the two halves of the batch hold different latents. With classifier-free "
                   "guidance both passes see the same latent: torch.cat([x, x]) with contexts [uncond, cond].")
            )
        if self.uncond_context is not None and context is not None and context.shape[0] == b:
            u = self.uncond_context.to(context.device, context.dtype)
            if not torch.allclose(context[: b // 2], u.expand_as(context[: b // 2])):
                raise ValueError(
                    tr("AttentionRecorder(cfg=True): the first half of the context is not the unconditional (empty prompt) "
                       "context. This course's order is [uncond, cond]: torch.cat([uncond_context, cond_context]).")
                )

    def current_timestep(self) -> Timestep:
        """The tag of the current call: rec.timestep if set, else decoded from the time input, else the call count."""
        if self.timestep is not None:
            return self.timestep
        if self._decoded is not None:
            return self._decoded
        return self._calls

    def _observer(self, info: BlockInfo, previous=None):
        def observe(module: nn.Module, weights: torch.Tensor) -> None:
            self._add(info, weights)
            if previous is not None:
                previous(module, weights)
        return observe

    @torch.no_grad()
    def _add(self, info: BlockInfo, weights: torch.Tensor) -> None:
        """Reduce one call's (B, H, Lq, Lk) weights to what was asked and add it to the running sum."""
        t = self.current_timestep()
        if self.timesteps_filter is not None and t not in self.timesteps_filter:
            return
        w = weights.detach()
        b, n_heads, lq, lk = w.shape
        if self.cfg:
            if b % 2:
                raise ValueError(
                    tr(f"AttentionRecorder(cfg=True): attention batch {b} is odd; classifier-free guidance needs "
                       "[uncond, cond] halves (torch.cat([x, x])). Use cfg=False for a plain batch.")
                )
            # (B, H, Lq, Lk) -> (B/2, H, Lq, Lk): second half = cond, first half = uncond
            w = w[b // 2:] if self.half == "cond" else w[: b // 2]
        if info.grid is None:
            info.grid = block_grid(lq, self.maps.latent_hw, info.factor)
        if self.query is not None:
            row = sequence_index(*latent_to_grid(self.query, self.maps.latent_hw or info.grid, info.grid), info.grid[1])
            # (B, H, Lq, Lk) -> (B, H, 1, Lk): only the chosen query pixel's row
            w = w[:, :, row: row + 1]
        if self.sample is not None:
            if not -w.shape[0] <= self.sample < w.shape[0]:
                raise ValueError(tr(f"AttentionRecorder: sample={self.sample} out of range for a kept batch of {w.shape[0]}."))
            w = w[self.sample]  # (B, H, Q, Lk) -> (H, Q, Lk)
        else:
            w = w.float().mean(0)  # (B, H, Q, Lk) -> (H, Q, Lk)
        if self.heads == "mean":
            w = w.float().mean(0, keepdim=True)  # (H, Q, Lk) -> (1, Q, Lk)
        if w.numel() > self.max_elements:
            raise ValueError(
                tr(f"AttentionRecorder: block {info.name} would store {tuple(w.shape)} = {w.numel():,} numbers "
                   f"(limit max_elements={self.max_elements:,}). For self-attention pass query=(row, col); "
                   "or heads='mean', or fewer blocks/factors, or raise max_elements.")
            )
        key = (info.name, t if self.maps.per_timestep else None)
        if key in self.maps.sums:
            self.maps.sums[key].add_(w.float())
            self.maps.counts[key] += 1
        else:
            self.maps.sums[key] = w.float().clone()
            self.maps.counts[key] = 1
