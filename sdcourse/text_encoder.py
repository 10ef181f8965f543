"""The CLIP ViT-L/14 text encoder of SD v1: prompt tokens (B, 77) -> 77 context vectors (B, 77, 768).

SD v1 conditions its UNet on the *last hidden state* of OpenAI's CLIP ViT-L/14 text transformer
(transformers' `CLIPTextModel`, config `openai/clip-vit-large-patch14`):

    token ids (B, 77)
      -> token embedding (49408 x 768) + learned position embedding (77 x 768)
      -> 12 x CLIPLayer: x + attention(LayerNorm(x)) with a causal mask, then x + MLP(LayerNorm(x))
      -> final LayerNorm
      -> (B, 77, 768): the `context` the UNet's cross-attention reads.

Details that matter for equality with the reference: LayerNorm eps 1e-5 everywhere; 12 heads of
64 with scale 1/sqrt(64); q/k/v/out projections all have biases (unlike the UNet's q/k/v); the MLP
is 768 -> 3072 -> 768 with quick-GELU, x * sigmoid(1.702 x) (not the exact GELU); the mask is
causal: token i sees tokens 0..i only, so the vectors before the end-of-text token do not depend
on the padding after it.

Attribute names follow transformers (`embeddings.token_embedding`, `encoder.layers.3.self_attn.q_proj`,
`mlp.fc1`, `final_layer_norm`, ...), so a checkpoint maps by cutting a prefix: `text_model.` in a
`text_encoder/` folder written by transformers 4 (every SD v1.x pipeline on the Hub), nothing in one
written by transformers 5, `cond_stage_model.transformer.text_model.` in an SD v1.x single file
(see `sdcourse.text_encoder_weights`). `TextEncoderConfig()` is SD v1's (123,060,480
parameters); `TextEncoderConfig.tiny()` builds the same classes small.

The tokenizer is not rebuilt here: `tokenize` calls a `transformers` `CLIPTokenizer`
(`load_tokenizer` opens the pipeline's `tokenizer/` folder).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .attention import merge_heads, split_heads
from .i18n import tidy, tr

ACTIVATIONS = ("quick_gelu", "gelu")


@dataclass(frozen=True)
class TextEncoderConfig:
    """Sizes of the CLIP text transformer. The default is SD v1's (openai/clip-vit-large-patch14).

    vocab_size: token ids are 0 .. vocab_size - 1 (49408 byte-level BPE tokens in CLIP).
    n_positions: the longest sequence (77; SD always pads or truncates prompts to exactly 77).
    n_embd: width of every token vector (768 = the UNet's d_context).
    n_layer, n_head: 12 layers of 12 heads (d_head = 64).
    d_mlp: hidden width of each MLP (3072 = 4 x 768).
    layer_norm_eps: 1e-5 in every LayerNorm.
    activation: "quick_gelu" (CLIP ViT-L/14) or "gelu" (the exact one; SD 2.x's OpenCLIP converted
        to this layout uses it).
    eos_token_id: id of `<|endoftext|>`, where `pooled` reads its vector (49407 in CLIP). Configs
        written before transformers fixed it in 2023 (PR #24773), SD v1.5's among them, say 2; then,
        like transformers, the highest id of each row marks the end instead (49407 is the highest id
        in CLIP's vocabulary).
    """

    vocab_size: int = 49408
    n_positions: int = 77
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    d_mlp: int = 3072
    layer_norm_eps: float = 1e-5
    activation: str = "quick_gelu"
    eos_token_id: int = 49407

    @classmethod
    def sd_v1(cls) -> "TextEncoderConfig":
        return cls()

    @classmethod
    def tiny(cls, **overrides) -> "TextEncoderConfig":
        """Same classes, small: vocab 1000, 77 positions, width 64, 2 layers of 4 heads, MLP 128."""
        base = cls(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, d_mlp=128, eos_token_id=999)
        return replace(base, **overrides)

    @property
    def d_head(self) -> int:
        return self.n_embd // self.n_head

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(
                tr(f"TextEncoderConfig: n_embd={self.n_embd} must be divisible by n_head={self.n_head}.")
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                tr(f"TextEncoderConfig: activation {self.activation!r} is not built here; use one of {ACTIVATIONS} "
                "(CLIP ViT-L/14 of SD v1 uses 'quick_gelu').")
            )
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "d_mlp"):
            if getattr(self, name) < 1:
                raise ValueError(tr(f"TextEncoderConfig: {name} must be at least 1, got {getattr(self, name)}."))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """CLIP's activation: x * sigmoid(1.702 x), a cheap approximation of GELU (same shape)."""
    return x * torch.sigmoid(1.702 * x)


def causal_mask(length: int, device: Union[torch.device, str, None] = None) -> torch.Tensor:
    """(L, L) bool, True where query i may look at key j, i.e. j <= i (the lower triangle)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class CLIPTextEmbeddings(nn.Module):
    """Token embedding + learned position embedding: ids (B, L) -> vectors (B, L, n_embd)."""

    def __init__(self, vocab_size: int, n_positions: int, n_embd: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, n_embd)
        self.position_embedding = nn.Embedding(n_positions, n_embd)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids: (B, L) integers, L <= n_positions -> (B, L, n_embd)."""
        length = input_ids.shape[1]
        # (B, L) -> (B, L, D): one learned row per token id
        tokens = self.token_embedding(input_ids)
        # (n_positions, D) -> (L, D): the first L position vectors, the same for every prompt
        positions = self.position_embedding.weight[:length]
        # (B, L, D) + (L, D) -> (B, L, D)
        return tokens + positions


class CLIPAttention(nn.Module):
    """Multi-head self-attention over the tokens with a causal mask (token i sees tokens 0..i).

    Two paths compute the same thing, as in `sdcourse.attention`: `F.scaled_dot_product_attention`
    (fast), and the explicit softmax(Q K^T / sqrt(d_head) + mask) V when `explicit = True` or an
    `observer(module, weights)` is set (it receives the (B, H, L, L) weights).
    `causal = False` drops the causal mask (notebook 10's "break it" experiment; CLIP never does).
    """

    def __init__(self, n_head: int, n_embd: int):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(tr(f"CLIPAttention: n_embd={n_embd} is not divisible by n_head={n_head}."))
        self.n_head, self.n_embd, self.d_head = n_head, n_embd, n_embd // n_head
        self.q_proj = nn.Linear(n_embd, n_embd)
        self.k_proj = nn.Linear(n_embd, n_embd)
        self.v_proj = nn.Linear(n_embd, n_embd)
        self.out_proj = nn.Linear(n_embd, n_embd)
        self.observer: Optional[Callable[[nn.Module, torch.Tensor], None]] = None
        self.explicit = False
        self.causal = True

    def forward(self, x: torch.Tensor, key_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, n_embd); key_padding: None or (B, L) bool, True for tokens that may be attended to
        -> (B, L, n_embd)."""
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(
                tr(f"CLIPAttention: x must be (batch, tokens, {self.n_embd}), got shape {tuple(x.shape)}.")
            )
        # (B, L, D) -> (B, L, D) -> (B, H, L, Dh)
        q = split_heads(self.q_proj(x), self.n_head)
        k = split_heads(self.k_proj(x), self.n_head)
        v = split_heads(self.v_proj(x), self.n_head)
        if key_padding is None and self.observer is None and not self.explicit:
            # the common case (SD passes no padding mask): SDPA applies the causal mask itself
            # (B, H, L, Dh) -> (B, H, L, Dh)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            out = self._attend_masked(q, k, v, key_padding)
        # (B, H, L, Dh) -> (B, L, D)
        out = merge_heads(out)
        # (B, L, D) -> (B, L, D)
        return self.out_proj(out)

    def _attend_masked(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       key_padding: Optional[torch.Tensor]) -> torch.Tensor:
        """The causal mask made explicit (and the padding, if any): (B, H, L, Dh) x 3 -> (B, H, L, Dh)."""
        allowed = causal_mask(q.shape[2], q.device)  # (L, L)
        if not self.causal:
            allowed = torch.ones_like(allowed)  # every token sees every token
        if key_padding is not None:
            # (L, L) & (B, 1, 1, L) -> (B, 1, L, L): causal AND the key is a real token
            allowed = allowed & key_padding[:, None, None, :]
        if self.observer is None and not self.explicit:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        # (B, H, L, Dh) @ (B, H, Dh, L) -> (B, H, L, L)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
        scores = scores.masked_fill(~allowed, float("-inf"))  # -inf above the diagonal: weight 0
        weights = scores.softmax(dim=-1)
        if self.observer is not None:
            self.observer(self, weights)
        # (B, H, L, L) @ (B, H, L, Dh) -> (B, H, L, Dh)
        return weights @ v


class CLIPMLP(nn.Module):
    """Linear n_embd -> d_mlp, quick-GELU, linear d_mlp -> n_embd."""

    def __init__(self, n_embd: int, d_mlp: int, activation: str = "quick_gelu"):
        super().__init__()
        self.fc1 = nn.Linear(n_embd, d_mlp)
        self.fc2 = nn.Linear(d_mlp, n_embd)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, n_embd) -> (B, L, n_embd)."""
        # (B, L, D) -> (B, L, d_mlp)
        x = self.fc1(x)
        x = quick_gelu(x) if self.activation == "quick_gelu" else F.gelu(x)
        # (B, L, d_mlp) -> (B, L, D)
        return self.fc2(x)


class CLIPLayer(nn.Module):
    """One pre-LayerNorm transformer layer: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.self_attn = CLIPAttention(config.n_head, config.n_embd)
        self.layer_norm2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config.n_embd, config.d_mlp, config.activation)

    def forward(self, x: torch.Tensor, key_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, n_embd); key_padding: None or (B, L) bool -> (B, L, n_embd)."""
        # (B, L, D) -> (B, L, D)
        x = x + self.self_attn(self.layer_norm1(x), key_padding)
        # (B, L, D) -> (B, L, D)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    """The stack of `CLIPLayer`s (kept as `encoder.layers` so checkpoint names map by prefix)."""

    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.layers = nn.ModuleList([CLIPLayer(config) for _ in range(config.n_layer)])

    def forward(self, x: torch.Tensor, key_padding: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, n_embd) -> (B, L, n_embd)."""
        for layer in self.layers:
            x = layer(x, key_padding)
        return x


class CLIPTextEncoder(nn.Module):
    """Token ids (B, L <= 77) -> the last hidden state (B, L, 768), the context of SD v1's UNet.

    forward(input_ids, attention_mask=None) equals transformers'
    `CLIPTextModel(input_ids, attention_mask).last_hidden_state`; `encode` also returns the pooled
    vector (the hidden state at each row's `<|endoftext|>`), transformers' `pooler_output`.
    SD v1 passes no attention_mask: the padding tokens sit after the end-of-text token and the
    causal mask already keeps them out of every vector before it.
    """

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig()):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config.vocab_size, config.n_positions, config.n_embd)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """input_ids: (B, L) integer ids, L <= n_positions (77); attention_mask: None or (B, L) of 1 for
        tokens and 0 for padding (padding on the right only) -> last hidden state (B, L, n_embd)."""
        key_padding = self.check_inputs(input_ids, attention_mask)
        # (B, L) -> (B, L, D)
        x = self.embeddings(input_ids)
        # (B, L, D) -> (B, L, D)
        x = self.encoder(x, key_padding)
        return self.final_layer_norm(x)

    def encode(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids -> (last hidden state (B, L, n_embd), pooled (B, n_embd))."""
        hidden = self(input_ids, attention_mask)
        return hidden, self.pooled(input_ids, hidden)

    def pooled(self, input_ids: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The vector at each row's first `<|endoftext|>`: (B, L) ids, (B, L, D) hidden -> (B, D).

        A row without `config.eos_token_id` gives its vector at position 0 (as transformers does).
        """
        if self.config.eos_token_id == 2:  # an old config (see TextEncoderConfig): the highest id is the end
            end = input_ids.to(torch.int).argmax(dim=-1)  # (B, L) -> (B,)
        else:
            end = (input_ids == self.config.eos_token_id).to(torch.int).argmax(dim=-1)  # (B, L) -> (B,)
        # (B, L, D) -> (B, D): row b's vector at position end[b]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), end.to(hidden.device)]

    def check_inputs(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
                     ) -> Optional[torch.Tensor]:
        """Raise ValueError naming the problem and the fix; return the (B, L) bool key mask (or None)."""
        cfg = self.config
        if not isinstance(input_ids, torch.Tensor):
            raise ValueError(
                tr(f"CLIPTextEncoder: input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}. "
                "Make them with sdcourse.tokenize(tokenizer, prompts).")
            )
        if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
            raise ValueError(
                tr(f"CLIPTextEncoder: input_ids must be integer token ids, got dtype {input_ids.dtype}. "
                "Token ids index the embedding table: convert with input_ids.long() (tokenize returns long).")
            )
        if input_ids.ndim != 2:
            raise ValueError(
                tidy(tr(f"CLIPTextEncoder: input_ids must be 2-D (batch, tokens), got shape {tuple(input_ids.shape)}.")
                + (" " + tr("For one prompt add the batch dimension: input_ids[None].") if input_ids.ndim == 1 else ""))
            )
        b, length = input_ids.shape
        if length == 0 or b == 0:
            raise ValueError(tr(f"CLIPTextEncoder: input_ids is empty, shape {tuple(input_ids.shape)}."))
        if length > cfg.n_positions:
            raise ValueError(
                tr(f"CLIPTextEncoder: {length} tokens but the model has only {cfg.n_positions} positions. "
                f"Truncate the prompt to {cfg.n_positions} tokens: sdcourse.tokenize(tokenizer, prompts) "
                "pads or truncates every prompt to exactly that.")
            )
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= cfg.vocab_size:
            raise ValueError(
                tr(f"CLIPTextEncoder: token ids must be in 0..{cfg.vocab_size - 1}, got {low}..{high}. "
                "Use the tokenizer that belongs to these weights (its vocabulary size must match config.vocab_size).")
            )
        weight = self.embeddings.token_embedding.weight
        if input_ids.device != weight.device and weight.device.type != "meta":
            raise ValueError(
                tr(f"CLIPTextEncoder: input_ids are on {input_ids.device} but the model is on {weight.device}. "
                f"Move them with input_ids.to({str(weight.device)!r}).")
            )
        if attention_mask is None:
            return None
        if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
            shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
            raise ValueError(
                tr(f"CLIPTextEncoder: attention_mask must be a tensor of the same shape as input_ids "
                f"{tuple(input_ids.shape)}, got {shape}. Or pass None (SD v1 does).")
            )
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise ValueError(tr("CLIPTextEncoder: attention_mask must hold only 0 (padding) and 1 (token)."))
        keep = attention_mask.to(input_ids.device) != 0  # (B, L) bool
        if not bool(keep[:, 0].all()):
            raise ValueError(
                tr("CLIPTextEncoder: attention_mask is 0 at position 0, so that token would see nothing under the "
                "causal mask. CLIP pads on the right: keep the start token (mask 1) and pad at the end.")
            )
        return keep


def load_tokenizer(path):
    """A diffusers pipeline folder (its `tokenizer/` is used) or a tokenizer folder -> transformers'
    `CLIPTokenizer`. The byte-level BPE tokenizer is transformers' (pip install transformers), not rebuilt."""
    try:
        from transformers import CLIPTokenizer
    except ImportError as error:  # pragma: no cover - only without the dependency
        raise ImportError("load_tokenizer needs transformers' CLIPTokenizer: pip install transformers") from error
    folder = Path(path)
    if (folder / "tokenizer").is_dir():
        folder = folder / "tokenizer"
    # The Hub's SD v1 folders hold vocab.json + merges.txt; transformers 5's save_pretrained writes
    # only tokenizer.json. CLIPTokenizer reads either.
    has_files = all((folder / name).is_file() for name in ("vocab.json", "merges.txt"))
    if not has_files and not (folder / "tokenizer.json").is_file():
        raise ValueError(
            tr(f"load_tokenizer: {folder} has neither vocab.json + merges.txt nor tokenizer.json. Give the pipeline "
            "folder or its tokenizer/ folder (e.g. huggingface_hub.snapshot_download(..., allow_patterns=['tokenizer/*'])).")
        )
    return CLIPTokenizer.from_pretrained(str(folder))


def tokenize(tokenizer, prompts: Union[str, Sequence[str]], max_length: Optional[int] = None) -> torch.Tensor:
    """Prompts -> input_ids (B, 77) long: <|startoftext|>, the BPE tokens, <|endoftext|>, then padding.

    tokenizer: a `transformers` CLIPTokenizer (or CLIPTokenizerFast), e.g.
        CLIPTokenizer.from_pretrained(<SD v1 pipeline folder>/tokenizer).
    prompts: a string or a list of strings.
    max_length: default the tokenizer's model_max_length (77 for SD v1's). Longer prompts are cut to
        max_length (keeping the final <|endoftext|>); shorter ones are padded to it.
    Padding uses the tokenizer's pad token. For SD v1's tokenizer (openai/clip-vit-large-patch14) that
    is `<|endoftext|>` (id 49407) again, so a short prompt ends in a run of <|endoftext|> ids; SD 2.x's
    tokenizer pads with "!" (id 0) instead. The padded vectors are what the UNet attends to too.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts) if isinstance(prompts, (list, tuple)) else [prompts]
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError(
            tr("tokenize: prompts must be a string or a non-empty list of strings, got "
            f"{[type(p).__name__ for p in prompts] or 'an empty list'}.")
        )
    if not callable(tokenizer) or getattr(tokenizer, "pad_token_id", None) is None:
        raise ValueError(
            tr("tokenize: tokenizer must be a transformers CLIPTokenizer with a pad token, e.g. "
            "CLIPTokenizer.from_pretrained(folder / 'tokenizer').")
        )
    if max_length is None:
        max_length = tokenizer.model_max_length
        if max_length > 10_000:  # transformers' "no limit" (a huge number) when the config sets none
            raise ValueError(
                tr("tokenize: the tokenizer has no model_max_length; pass max_length=77 (SD v1's text length).")
            )
    if max_length < 2:
        raise ValueError(tr(f"tokenize: max_length must be at least 2 (start and end token), got {max_length}."))
    ids = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True,
                    return_tensors="pt").input_ids  # (B, max_length)
    return ids.long()
