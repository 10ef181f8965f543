"""Reading a PyTorch pickle (.ckpt, .bin, .pt, .pth) without running any code from it.

A pickle is a small program: unpickling it calls whatever Python functions it names (its
"globals"), which is how a malicious checkpoint runs code. So a pickle is read in two steps:
1. `unsafe_globals(path)` lists the globals it names beyond the tensors, dicts and numbers that
   `torch.load(weights_only=True)` allows, by reading the pickle's instructions, not running them
   (torch's own `get_unsafe_globals_in_checkpoint` for zip files, `pickletools` for the older
   format). Any found: refused with UnsafeCheckpointError, and nothing is unpickled at all.
2. `torch.load(weights_only=True)`, which could not run code anyway; memory-mapped for zip files.
Each failure is reported as what it is, decided by where it happened and the exception's type:
a file cut short or damaged (TruncatedCheckpointError), no checkpoint at all (NotACheckpointError),
a refused global (UnsafeCheckpointError). A MemoryError passes through as itself.
"""
from __future__ import annotations

import _compat_pickle
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

import torch

from .errors import UnsafeCheckpointError, not_a_checkpoint, truncated
from ..i18n import tr

PICKLE_PROTO = b"\x80"  # the legacy format: pickles one after another, then the raw tensor bytes
LEGACY_PICKLES = 4  # magic number, protocol version, system info, then the object that was saved

# What a damaged file raises while being read (beyond pickle's own UnpicklingError):
# torch's zip reader and legacy reader raise RuntimeError ("unexpected EOF", "failed finding central
# directory"), memory-mapping a short file raises OSError, pickletools raises ValueError when the
# instructions stop early, and the unpickler raises EOFError / IndexError on a cut-off stream.
# Anything else (a MemoryError, a TypeError from a bug) is not about the file and passes through.
DAMAGED = (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError, IndexError, KeyError,
           zipfile.BadZipFile)


def _describe(error: Exception) -> str:
    """"RuntimeError: unexpected EOF, ...": the type and the gist of the message, for display only.

    torch wraps a weights_only refusal in advice to load with weights_only=False, which is not the
    advice for a damaged file: show only the unpickler's own words after "WeightsUnpickler error:".
    """
    text = str(error).rpartition("WeightsUnpickler error:")[2].strip()
    lines = text.splitlines()
    return type(error).__name__ + (f": {lines[0][:200]}" if lines else "")


def _allowed_globals() -> set:
    """The globals `torch.load(weights_only=True)` accepts: its defaults and any added by the user."""
    from torch import _weights_only_unpickler as wo  # the same lists torch's own check reads

    return set(wo._get_allowed_globals()) | set(wo._get_user_allowed_globals())


def _python3_name(module: str, name: str) -> str:
    """Protocol 2 pickles (torch.save's) spell some globals the Python 2 way (`__builtin__.exec`):
    map them as unpickling does, so that names compare with torch's allowlist."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _legacy_globals(path: Path) -> List[str]:
    """Globals named by the pickles of a legacy-format file, read with pickletools (nothing runs)."""
    found = []
    with open(path, "rb") as f:
        for _ in range(LEGACY_PICKLES):
            for opcode, arg, _ in pickletools.genops(f):  # stops after this pickle's STOP
                if opcode.name in ("GLOBAL", "INST") and arg:
                    found.append(_python3_name(*str(arg).split(" ", 1)))  # "module name" -> "module.name"
                elif opcode.name == "STACK_GLOBAL":  # protocol 4+ (torch.save writes 2 unless asked):
                    # the name is computed while unpickling, so it cannot be checked, and weights_only refuses it
                    found.append("(a global whose name is computed while unpickling: STACK_GLOBAL)")
    return found


def unsafe_globals(path) -> List[str]:
    """The Python objects a pickle checkpoint would call beyond what weights_only loading allows.

    Reads the pickle's instructions only; nothing in the file is run. [] means "only tensors and
    plain containers". Raises TruncatedCheckpointError when the instructions stop early.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        allowed = _allowed_globals()
        return sorted({g for g in _legacy_globals(path) if g not in allowed})
    except DAMAGED as error:
        raise truncated(path, _describe(error)) from None


def check_pickle_header(path: Path) -> None:
    """Refuse, from its first bytes, a file that cannot be a torch.save checkpoint."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PK"):  # a zip archive: torch.save's default format since PyTorch 1.6
        if not zipfile.is_zipfile(path):  # a zip's directory is at its end: missing means cut short
            raise truncated(path, tr("the zip archive has no central directory"))
        return
    if not head.startswith(PICKLE_PROTO):
        raise not_a_checkpoint(path, tr(f"it starts with {head[:16]!r}, neither a zip archive nor a pickle"))


def load_pickle(path) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The tensors of a pickle checkpoint, read safely, and what was dropped: {key: type name}.

    A training checkpoint's "state_dict" entry is unwrapped (PyTorch Lightning, CompVis). Values
    that are not tensors (an epoch counter, a config) are dropped and returned so the caller can say so.
    """
    path = Path(path)
    check_pickle_header(path)
    unsafe = unsafe_globals(path)
    if unsafe:
        raise UnsafeCheckpointError(
            tr(f"Refused to load {path.name}: this pickle needs more than tensors to load (it asks for the Python "
               f"object(s) {', '.join(f'`{g}`' for g in unsafe[:5])}). Unpickling it fully could run arbitrary "
               "code on this machine (a pickle may call any Python function while it loads), so its instructions "
               "were only read, and nothing in it was executed. What to do: use the .safetensors version of these "
               "weights (e.g. v1-5-pruned-emaonly.safetensors), or, only if you trust its source, convert it to "
               "safetensors once in a throw-away environment and load that file.")
        )
    is_zip = zipfile.is_zipfile(path)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except DAMAGED as error:  # the globals were all allowed: what failed is the data itself
        raise truncated(path, _describe(error)) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a (PyTorch Lightning) training checkpoint
    if not isinstance(state, Mapping):
        raise not_a_checkpoint(path, tr(f"it holds a {type(state).__name__}, not a dict of tensors"))
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    dropped = {str(k): type(v).__name__ for k, v in state.items() if not isinstance(v, torch.Tensor)}
    return tensors, dropped
