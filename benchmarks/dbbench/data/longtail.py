"""An LVIS-like many-class long-tailed synthetic detection set: 128 classes, LVIS v1's r/c/f mix, four splits.

Classes are the 16 x 8 (shape, colour) combinations of :mod:`dbbench.data.shapes`; category id
``8 * shape_index + colour_index + 1``, name ``"<colour>_<shape>"``. A fixed random permutation (``seed``) gives
every combination its frequency rank, so neither the shape nor the colour alone predicts how rare a class is.

Train instances per frequency rank (:data:`LVIS_V1_RANK_COUNTS`, from :func:`lvis_rank_counts`): LVIS v1 train's
per-class image counts read at 128 evenly spaced ranks, counts above 100 compressed log-linearly onto 101..300.
No image holds two objects of one class, so a class's train image count equals its instance count and the LVIS
groups (r: 1-10 images, c: 11-100, f: > 100) hold exactly LVIS v1's mix: 36 r / 49 c / 43 f (28 / 38 / 34 %).

Splits, each with its own random stream, 1-4 objects of distinct classes per image:

- ``train``: the long tail above (10,731 instances);
- ``train_balanced``: the oracle, the same number of instances with ``round(total / K)`` per class;
- ``val``: ``val_per_class`` instances per class, for every tuned choice (thresholds, hyper-parameters);
- ``test``: ``test_per_class`` instances per class, for reporting only.

Every json carries the same categories, with ``frequency`` (group of the long-tailed train split) and
``longtail_images`` (its train image count), so r/c/f name the same classes in all splits. :attr:`LongTailDataset.
version` (``lvis128-<hash>``) changes whenever the generated files would.

Example:
    >>> import tempfile
    >>> from dbbench.data.longtail import LongTailSpec, get_longtail_dataset
    >>> data = get_longtail_dataset(LongTailSpec(counts=(3, 2, 1), test_per_class=2, val_per_class=1, max_objects=2),
    ...                             cache_dir=tempfile.mkdtemp())
    >>> [c["frequency"] for c in data.categories], data.split("test")[0].name
    (['r', 'r', 'r'], 'test.json')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detbalance.weights import frequency_groups
from detbalance.weights.sampling import COMMON_MAX_IMAGES

from ..checks import check_int
from .shapes import COLOURS, SHAPES
from .synthetic import GENERATOR_VERSION, OBJECT_GAP, default_cache_dir, generate_once, render_split

__all__ = [
    "LVIS_V1_RANK_COUNTS",
    "SPLITS",
    "LongTailSpec",
    "LongTailDataset",
    "lvis_rank_counts",
    "data_version",
    "generate_longtail",
    "get_longtail_dataset",
]

#: Bump when the files of a given spec change (the data version, and so every cached run, changes with it).
LONGTAIL_VERSION = 1
SPLITS = ("train", "train_balanced", "val", "test")
_STREAMS = {"train": 0, "test": 1, "val": 2, "train_balanced": 3}
HEAD = 300

#: ``lvis_rank_counts(<LVIS v1 train image counts>)``: train instances (= images) per frequency rank, 300 -> 1.
LVIS_V1_RANK_COUNTS: tuple[int, ...] = (
    300,
    298,
    297,
    297,
    296,
    295,
    295,
    293,
    291,
    288,
    280,
    275,
    268,
    260,
    247,
    242,
    234,
    221,
    216,
    208,
    201,
    194,
    187,
    181,
    172,
    162,
    158,
    153,
    149,
    143,
    139,
    136,
    134,
    130,
    127,
    119,
    116,
    113,
    111,
    109,
    106,
    104,
    102,
    99,
    95,
    90,
    82,
    79,
    74,
    71,
    69,
    66,
    63,
    61,
    56,
    54,
    50,
    49,
    47,
    46,
    44,
    42,
    41,
    39,
    37,
    35,
    34,
    32,
    31,
    30,
    29,
    28,
    28,
    26,
    25,
    24,
    23,
    21,
    20,
    19,
    18,
    17,
    16,
    16,
    15,
    14,
    13,
    13,
    12,
    12,
    11,
    11,
    10,
    10,
    9,
    9,
    8,
    8,
    8,
    7,
    7,
    7,
    6,
    6,
    5,
    5,
    5,
    5,
    4,
    4,
    4,
    3,
    3,
    3,
    3,
    2,
    2,
    2,
    2,
    2,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
)


def lvis_rank_counts(image_counts: Sequence[int], num_classes: int = 128, head: int = HEAD) -> tuple[int, ...]:
    """Per-rank counts of a ``num_classes`` set shaped like ``image_counts`` (LVIS: one entry per category).

    ``c_i`` = the image count at rank ``round(i * (N - 1) / (num_classes - 1))`` of the counts sorted in
    descending order; counts above 100 map log-linearly from ``[101, max]`` onto ``[101, head]``
    (``exp(log 101 + (log c - log 101) * (log head - log 101) / (log max - log 101))``, rounded), the rest stay.
    """
    counts = sorted((int(c) for c in image_counts), reverse=True)
    if len(counts) < num_classes or num_classes < 2 or counts[-1] < 1:
        raise ValueError(
            f"image_counts has {len(counts)} entries (min {counts[-1] if counts else None}); expected "
            f"at least num_classes={num_classes} >= 2 positive counts"
        )
    picked = [counts[round(i * (len(counts) - 1) / (num_classes - 1))] for i in range(num_classes)]
    low, top = math.log(COMMON_MAX_IMAGES + 1), math.log(max(picked))
    scale = (math.log(head) - low) / (top - low) if top > low else 1.0
    return tuple(c if c <= COMMON_MAX_IMAGES else round(math.exp(low + (math.log(c) - low) * scale)) for c in picked)


@dataclass(frozen=True)
class LongTailSpec:
    """Parameters of the set; equal specs give byte-identical files. ``counts``: train instances per rank."""

    counts: tuple[int, ...] = LVIS_V1_RANK_COUNTS
    test_per_class: int = 20
    val_per_class: int = 10
    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: int = 14
    max_size: int = 36
    seed: int = 0

    def __post_init__(self):
        counts = tuple(self.counts)
        object.__setattr__(self, "counts", counts)
        grid = len(SHAPES) * len(COLOURS)
        if not 2 <= len(counts) <= grid or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1 for c in counts
        ):
            raise ValueError(
                f"LongTailSpec.counts={counts[:10]}... ({len(counts)} entries); expected 2..{grid} integers >= 1"
            )
        for name, low in (
            ("test_per_class", 1),
            ("val_per_class", 1),
            ("image_size", 32),
            ("min_objects", 1),
            ("max_objects", self.min_objects),
            ("min_size", 8),
            ("max_size", self.min_size),
            ("seed", 0),
        ):
            check_int(f"LongTailSpec.{name}", getattr(self, name), minimum=low)
        if self.max_objects * (self.max_size + OBJECT_GAP) ** 2 > 0.5 * self.image_size**2:
            raise ValueError(
                f"max_objects={self.max_objects} cells of max_size={self.max_size} px do not fit in a "
                f"{self.image_size} px image; expected max_objects * (max_size + {OBJECT_GAP})**2 <= "
                "image_size**2 / 2"
            )

    @property
    def num_classes(self) -> int:
        return len(self.counts)

    def split_counts(self, split: str) -> list[int]:
        """Instances per frequency rank of ``split``."""
        k = self.num_classes
        per_split = {
            "train": list(self.counts),
            "train_balanced": [round(sum(self.counts) / k)] * k,
            "val": [self.val_per_class] * k,
            "test": [self.test_per_class] * k,
        }
        if split not in per_split:
            raise ValueError(f"split={split!r}; expected one of {SPLITS}")
        return per_split[split]


@dataclass(frozen=True)
class LongTailDataset:
    """A generated set: ``root/<split>.json`` + ``root/<split>/*.png`` for every split of :data:`SPLITS`."""

    root: Path
    spec: LongTailSpec
    version: str
    categories: tuple[dict, ...]

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c["name"] for c in self.categories)

    def split(self, name: str) -> tuple[Path, Path]:
        """(json, image folder) of split ``name``."""
        if name not in SPLITS:
            raise ValueError(f"split={name!r}; expected one of {SPLITS}")
        return self.root / f"{name}.json", self.root / name


def _categories(spec: LongTailSpec) -> list[dict]:
    """Categories sorted by id (= label order); each knows its shape, colour, rank and long-tail group."""
    perm = np.random.default_rng(np.random.SeedSequence([spec.seed, 99])).permutation(len(SHAPES) * len(COLOURS))
    cats = []
    groups = frequency_groups(spec.counts)  # a class's train images = its instances (one per image at most)
    for rank, cell in enumerate(perm[: spec.num_classes].tolist()):
        shape, (colour, _) = SHAPES[cell // len(COLOURS)], COLOURS[cell % len(COLOURS)]
        cats.append(
            {
                "id": cell + 1,
                "name": f"{colour}_{shape}",
                "shape": shape,
                "color": colour,
                "frequency_rank": rank,
                "longtail_images": spec.counts[rank],
                "frequency": groups[rank],
            }
        )
    return sorted(cats, key=lambda c: c["id"])


def _pack_distinct(per_label: Sequence[int], spec: LongTailSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """Cut the instances into images of ``min_objects..max_objects`` objects, never two of one class in an image.

    Image sizes are drawn first; classes, most frequent first, then take distinct images at random with
    probability proportional to the images' free places. A draw that runs out of room is redrawn (at most 100
    times; large sets never need it).
    """
    total = int(sum(per_label))
    for _attempt in range(100):
        sizes: list[int] = []
        while sum(sizes) < total:
            sizes.append(int(rng.integers(spec.min_objects, spec.max_objects + 1)))
        sizes[-1] -= sum(sizes) - total
        free = np.asarray(sizes, dtype=np.int64)
        images: list[list[int]] = [[] for _ in sizes]
        for label in sorted(range(len(per_label)), key=lambda k: (-per_label[k], k)):
            open_ = np.flatnonzero(free > 0)
            if per_label[label] > len(open_):
                break
            for i in rng.choice(
                open_, size=int(per_label[label]), replace=False, p=free[open_] / free[open_].sum()
            ).tolist():
                images[i].append(label)
                free[i] -= 1
        else:
            return [rng.permutation(np.asarray(labels, dtype=np.int64)) for labels in images]
    raise ValueError(
        f"could not place {max(per_label)} instances of one class in distinct images of "
        f"{spec.min_objects}..{spec.max_objects} objects ({total} instances in all); expected fewer "
        "instances of the most frequent class or fewer objects per image"
    )


def generate_longtail(spec: LongTailSpec, out_dir: str | os.PathLike) -> LongTailDataset:
    """Write every split of ``spec`` into the new folder ``out_dir`` (which must not exist yet)."""
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"output folder {out} already exists; expected a new path")
    out.mkdir(parents=True)
    categories = _categories(spec)
    label_of_rank = {c["frequency_rank"]: k for k, c in enumerate(categories)}
    fields = {**dataclasses.asdict(spec), "counts": list(spec.counts)}
    for split in SPLITS:
        per_rank = spec.split_counts(split)
        per_label = [0] * spec.num_classes
        for rank, n in enumerate(per_rank):
            per_label[label_of_rank[rank]] = n
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, _STREAMS[split]]))
        packed = _pack_distinct(per_label, spec, rng)
        (out / split).mkdir()
        coco = render_split(
            np.zeros(0, dtype=np.int64), spec, rng, out / split, categories, {**fields, "split": split}, packed=packed
        )
        coco["info"]["description"] = f"detbalance LVIS-like synthetic shapes, {split} split"
        (out / f"{split}.json").write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
    (out / "spec.json").write_text(json.dumps(fields, indent=1), encoding="utf-8")
    return LongTailDataset(root=out, spec=spec, version=data_version(spec), categories=tuple(categories))


def data_version(spec: LongTailSpec) -> str:
    """The version of ``spec``'s files: ``lvis<K>-<hash>`` of the spec and both generators' versions (the folder of
    the cached set and of every run record made on it)."""
    key = json.dumps(
        {"spec": dataclasses.asdict(spec), "longtail": LONGTAIL_VERSION, "synthetic": GENERATOR_VERSION}, sort_keys=True
    )
    return f"lvis{spec.num_classes}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def get_longtail_dataset(
    spec: LongTailSpec | None = None, *, cache_dir: str | os.PathLike | None = None
) -> LongTailDataset:
    """The set of ``spec`` (default ``LongTailSpec()``), generated on first use into
    ``<cache_dir or default_cache_dir()>/longtail/<version>/`` (atomically: a folder that exists is complete)."""
    spec = LongTailSpec() if spec is None else spec
    if not isinstance(spec, LongTailSpec):
        raise ValueError(f"spec={spec!r}; expected a LongTailSpec")
    parent = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = generate_once(parent / "longtail" / data_version(spec), lambda out: generate_longtail(spec, out))
    return LongTailDataset(root=final, spec=spec, version=final.name, categories=tuple(_categories(spec)))
