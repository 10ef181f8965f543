"""Hints for the exercises, asked for by name before looking at the solution:
`checks.hint("sinusoidal_embedding")`. Each notebook's checker module registers its hints here
with `register`; a hint says where to look and what to think about, never the whole answer."""
from __future__ import annotations

from typing import Dict, List

from ..i18n import tr

HINTS: Dict[str, List[str]] = {}


def register(name: str, *lines: str) -> None:
    """Add the hint lines of one exercise (called by the notebook checker modules at import)."""
    HINTS.setdefault(name, []).extend(lines)


def hint(name: str) -> None:
    """Print the hint of one exercise, or the list of exercises that have hints."""
    if name not in HINTS:
        known = ", ".join(sorted(HINTS)) or "none yet"
        raise ValueError(tr(f"checks.hint: no exercise called {name!r}. Exercises with hints: {known}."))
    for line in HINTS[name]:
        print(tr(f"[hint] {name}: {line}"))
