"""The shared core of the exercise checkers: compare a learner's answer with the reference,
name the typical mistake it matches, and keep an unsolved learner notebook running.

The contract every `check_*` follows (see `exercise` below):
- the answer is right: print one `[ok] ...` line and return the learner's own function or class;
- the answer is wrong: raise `ExerciseError` whose message names the mistake and the fix
  (or, with `raise_on_failure=False`, return the `CheckResult` so a notebook can show it);
- the answer is a stub that raises `NotImplementedError`: print one `[todo] ...` line saying what
  to write and return sdcourse's reference, so that every later cell keeps working.

How a mistake is named: each checker also computes what the reference would give with a known
mistake (sin and cos swapped, 1/sqrt(d_head) forgotten, ...). If the learner's output matches one
of those, the hint names that mistake. Shortcuts an exercise forbids (`F.group_norm` where the
exercise asks for GroupNorm by hand, ...) are blocked while the learner's code runs (`forbid`).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional

import torch

from ..i18n import tr
from ..perturb import perturb_  # noqa: F401 - re-exported: checks.perturb_


class ExerciseError(AssertionError):
    """A learner's answer differs from the reference. The message says how and gives a hint
    (in the course's language: see sdcourse/i18n.py)."""

    def __init__(self, message: str = ""):
        super().__init__(tr(message))


@dataclass
class CheckResult:
    name: str
    passed: bool
    max_abs_diff: float
    mistake: Optional[str] = None  # the name of the typical mistake the answer matches, if any
    hint: str = ""

    def __str__(self) -> str:  # the one line a learner reads, in the course's language
        return tr(self._line())

    def _line(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: matches the reference (max |difference| {self.max_abs_diff:.1e})"
        if self.max_abs_diff == float("inf"):  # no number to compare: a crash, a wrong type or shape
            return f"[wrong] {self.name}: {self.hint}"
        return f"[wrong] {self.name}: max |difference| {self.max_abs_diff:.3g} from the reference. {self.hint}"


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item()


# (check name, mistake name, the mistake's distance from the reference in units of the tolerance),
# appended by every `compare`: tests assert that each named mistake is at least 10 tolerances away,
# so that a right answer can never be mistaken for a named mistake (or the reverse).
MARGINS: list = []


def _record_margins(name: str, expected: torch.Tensor, mistakes: Optional[Dict[str, torch.Tensor]], atol: float) -> None:
    for mistake_name, candidate in (mistakes or {}).items():
        if isinstance(candidate, torch.Tensor) and tuple(candidate.shape) == tuple(expected.shape):
            diff = _max_diff(candidate, expected)
            MARGINS.append((name, mistake_name, diff / atol if atol > 0 else (float("inf") if diff > 0 else 0.0)))
    del MARGINS[:-2000]


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
    _record_margins(name, expected, mistakes, atol)
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


# ---------------------------------------------------------------------------------------------
# Notebooks 00-02: the UNet's inputs, the time embedding, GroupNorm and the residual block.
# Each checker below builds the reference AND the outputs of typical mistakes, so that a wrong
# answer is named ("sin and cos swapped"), not only measured.
# ---------------------------------------------------------------------------------------------


@dataclass
class ShapeCheckResult(CheckResult):
    """A CheckResult for answers that are shapes: says which case went wrong, not a max difference."""

    detail: str = ""

    def _line(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: every shape is right"
        return f"[wrong] {self.name}: {self.detail} {self.hint}"


def _named(hints: Dict[str, str]) -> Dict[str, str]:
    """Start each hint with the mistake's name, so the learner reads what went wrong, then the fix."""
    return {mistake: f"It looks like: {mistake}. {advice}" for mistake, advice in hints.items()}


def _finish(result: CheckResult, raise_on_failure: bool) -> CheckResult:
    """Print a passing result, raise (or return) a failing one: what `compare` does at its end."""
    if raise_on_failure and not result.passed:
        raise ExerciseError(str(result))
    if result.passed:
        print(result)
    return result


def _call(name: str, fn: Callable, *args, hint: str = "", forbidden: tuple = ()):
    """Run the learner's code; turn an exception into an ExerciseError that says where and why.

    NotImplementedError passes through (the stub is not written yet: `exercise` turns it into a
    [todo] line). `forbidden`: names of shortcuts (see `forbid`) blocked while the code runs."""
    try:
        with forbid(*forbidden):
            return fn(*args)
    except (ExerciseError, NotImplementedError):
        raise
    except ShortcutUsed as used:
        raise ExerciseError(f"[wrong] {name}: {used}") from None
    except Exception as error:  # the learner's code can fail in any way: report it, with a hint
        detail = " ".join(str(error).split()).rstrip(".")  # one line: a message key matches it
        hint = hint or "Compare your code line by line with the cells above."
        raise ExerciseError(f"[wrong] {name}: your code raised {type(error).__name__}: {detail}. {hint}") from error


def _check_shapes(name, cases, raise_on_failure=True, finish=True) -> ShapeCheckResult:
    """cases: (label, got shape, accepted shapes, {mistake name: shape or [shapes]}, {mistake name: hint}).

    The first case whose shape is not accepted decides the result; its shape is looked up
    among the mistakes to name it. finish=False: return the result without printing or raising
    (for a checker that goes on to check values).
    """
    if not finish:
        return _shape_result(name, cases)
    return _finish(_shape_result(name, cases), raise_on_failure)


def _shape_result(name, cases) -> ShapeCheckResult:
    for label, got, accepted, mistakes, hints in cases:
        got = tuple(got)
        if got in [tuple(a) for a in accepted]:
            continue
        mistake = next((m for m, shapes in mistakes.items()
                        if got in ([tuple(s) for s in shapes] if isinstance(shapes, list) else [tuple(shapes)])), None)
        hint = _named(hints).get(mistake, f"It looks like: {mistake}.") if mistake else (
            f"Expected {tuple(accepted[0])}. Go back to the table of the three inputs above.")
        detail = f"{label} has shape {got}, expected {tuple(accepted[0])}."
        return ShapeCheckResult(name, False, float("inf"), mistake, hint, detail)
    return ShapeCheckResult(name, True, 0.0)
class _seeded:
    """Fixed inputs and weights for a checker without touching the learner's random stream."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _build(cls, name: str, *args, **kwargs) -> torch.nn.Module:
    """Instantiate the learner's class with the reference's arguments, or explain why it failed."""
    try:
        return cls(*args, **kwargs).float().cpu()
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - we report every kind of failure to the learner
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise ExerciseError(f"[wrong] {name}: {cls.__name__}({shown}) failed with {type(error).__name__}: {error}") from error


def _run(fn: Callable, name: str, hint: str = "", forbidden: tuple = ()) -> torch.Tensor:
    """Call the learner's code without gradients; see `_call`."""
    with torch.no_grad():
        return _call(name, fn, hint=hint, forbidden=forbidden)


# --- shortcuts an exercise forbids ------------------------------------------------------------

class ShortcutUsed(Exception):
    """Raised inside a check when the learner's code calls a function the exercise forbids."""


# name -> (module, attribute) pairs that compute it; all are blocked together.
SHORTCUTS = {
    "group_norm": [(torch.nn.functional, "group_norm"), (torch, "group_norm")],
    "layer_norm": [(torch.nn.functional, "layer_norm"), (torch, "layer_norm")],
    "interpolate": [(torch.nn.functional, "interpolate"), (torch.nn.functional, "upsample"),
                    (torch.nn.functional, "upsample_nearest")],
    "pixel_unshuffle": [(torch.nn.functional, "pixel_unshuffle"), (torch, "pixel_unshuffle")],
    "scaled_dot_product_attention": [(torch.nn.functional, "scaled_dot_product_attention")],
    "multi_head_attention_forward": [(torch.nn.functional, "multi_head_attention_forward")],
}


@contextlib.contextmanager
def forbid(*names: str) -> Iterator[None]:
    """Block the named shortcuts (keys of SHORTCUTS) while the block runs: calling one raises
    ShortcutUsed naming it. nn.GroupNorm, nn.Upsample, ... call these functions too, so they are
    blocked with them. Everything is restored on exit, also after an error."""
    saved = []
    try:
        for name in names:
            for module, attr in SHORTCUTS[name]:
                if hasattr(module, attr):
                    saved.append((module, attr, getattr(module, attr)))
                    setattr(module, attr, _blocked(f"{module.__name__}.{attr}"))
        yield
    finally:
        for module, attr, original in reversed(saved):
            setattr(module, attr, original)


def _blocked(qualified: str) -> Callable:
    short = qualified.replace("torch.nn.functional.", "F.")

    def blocked(*args, **kwargs):
        raise ShortcutUsed(f"your code calls {short}, the very thing this exercise asks you to write by hand. "
                           f"Write it with basic tensor operations (view, mean, matmul, softmax, ...).")
    return blocked


def say(line: str) -> None:
    """Print one checker line (`[ok] ...`, `[todo] ...`) in the course's language: for the few
    checks a notebook writes in its own code."""
    print(tr(line))


# --- the learner-edition contract -----------------------------------------------------------

def exercise(name: str, todo: str, reference: Callable[[], Any]) -> Callable:
    """Wrap a checker `check(candidate, ..., raise_on_failure=True) -> CheckResult` with the contract
    in this module's docstring. `todo`: one line saying what to write; `reference()`: sdcourse's
    version, returned in place of a stub that raises NotImplementedError."""
    def decorate(check: Callable) -> Callable:
        @functools.wraps(check)
        def run(candidate, *args, raise_on_failure: bool = True, **kwargs):
            try:
                result = check(candidate, *args, raise_on_failure=raise_on_failure, **kwargs)
            except ExerciseError as error:
                if raise_on_failure:
                    raise
                # the learner's code crashed or used a forbidden shortcut: one line, not a traceback
                message = str(error)
                return CheckResult(name, False, float("inf"),
                                   hint=message.split(": ", 1)[1] if message.startswith("[wrong]") else message)
            except NotImplementedError:
                print(tr(f"[todo] {name}: {todo}"))
                if not raise_on_failure:
                    return CheckResult(name, False, float("inf"), mistake="not written yet", hint=todo)
                return reference()
            return candidate if raise_on_failure else result
        run.reference = reference
        run.exercise_name = name
        return run
    return decorate
