"""Why a checkpoint cannot be loaded: one exception class per cause, all `ValueError`s.

    CheckpointError                 the base: any reason, with the fix in the message
    ├── NotACheckpointError         the file is no weights file at all (an HTML page, a Git LFS pointer, ...)
    ├── TruncatedCheckpointError    a weights file with missing or damaged bytes (an interrupted download)
    ├── UnsafeCheckpointError       a pickle that needs more than tensors, i.e. could run code: refused
    └── ArchitectureError           readable weights of another model (SD 2.x, SDXL, a VAE, other widths)

`unknown_keys_error` is the one message for checkpoint keys that have no place in the SD v1 UNet.
"""
from __future__ import annotations

from typing import Sequence
from ..i18n import tr


class CheckpointError(ValueError):
    """A checkpoint cannot become the course's model; the message says why and what to do."""


class NotACheckpointError(CheckpointError):
    """The file holds no weights at all (wrong file type, a web page, a Git LFS pointer, ...)."""


class TruncatedCheckpointError(CheckpointError):
    """The file is a weights file, but bytes are missing or damaged (usually an interrupted download)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint needs more than tensors to load, i.e. it could run code: refused."""


class ArchitectureError(CheckpointError):
    """The weights are readable but belong to another architecture or configuration."""


def unknown_keys_error(unmapped: Sequence[str], where: str, limit: int = 20) -> ArchitectureError:
    """The error for keys of `where` (e.g. "this diffusers checkpoint") that the SD v1 UNet does not have."""
    shown = "\n  ".join(unmapped[:limit]) + ("\n  ..." if len(unmapped) > limit else "")
    return ArchitectureError(
        tr(f"{len(unmapped)} key(s) of {where} have no place in the SD v1 UNet:") + f"\n  {shown}\n"
        + tr("Is this an SD v1.x UNet (not SD 2.x, SDXL, or a whole pipeline file)? "
             "A renamed or hand-edited key also ends up here.")
    )


def truncated(path, why) -> TruncatedCheckpointError:
    """The error for a weights file whose bytes are incomplete or damaged; `why` says what was seen."""
    from pathlib import Path

    path = Path(path)
    return TruncatedCheckpointError(
        tr(f"{path.name} ({path.stat().st_size:,} bytes) cannot be read: it looks truncated or corrupt ({why}). "
           "An interrupted download is the usual cause: delete the file and download it again "
           "(huggingface_hub resumes and checks downloads).")
    )


def not_a_checkpoint(path, what: str) -> NotACheckpointError:
    """The error for a file that holds no weights at all; `what` says what it holds instead."""
    from pathlib import Path

    return NotACheckpointError(
        tr(f"{Path(path).name} is not a weights file: {what}. Download the weights file itself "
           "(e.g. with huggingface_hub.hf_hub_download, or `git lfs pull` in a cloned model repository).")
    )
