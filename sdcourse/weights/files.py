"""Opening a weights file: names and shapes at once, tensor data only when asked for.

    with read_checkpoint("v1-5-pruned-emaonly.safetensors") as ckpt:
        ckpt.shapes["model.diffusion_model.out.2.weight"]   # torch.Size([4, 320, 3, 3]); no data read
        weight = ckpt.get("model.diffusion_model.out.2.weight")
    shapes, get = read_checkpoint(path)   # it also unpacks as a pair

`.safetensors` is preferred: its header lists every tensor, so shapes cost nothing and each
tensor is read from a memory map when asked for. Pickles (.ckpt .bin .pt .pth) go through
`pickles.load_pickle` (instructions checked first, then `torch.load(weights_only=True)`): the zip
format is memory-mapped too (its bytes are read when a tensor is used), the older format is read whole.
Every problem is a CheckpointError subclass saying what it is (see `errors.py`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import torch

from .errors import CheckpointError, NotACheckpointError, not_a_checkpoint, truncated
from .pickles import load_pickle
from ..i18n import tr

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
SUFFIXES = (".safetensors",) + PICKLE_SUFFIXES


@dataclass
class Checkpoint:
    """An opened weights file.

    shapes:  every key -> its torch.Size (a tuple), known without reading any tensor data
    get:     get(key) -> the tensor on the CPU, in the file's dtype
    dropped: for pickles, entries that were not tensors and were left out: key -> type name
    format:  "safetensors" or "pickle"
    """

    path: Path
    shapes: Dict[str, torch.Size]
    get: Callable[[str], torch.Tensor]
    format: str
    dropped: Dict[str, str] = field(default_factory=dict)
    _handle: Optional[object] = field(default=None, repr=False)

    def __iter__(self) -> Iterator:  # shapes, get = read_checkpoint(path)
        return iter((self.shapes, self.get))

    def meta(self) -> Dict[str, torch.Tensor]:
        """Every key -> an empty `meta` tensor of its shape: a state dict to check, with no data."""
        return {k: torch.empty(shape, device="meta") for k, shape in self.shapes.items()}

    def close(self) -> None:
        """Let go of the file (a safetensors memory map); `get` stops working."""
        self._handle = None
        self.get = _closed

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _closed(key: str) -> torch.Tensor:
    raise CheckpointError(tr(f"read {key!r} before the checkpoint was closed (inside its `with` block)."))


def refuse_text(path: Path) -> None:
    """Name the two text files most often saved in place of weights: a Git LFS pointer, a web page."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise not_a_checkpoint(path, tr("it is a Git LFS pointer (a small text file standing for the real file)"))
    if head.lstrip().startswith(b"<"):
        raise not_a_checkpoint(path, tr("it is an HTML or XML page (a login or error page saved instead of the file?)"))


def check_safetensors(path: Path) -> None:
    """A safetensors file is an 8-byte header length, a JSON header, then the data: check that it is all there."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        n = int.from_bytes(head[:8], "little") if len(head) == 9 else -1
        if len(head) == 9 and head[8:9] != b"{":  # every safetensors header is a JSON object
            raise not_a_checkpoint(path, tr(f"it starts with {head!r}, not a safetensors header"))
        if n < 2 or 8 + n > size:
            raise truncated(path, tr("the header is incomplete"))
        f.seek(8)
        try:
            header = json.loads(f.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise truncated(path, tr(f"the header is not valid JSON: {error}")) from None
    if 8 + n + end > size:
        raise truncated(path, tr(f"the header promises {8 + n + end:,} bytes, the file has {size:,}"))


def read_checkpoint(path) -> Checkpoint:
    """Open a .safetensors / .ckpt / .bin / .pt / .pth file safely; read shapes now, data on demand.

    Raises (all CheckpointError, a ValueError): CheckpointError when the file does not exist,
    NotACheckpointError (an unknown suffix, an HTML page, a Git LFS pointer, a pickle of something
    else), TruncatedCheckpointError (an empty, cut-off or damaged file), UnsafeCheckpointError (a
    pickle that could run code: refused, nothing executed). A MemoryError passes through.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(tr(f"{path} does not exist (or is a folder). Download the weights file first."))
    if path.stat().st_size == 0:
        raise truncated(path, tr("the file is empty (0 bytes): the download did not finish"))
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        refuse_text(path)
    if suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        check_safetensors(path)
        try:
            handle = safe_open(str(path), framework="pt", device="cpu")
        except SafetensorError as error:  # the header and the data do not agree
            raise truncated(path, error) from None
        shapes = {k: torch.Size(handle.get_slice(k).get_shape()) for k in handle.keys()}
        return Checkpoint(path, shapes, handle.get_tensor, "safetensors", _handle=handle)
    if suffix in PICKLE_SUFFIXES:
        tensors, dropped = load_pickle(path)
        return Checkpoint(path, {k: v.shape for k, v in tensors.items()}, tensors.__getitem__, "pickle", dropped)
    raise NotACheckpointError(
        tr(f"{path.name}: unknown file type {suffix!r}. Give a .safetensors file (preferred) or a pickle "
           f"({', '.join(PICKLE_SUFFIXES)}, read with weights_only=True).")
    )
