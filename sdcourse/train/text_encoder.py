"""The capstone's text encoder: token ids -> context vectors for the UNet's cross-attention.

SD v1 uses CLIP's 12-layer transformer for this (`sdcourse.text_encoder`); the capstone's toy
captions ("red circle top left") need far less: a learned embedding per word and per position,
and, optionally, each word mixed with the other words of its phrase.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..toy import MAX_TOKENS, VOCAB


class TextEncoder(nn.Module):
    """Token ids (B, L) -> context (B, L, d_context): a learned embedding per word plus a learned
    embedding per position, then LayerNorm.

    mixing="none": no token mixing; each context vector knows only its own word and slot.
    mixing="phrase": each content word also gets the mean embedding of the content words of its
        phrase (the words between <start>, "and" and <end>), so "circle" in "red circle top left"
        carries "red" too, the way the later tokens of CLIP's text encoder carry the earlier ones.
        A pixel then finds its whole object behind any word of the phrase.
    """

    def __init__(self, vocab_size: int = len(VOCAB), max_tokens: int = MAX_TOKENS, d_context: int = 64,
                 mixing: str = "none", separator_id: Optional[int] = None, special_ids=()):
        super().__init__()
        if mixing not in ("none", "phrase"):
            raise ValueError(f"TextEncoder: mixing must be 'none' or 'phrase', got {mixing!r}.")
        if mixing == "phrase" and separator_id is None:
            raise ValueError("TextEncoder: mixing='phrase' needs separator_id (the id of 'and') and special_ids.")
        self.vocab_size, self.max_tokens, self.d_context, self.mixing = vocab_size, max_tokens, d_context, mixing
        self.separator_id, self.special_ids = separator_id, tuple(special_ids)
        self.token_embedding = nn.Embedding(vocab_size, d_context)
        self.position_embedding = nn.Parameter(torch.zeros(max_tokens, d_context))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.02)
        self.layernorm = nn.LayerNorm(d_context)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] != self.max_tokens or ids.dtype != torch.long:
            raise ValueError(
                f"TextEncoder: expected token ids (batch, {self.max_tokens}) int64, got {tuple(ids.shape)} {ids.dtype}. "
                "Make them with sdcourse.toy.Tokenizer()(captions)."
            )
        words = self.token_embedding(ids)  # (B, L) -> (B, L, D)
        x = words + self.position_embedding  # (B, L, D) + (L, D)
        if self.mixing == "phrase":
            x = x + self.phrase_mean(ids, words)
        return self.layernorm(x)  # (B, L, D)

    def phrase_mean(self, ids: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """(B, L) ids, (B, L, D) word embeddings -> (B, L, D): for each content word, the mean
        embedding of the content words of its phrase; zero for <start>, <end>, <pad> and "and"."""
        content = ~torch.isin(ids, torch.tensor(self.special_ids + (self.separator_id,), device=ids.device))  # (B, L)
        phrase = torch.cumsum(ids == self.separator_id, dim=1)  # (B, L): 0 for the first phrase, 1 after "and", ...
        # (B, L, 1) == (B, 1, L) -> (B, L, L): token i and token j are content words of the same phrase
        same = (phrase[:, :, None] == phrase[:, None, :]) & content[:, :, None] & content[:, None, :]
        weights = same.float() / same.sum(dim=-1, keepdim=True).clamp(min=1)  # rows average over the phrase
        return weights @ words  # (B, L, L) @ (B, L, D) -> (B, L, D)
