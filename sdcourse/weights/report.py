"""What stops weights from fitting a model, as one readable table.

    compare_state_dicts(model, weights)   -> {"missing": [...], "unexpected": [...], "mis-shaped": [...]}
    format_report(report)                 -> the table as text ("" when everything fits)
    report_mismatch(model, weights)       -> both in one call: the table, or "" when everything fits
    load_state_dict_strict(model, state)  `model.load_state_dict` that explains every mismatch first

`model` may be an `nn.Module` or a mapping of its keys; `weights` a state dict or a mapping
key -> shape (what `read_checkpoint` gives), so a file can be checked before any data is read.
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple, Union

import torch

from ..i18n import tr
from .errors import ArchitectureError

Shapes = Mapping[str, Union[torch.Tensor, Tuple[int, ...]]]


def shape_of(value) -> Tuple[int, ...]:
    """A tensor's shape, or a shape given as a tuple / torch.Size, as a plain tuple."""
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def compare_state_dicts(model: Union[torch.nn.Module, Shapes], state_dict: Shapes) -> Dict[str, list]:
    """What stops `state_dict` from loading strictly into `model`: missing, unexpected, mis-shaped keys.

    "mis-shaped" items are (key, shape in the weights, shape in the model).
    """
    expected = model.state_dict() if isinstance(model, torch.nn.Module) else model
    return {
        "missing": sorted(k for k in expected if k not in state_dict),
        "unexpected": sorted(k for k in state_dict if k not in expected),
        "mis-shaped": sorted(
            (k, shape_of(state_dict[k]), shape_of(v))
            for k, v in expected.items() if k in state_dict and shape_of(state_dict[k]) != shape_of(v)
        ),
    }


def format_report(report: Dict[str, list], limit: int = 15) -> str:
    """A readable table of a `compare_state_dicts` report ("" when it lists nothing)."""
    lines = []
    for kind in ("missing", "unexpected", "mis-shaped"):
        items = report.get(kind, [])
        if not items:
            continue
        lines.append(f"{kind} ({len(items)}):")
        for item in items[:limit]:
            if kind == "mis-shaped":
                key, got, want = item
                lines.append(f"  {key:<60} file {str(got):<20} model {want}")
            else:
                lines.append(f"  {item}")
        if len(items) > limit:
            lines.append(tr(f"  ... and {len(items) - limit} more"))
    return "\n".join(lines)


def report_mismatch(model: Union[torch.nn.Module, Shapes], state_dict: Shapes, limit: int = 15) -> str:
    """The table of missing, unexpected and mis-shaped keys of `state_dict` for `model`; "" when it fits.

    e.g.  missing (1):
            unet.encoders.1.0.conv_feature.weight
          mis-shaped (1):
            final.conv.bias        file (5,)        model (4,)
    """
    return format_report(compare_state_dicts(model, state_dict), limit=limit)


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], assign: bool = False
) -> torch.nn.Module:
    """`model.load_state_dict(state_dict)` that first explains every mismatch in one readable error.

    Raises ArchitectureError (a CheckpointError, a ValueError) with the table of `report_mismatch`.
    assign=True puts the given tensors into the model instead of copying them (for a model built on
    the `meta` device: no second copy of the weights in memory).
    """
    table = report_mismatch(model, state_dict)
    if table:
        raise ArchitectureError(tr("The weights do not fit the model:") + "\n" + table)
    model.load_state_dict(state_dict, strict=True, assign=assign)
    return model
