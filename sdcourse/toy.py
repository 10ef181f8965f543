"""A toy text-to-image data set made on the fly: one or two coloured shapes on a black image,
a caption that describes them, and the ground truth (masks and attributes) for evaluation.

    red circle top left
    blue triangle bottom right and yellow square top left

Nothing is downloaded: every image is drawn from its seed, so `make_batch(n, seed=s)` returns
the same images, captions and masks on every machine. Images are RGB in [-1, 1] (black
background = -1), their side a multiple of 8 so that the UNet's three halvings line up.

Captions can leave words out (`drop_color`, `drop_shape`, `drop_position`): the omitted
attribute is then random in the image, and each word has to be enough on its own. In the
measurements (sdcourse/assets/README.md) this made the tiny model's drawings more reliable;
what made shape words find their object in the cross-attention maps was the text encoder's
phrase mixing (sdcourse.train.TextEncoder).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .i18n import tr

COLORS: Dict[str, tuple] = {  # name -> RGB in [0, 1]; hues far apart so that a pixel test can tell them
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.85, 0.2),
    "blue": (0.2, 0.35, 1.0),
    "yellow": (0.95, 0.9, 0.15),
    "purple": (0.75, 0.25, 0.95),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right")  # the four quadrants

PAD, START, END = "<pad>", "<start>", "<end>"
SPECIAL = (PAD, START, END)


def _word_list() -> List[str]:
    words = list(SPECIAL) + list(COLORS) + list(SHAPES)
    for position in POSITIONS:
        for w in position.split():
            if w not in words:
                words.append(w)
    return words + ["and"]


VOCAB: List[str] = _word_list()
MAX_TOKENS = 12  # <start> + 2 x (colour, shape, 2 position words) + "and" + <end> = 11, padded to 12


def word_kind(word: str) -> Optional[str]:
    """'color', 'shape', 'position' for content words, None for the rest."""
    if word in COLORS:
        return "color"
    if word in SHAPES:
        return "shape"
    if word in ("top", "bottom", "left", "right"):
        return "position"
    return None


class Tokenizer:
    """Words -> ids with a fixed vocabulary: <start> words <end> then <pad> up to `max_tokens`.

    The empty caption "" gives <start> <end> <pad>...: the unconditional input of classifier-free
    guidance, as the empty string is for SD's CLIP tokenizer.
    """

    def __init__(self, vocab: Sequence[str] = VOCAB, max_tokens: int = MAX_TOKENS):
        self.vocab = list(vocab)
        self.max_tokens = max_tokens
        self.index = {w: i for i, w in enumerate(self.vocab)}
        for s in SPECIAL:
            if s not in self.index:
                raise ValueError(tr(f"Tokenizer: the vocabulary must contain {SPECIAL}; {s!r} is missing."))
        self.pad_id, self.start_id, self.end_id = (self.index[s] for s in SPECIAL)

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, caption: str) -> List[str]:
        """The token strings of a caption, special tokens included (no padding)."""
        return [START] + caption.split() + [END]

    def encode(self, caption: str) -> torch.Tensor:
        """caption -> (max_tokens,) int64 ids."""
        if not isinstance(caption, str):
            raise ValueError(tr(f"Tokenizer.encode: expected a caption string, got {type(caption).__name__}."))
        words = self.words(caption)
        unknown = [w for w in words if w not in self.index]
        if unknown:
            known = ", ".join(w for w in self.vocab if w not in SPECIAL)
            raise ValueError(tr(f"Tokenizer: unknown word(s) {unknown} in {caption!r}. Use only: {known}."))
        if len(words) > self.max_tokens:
            raise ValueError(
                tr(f"Tokenizer: {caption!r} has {len(words)} tokens with <start>/<end>, more than max_tokens="
                   f"{self.max_tokens}. Shorten the caption or build Tokenizer(max_tokens={len(words)}).")
            )
        ids = [self.index[w] for w in words] + [self.pad_id] * (self.max_tokens - len(words))
        return torch.tensor(ids, dtype=torch.long)  # (max_tokens,)

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """list of N captions -> (N, max_tokens) int64 ids."""
        if isinstance(captions, str):
            raise ValueError(tr("Tokenizer: pass a list of captions, e.g. tokenizer(['red circle top left'])."))
        return torch.stack([self.encode(c) for c in captions])  # (N, max_tokens)

    def decode(self, ids: torch.Tensor) -> str:
        """(L,) ids -> the caption (special tokens removed)."""
        return " ".join(self.vocab[int(i)] for i in ids if self.vocab[int(i)] not in SPECIAL)


@dataclass
class ToyObject:
    color: str
    shape: str
    position: str
    center: tuple  # (row, col) in pixels
    radius: float

    def phrase(self, drop: Sequence[str] = ()) -> str:
        words = [getattr(self, a) for a in ("color", "shape", "position") if a not in drop]
        return " ".join(words)


@dataclass
class ToyBatch:
    """images (N, 3, S, S) in [-1, 1]; masks (N, 2, S, S) bool, one per object (the second empty
    for one-object images); captions: N strings; objects: N lists of ToyObject; dropped: N lists
    of the attributes left out of each caption."""

    images: torch.Tensor
    masks: torch.Tensor
    captions: List[str]
    objects: List[List[ToyObject]]
    dropped: List[List[str]] = field(default_factory=list)


def coverage(shape: str, center, radius: float, size: int, supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by the shape: (size, size) in [0, 1], antialiased.

    `render` draws the data set's objects with it; the evaluation judge (sdcourse.evaluate)
    draws its shape templates with it too, so both agree on what a circle, square, triangle is.
    """
    n = size * supersample
    # (n,) sample coordinates at sub-pixel centres, in pixel units
    coords = (np.arange(n) + 0.5) / supersample
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (n, n) each
    dy, dx = yy - center[0], xx - center[1]
    if shape == "circle":
        inside = dx ** 2 + dy ** 2 <= radius ** 2
    elif shape == "square":
        half = radius * 0.85  # about the circle's area, so size does not give the shape away
        inside = (np.abs(dx) <= half) & (np.abs(dy) <= half)
    elif shape == "triangle":
        # apex up; height 2r, base 2r * 1.1; y from -r (apex) to +r (base)
        t = (dy + radius) / (2 * radius)  # 0 at the apex, 1 at the base
        inside = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * radius * 1.1)
    else:
        raise ValueError(tr(f"unknown shape {shape!r}; use one of {SHAPES}."))
    # (n, n) -> (size, s, size, s) -> (size, size): average the sub-pixel samples
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def render(objects: Sequence[ToyObject], size: int = 24) -> tuple:
    """Draw objects on black. Returns image (3, size, size) in [-1, 1] and masks (len(objects), size, size) bool."""
    image = np.zeros((3, size, size), dtype=np.float32)
    masks = []
    for obj in objects:
        cover = coverage(obj.shape, obj.center, obj.radius, size).astype(np.float32)  # (size, size)
        rgb = np.asarray(COLORS[obj.color], dtype=np.float32)[:, None, None]  # (3, 1, 1)
        image = image * (1 - cover) + rgb * cover  # (3, size, size)
        masks.append(cover >= 0.5)
    image = image * 2 - 1  # [0, 1] -> [-1, 1]
    return torch.from_numpy(image), torch.from_numpy(np.stack(masks))


def random_objects(rng: np.random.Generator, n_objects: int, size: int = 24) -> List[ToyObject]:
    """n_objects (1 or 2) with random colour and shape in distinct quadrants, a little jitter in place and size."""
    quadrants = rng.choice(len(POSITIONS), size=n_objects, replace=False)
    q = size / 4  # quadrant centre offset
    objects = []
    for k in quadrants:
        position = POSITIONS[k]
        row = q if position.startswith("top") else 3 * q
        col = q if position.endswith("left") else 3 * q
        jitter = rng.uniform(-0.05, 0.05, size=2) * size
        radius = size * rng.uniform(0.17, 0.2)
        objects.append(ToyObject(
            color=str(rng.choice(list(COLORS))), shape=str(rng.choice(SHAPES)), position=position,
            center=(row + jitter[0], col + jitter[1]), radius=float(radius),
        ))
    return objects


def caption_for(objects: Sequence[ToyObject], drop: Sequence[str] = ()) -> str:
    """'red circle top left and blue square bottom right' (minus the dropped attributes)."""
    return " and ".join(o.phrase(drop) for o in objects)


def make_batch(
    n: int,
    seed: int,
    size: int = 24,
    p_two: float = 0.3,
    drop_color: float = 0.0,
    drop_shape: float = 0.0,
    drop_position: float = 0.0,
) -> ToyBatch:
    """n images made from `seed` (same seed, same batch).

    p_two: probability of two objects. drop_*: probability that a caption leaves that attribute
    out (for all objects of the image; at most two of the three are dropped, never all).
    """
    if size % 8 or size < 16:
        raise ValueError(tr(f"make_batch: size must be a multiple of 8 and >= 16 (the UNet halves it 3 times), got {size}."))
    if n < 1:
        raise ValueError(tr(f"make_batch: n must be >= 1, got {n}."))
    for name, p in (("p_two", p_two), ("drop_color", drop_color), ("drop_shape", drop_shape), ("drop_position", drop_position)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(tr(f"make_batch: {name} is a probability in [0, 1], got {p}."))
    rng = np.random.default_rng(seed)
    images, masks, captions, all_objects, dropped = [], [], [], [], []
    for _ in range(n):
        objects = random_objects(rng, 2 if rng.random() < p_two else 1, size)
        drop = [a for a, p in (("color", drop_color), ("shape", drop_shape), ("position", drop_position)) if rng.random() < p]
        if len(drop) == 3:
            drop = drop[: 2]
        image, mask = render(objects, size)  # (3, S, S), (k, S, S)
        if mask.shape[0] == 1:
            mask = torch.cat([mask, torch.zeros_like(mask)])  # (1, S, S) -> (2, S, S)
        images.append(image)
        masks.append(mask)
        captions.append(caption_for(objects, drop))
        all_objects.append(objects)
        dropped.append(drop)
    return ToyBatch(torch.stack(images), torch.stack(masks), captions, all_objects, dropped)


def parse_caption(caption: str) -> List[Dict[str, str]]:
    """'red circle top left and blue square' -> [{'color': 'red', 'shape': 'circle', 'position': 'top left'},
    {'color': 'blue', 'shape': 'square'}]: the attributes a caption asks for."""
    objects = []
    for phrase in caption.split(" and "):
        words = phrase.split()
        obj: Dict[str, str] = {}
        for w in words:
            if w in COLORS:
                obj["color"] = w
            elif w in SHAPES:
                obj["shape"] = w
        pos = [w for w in words if word_kind(w) == "position"]
        if pos:
            obj["position"] = " ".join(pos)
            if obj["position"] not in POSITIONS:
                raise ValueError(tr(f"parse_caption: unknown position {obj['position']!r}; use one of {POSITIONS}."))
        unknown = [w for w in words if word_kind(w) is None]
        if unknown:
            raise ValueError(tr(f"parse_caption: unknown word(s) {unknown} in {caption!r}."))
        objects.append(obj)
    return objects


def all_single_prompts() -> List[str]:
    """Every full one-object caption: 5 colours x 3 shapes x 4 positions = 60."""
    return [f"{c} {s} {p}" for c in COLORS for s in SHAPES for p in POSITIONS]


def two_object_prompts(n: int, seed: int = 0) -> List[str]:
    """n two-object captions (distinct quadrants), deterministic by seed."""
    rng = np.random.default_rng(seed)
    return [caption_for(random_objects(rng, 2)) for _ in range(n)]
