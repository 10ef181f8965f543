"""Exercise checkers: compare a learner's function or module with the reference, report the
largest difference, and when it is wrong, say which typical mistake it looks like.

How a hint is found: each checker also computes what the reference would give with a known
mistake (sin and cos swapped, 1/sqrt(d_head) forgotten, ...). If the learner's output matches
one of those, the hint names that mistake. If it matches none, the hint is general.

Every checker prints one line when the answer is right and raises `ExerciseError` when not,
so a wrong answer stops a notebook run (and fails CI).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch


class ExerciseError(AssertionError):
    """A learner's answer differs from the reference. The message says how and gives a hint."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    max_abs_diff: float
    mistake: Optional[str] = None  # the name of the typical mistake the answer matches, if any
    hint: str = ""

    def __str__(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: matches the reference (max |difference| {self.max_abs_diff:.1e})"
        return f"[wrong] {self.name}: max |difference| {self.max_abs_diff:.3g} from the reference. {self.hint}"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


def compare(
    name: str,
    got: torch.Tensor,
    expected: torch.Tensor,
    mistakes: Optional[Dict[str, torch.Tensor]] = None,
    hints: Optional[Dict[str, str]] = None,
    general_hint: str = "Compare your code line by line with the cells above.",
    atol: float = 1e-5,
    raise_on_failure: bool = True,
) -> CheckResult:
    """Compare `got` with `expected`; on a mismatch look `got` up among known `mistakes`.

    mistakes: mistake name -> the output that mistake produces. hints: mistake name -> advice.
    """
    if not isinstance(got, torch.Tensor):
        result = CheckResult(name, False, float("inf"), hint=f"Expected a torch.Tensor, got {type(got).__name__}.")
    elif tuple(got.shape) != tuple(expected.shape):
        result = CheckResult(
            name, False, float("inf"),
            hint=f"Shape {tuple(got.shape)}, expected {tuple(expected.shape)}. " + general_hint,
        )
    else:
        diff = _max_diff(got, expected)
        if diff <= atol:
            result = CheckResult(name, True, diff)
        else:
            mistake = None
            for mistake_name, candidate in (mistakes or {}).items():
                if tuple(candidate.shape) == tuple(got.shape) and _max_diff(got, candidate) <= atol:
                    mistake = mistake_name
                    break
            hint = (hints or {}).get(mistake, f"It looks like: {mistake}.") if mistake else general_hint
            result = CheckResult(name, False, diff, mistake=mistake, hint=hint)
    if raise_on_failure and not result.passed:
        raise ExerciseError(str(result))
    if result.passed:
        print(result)
    return result


def copy_weights(learner: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Give `learner` the reference's weights (same parameter names and shapes), with a clear error if not."""
    ours, theirs = learner.state_dict(), reference.state_dict()
    missing = [k for k in theirs if k not in ours]
    extra = [k for k in ours if k not in theirs]
    if missing or extra:
        raise ExerciseError(
            f"Your module's parameter names differ from the reference. Missing: {missing[:5]}; unexpected: {extra[:5]}. "
            "Use the notes' attribute names (e.g. groupnorm_feature, conv_feature, linear_time)."
        )
    shapes = [(k, tuple(ours[k].shape), tuple(v.shape)) for k, v in theirs.items() if ours[k].shape != v.shape]
    if shapes:
        raise ExerciseError(f"Parameter shapes differ (name, yours, reference): {shapes[:5]}")
    learner.load_state_dict(theirs)


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Move every parameter away from its init (norm weights from 1, biases from 0), in place, so
    that a swapped or forgotten layer cannot hide behind an identity-like init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.dtype))
    return module
