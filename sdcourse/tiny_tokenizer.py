"""Tiny CLIP-style tokenizer files, written offline: the stand-in for CLIP's real vocabulary.

SD v1's tokenizer (transformers' `CLIPTokenizer`) reads a vocabulary of 49,408 byte-level BPE
tokens and their merge rules from two files that no test may download. `write_tiny_tokenizer`
writes files of the same format with a few dozen words, so the real tokenizer class runs offline
(tests, notebooks 10 and 11, the tiny pipelines). Needs nothing but the standard library.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .i18n import tr


TINY_WORDS = (
    "a", "an", "the", "of", "on", "in", "and", "with", "photo", "painting", "drawing", "picture",
    "red", "green", "blue", "yellow", "black", "white", "big", "small",
    "cat", "dog", "horse", "bird", "astronaut", "house", "tree", "car", "apple", "circle", "square",
    "riding", "sitting", "left", "right", "top", "bottom", "sky", "grass", "sea", "moon",
)


def _byte_symbols() -> list:
    """The 256 symbols byte-level BPE uses for the bytes 0..255 (printable ones stand for themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for b in range(256):
        if b in keep:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _apply_merges(pieces: list, ranks: dict) -> list:
    """Byte-pair encoding of one word: repeatedly join the adjacent pair with the best (lowest) rank."""
    while len(pieces) > 1:
        rank, i = min((ranks.get(pair, float("inf")), i) for i, pair in enumerate(zip(pieces, pieces[1:])))
        if rank == float("inf"):
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return pieces


def write_tiny_tokenizer(folder, words: Sequence[str] = TINY_WORDS, max_length: int = 77) -> Path:
    """Write CLIP-style tokenizer files (vocab.json, merges.txt, tokenizer_config.json) into `folder`.

    Every byte has a token (so any prompt tokenizes); each word of `words` becomes one token through
    a chain of merges (c+a -> ca, ca+t</w> -> cat</w>). Load with CLIPTokenizer.from_pretrained(folder).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for word in words:
        if not word.isalpha() or not word.islower() or not word.isascii():
            raise ValueError(tr(f"write_tiny_tokenizer: words must be lowercase ASCII letters, got {word!r}."))
    vocab_list = _byte_symbols() + [s + "</w>" for s in _byte_symbols()]
    ranks: dict = {}  # (left, right) -> priority of the merge (lower merges first)
    for word in words:
        pieces = _apply_merges(list(word[:-1]) + [word[-1] + "</w>"], ranks)  # "cat" -> c, a, t</w> -> ...
        while len(pieces) > 1:  # earlier words' merges may split this one oddly: add what joins the rest
            ranks[(pieces[0], pieces[1])] = len(ranks)
            if pieces[0] + pieces[1] not in vocab_list:
                vocab_list.append(pieces[0] + pieces[1])
            pieces = _apply_merges(pieces, ranks)
    merges = [f"{a} {b}" for (a, b), _ in sorted(ranks.items(), key=lambda item: item[1])]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": max_length}))
    return folder
