"""A deterministic, long-tailed synthetic detection data set (COCO json + PNG images).

Each image is ``image_size`` x ``image_size`` pixels of noisy grey with 1-4 (``min_objects``..``max_objects``)
non-overlapping filled shapes of ``min_size``..``max_size`` pixels. Class ``i`` is the shape ``SHAPES[i]``
(circle, square, triangle, cross, ring, hexagon, star, diamond, ...). Colours are shared in pairs: with
``C = ceil(K / 2)`` colours, class ``i`` has colour ``i % C``, so every colour is worn by one commoner class
``i < C`` and one rarer class ``i + C``, and within a colour only the shape tells the classes apart.

Train instances per class decay exponentially from ``head_instances`` (class 0) to
``head_instances / imbalance_ratio`` (class K-1)::

    n_i = round(head_instances * imbalance_ratio ** (-i / (K - 1)))      # defaults: 1500, 753, ..., 24, 12

``balanced=True`` gives the "oracle" train set instead: the same total number of instances with
``round(sum(n_i) / K)`` per class. The test split is balanced (``test_per_class`` per class) and does not depend on
``balanced``, so long-tailed and balanced models are evaluated on identical images.

Categories have ids ``1..K``, the shape as name, their ``color``, ``longtail_instances`` (the class's train count
in the long-tailed schedule; deliberately not LVIS's ``instance_count``, which would be wrong for the balanced
set) and an LVIS-style ``frequency`` group ("r"/"c"/"f") that splits the log-count range of the long-tailed
schedule into thirds (defaults: 3 frequent, 2 common, 3 rare classes). The same category list is written into every
json of one parameter set (long-tailed, balanced, test), so r/c/f always name the same classes.

Example:
    >>> import tempfile
    >>> from dbbench.data.synthetic import SyntheticSpec, get_synthetic_dataset, train_schedule
    >>> train_schedule(SyntheticSpec())
    [1500, 753, 378, 189, 95, 48, 24, 12]
    >>> spec = SyntheticSpec(num_classes=4, head_instances=20, imbalance_ratio=4, test_per_class=2)
    >>> data = get_synthetic_dataset(spec, cache_dir=tempfile.mkdtemp())
    >>> data.class_names
    ('circle', 'square', 'triangle', 'cross')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..checks import check_int
from .shapes import COLOURS, SHAPES, shape_mask

__all__ = [
    "SyntheticSpec",
    "SyntheticDataset",
    "train_schedule",
    "frequency_groups_of",
    "generate",
    "get_synthetic_dataset",
    "default_cache_dir",
    "generate_once",
    "render_split",
    "GENERATOR_VERSION",
    "OBJECT_GAP",
]

# Bump when the rendered output of a given spec changes, so stale cache folders are not reused.
GENERATOR_VERSION = 2
OBJECT_GAP = 2  # free pixels required between two objects' cells


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of one synthetic data set; equal specs give byte-identical files."""

    num_classes: int = 8
    head_instances: int = 1500
    imbalance_ratio: float = 125.0
    test_per_class: int = 30
    image_size: int = 128
    min_objects: int = 1
    max_objects: int = 4
    min_size: int = 14
    max_size: int = 36
    balanced: bool = False
    seed: int = 0

    def __post_init__(self):
        def _int(name, low, high=None):
            check_int(f"SyntheticSpec.{name}", getattr(self, name), minimum=low, maximum=high)

        _int("num_classes", 2, len(SHAPES))
        _int("head_instances", 1)
        _int("test_per_class", 1)
        _int("image_size", 32)
        _int("min_objects", 1)
        _int("max_objects", self.min_objects, 8)
        _int("min_size", 8)
        _int("max_size", self.min_size, self.image_size // 2)
        _int("seed", 0)
        if not isinstance(self.imbalance_ratio, (int, float)) or not 1.0 <= self.imbalance_ratio <= self.head_instances:
            raise ValueError(
                f"SyntheticSpec.imbalance_ratio={self.imbalance_ratio!r}; expected a number in "
                f"[1, head_instances={self.head_instances}] so that the rarest class keeps >= 1 instance"
            )
        if not isinstance(self.balanced, bool):
            raise ValueError(f"SyntheticSpec.balanced={self.balanced!r}; expected True or False")
        if self.max_objects * (self.max_size + OBJECT_GAP) ** 2 > 0.5 * self.image_size**2:
            raise ValueError(
                f"max_objects={self.max_objects} cells of max_size={self.max_size} px do not fit "
                f"without overlap in a {self.image_size} px image; expected max_objects * "
                f"(max_size + {OBJECT_GAP})**2 <= image_size**2 / 2"
            )


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths of a generated data set. Images of a split live in ``<split>_images`` (COCO ``file_name`` relative)."""

    root: Path
    train_json: Path
    train_images: Path
    test_json: Path
    test_images: Path
    class_names: tuple[str, ...]
    spec: SyntheticSpec


def train_schedule(spec: SyntheticSpec) -> list[int]:
    """Train instances per class, in class order (equal counts when ``spec.balanced``)."""
    long_tail = _long_tail_counts(spec)
    if spec.balanced:
        return [round(sum(long_tail) / spec.num_classes)] * spec.num_classes
    return long_tail


def frequency_groups_of(spec: SyntheticSpec) -> list[str]:
    """The r/c/f group of every class: thirds of the log-count range of the long-tailed schedule."""
    counts = _long_tail_counts(spec)
    low, high = math.log(counts[-1]), math.log(counts[0])
    if high == low:
        return ["f"] * spec.num_classes
    cut_rare, cut_common = low + (high - low) / 3, low + 2 * (high - low) / 3
    return ["r" if math.log(n) <= cut_rare else "c" if math.log(n) <= cut_common else "f" for n in counts]


def _long_tail_counts(spec: SyntheticSpec) -> list[int]:
    k = spec.num_classes
    return [max(1, round(spec.head_instances * spec.imbalance_ratio ** (-i / (k - 1)))) for i in range(k)]


def _categories(spec: SyntheticSpec) -> list[dict]:
    n_colours = math.ceil(spec.num_classes / 2)
    groups, counts = frequency_groups_of(spec), _long_tail_counts(spec)
    return [
        {
            "id": i + 1,
            "name": SHAPES[i],
            "color": COLOURS[i % n_colours][0],
            "longtail_instances": counts[i],
            "frequency": groups[i],
        }
        for i in range(spec.num_classes)
    ]


def _pack(labels: np.ndarray, spec: SyntheticSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the instance labels and cut them into images of min_objects..max_objects instances."""
    labels = rng.permutation(labels)
    images, start = [], 0
    while start < len(labels):
        n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
        images.append(labels[start : start + n])
        start += n
    return images


def _place(n: int, spec: SyntheticSpec, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """``n`` cells ``(x, y, size)`` inside the image, at least ``OBJECT_GAP`` pixels apart (rejection sampling)."""
    cells: list[tuple[int, int, int]] = []
    for _ in range(n):
        for _attempt in range(1000):
            size = int(rng.integers(spec.min_size, spec.max_size + 1))
            x = int(rng.integers(0, spec.image_size - size + 1))
            y = int(rng.integers(0, spec.image_size - size + 1))
            if all(
                x + size + OBJECT_GAP <= cx
                or cx + cs + OBJECT_GAP <= x
                or y + size + OBJECT_GAP <= cy
                or cy + cs + OBJECT_GAP <= y
                for cx, cy, cs in cells
            ):
                cells.append((x, y, size))
                break
        else:  # unreachable for specs that pass validation, kept as a clear failure
            raise RuntimeError(
                f"could not place {n} objects in a {spec.image_size} px image; reduce max_objects or max_size"
            )
    return cells


def render_split(
    labels: np.ndarray,
    spec: SyntheticSpec,
    rng: np.random.Generator,
    image_dir: Path,
    categories: list[dict],
    spec_fields: dict,
    packed: list[np.ndarray] | None = None,
) -> dict:
    """Render the images of one split. ``labels`` index ``categories``, whose entries give the ``color``, the
    ``id`` and optionally the ``shape`` (default ``SHAPES[label]``); ``packed`` (the labels already cut into
    images) replaces the random packing of ``labels``."""
    colours = dict(COLOURS)
    size = spec.image_size
    images, annotations = [], []
    for image_id, image_labels in enumerate(_pack(labels, spec, rng) if packed is None else packed, start=1):
        grey = rng.uniform(95.0, 160.0)
        canvas = np.full((size, size, 3), grey, dtype=np.float32)
        for label, (x, y, s) in zip(image_labels.tolist(), _place(len(image_labels), spec, rng)):
            mask = shape_mask(categories[label].get("shape") or SHAPES[label], x, y, s, size)
            canvas[mask] = np.asarray(colours[categories[label]["color"]], np.float32) + rng.uniform(-25, 25, 3)
            rows, cols = np.nonzero(mask)
            x0, y0, x1, y1 = int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": categories[label]["id"],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": int(mask.sum()),
                    "iscrowd": 0,
                }
            )
        canvas += rng.normal(0.0, 12.0, canvas.shape).astype(np.float32)
        file_name = f"{image_id:06d}.png"
        Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8)).save(image_dir / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
    return {
        "info": {
            "description": "detbalance synthetic long-tailed shapes",
            "spec": spec_fields,
            "generator_version": GENERATOR_VERSION,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def generate(spec: SyntheticSpec, out_dir: str | os.PathLike) -> SyntheticDataset:
    """Write the data set of ``spec`` into the new folder ``out_dir`` (which must not exist yet).

    Files: ``train.json``, ``test.json``, ``train/*.png``, ``test/*.png``, ``spec.json``. Train images use the
    random stream ``(seed, 0)`` and test images ``(seed, 1)``.
    """
    out = Path(out_dir)
    if out.exists():
        raise ValueError(f"output folder {out} already exists; expected a new path")
    out.mkdir(parents=True)
    categories = _categories(spec)
    test_labels = np.repeat(np.arange(spec.num_classes), spec.test_per_class)
    train_labels = np.repeat(np.arange(spec.num_classes), train_schedule(spec))
    for split, labels, stream in (("train", train_labels, 0), ("test", test_labels, 1)):
        (out / split).mkdir()
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, stream]))
        # The test split does not depend on ``balanced``; its json says so by leaving the field out.
        fields = {k: v for k, v in dataclasses.asdict(spec).items() if split == "train" or k != "balanced"}
        coco = render_split(labels, spec, rng, out / split, categories, fields)
        (out / f"{split}.json").write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
    (out / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1), encoding="utf-8")
    return _dataset_at(out, spec)


def _dataset_at(root: Path, spec: SyntheticSpec) -> SyntheticDataset:
    return SyntheticDataset(
        root=root,
        train_json=root / "train.json",
        train_images=root / "train",
        test_json=root / "test.json",
        test_images=root / "test",
        class_names=tuple(SHAPES[: spec.num_classes]),
        spec=spec,
    )


def default_cache_dir() -> Path:
    """``$DETBALANCE_CACHE_DIR``, else ``$XDG_CACHE_HOME/detbalance``, else ``~/.cache/detbalance``."""
    if os.environ.get("DETBALANCE_CACHE_DIR"):
        return Path(os.environ["DETBALANCE_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "detbalance"


def _folder_name(spec: SyntheticSpec) -> str:
    key = json.dumps({"spec": dataclasses.asdict(spec), "version": GENERATOR_VERSION}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    kind = "balanced" if spec.balanced else "longtail"
    return f"k{spec.num_classes}-{kind}-seed{spec.seed}-{digest}"


def get_synthetic_dataset(
    spec: SyntheticSpec | None = None, *, cache_dir: str | os.PathLike | None = None
) -> SyntheticDataset:
    """The data set of ``spec`` (default: ``SyntheticSpec()``), generated on first use and reused afterwards.

    It lives in ``<cache_dir or default_cache_dir()>/synthetic/<name>-<hash of spec>/``. Generation writes into a
    temporary folder beside it and renames it into place, so a folder that exists is complete; when two processes
    race, the first rename wins and the other's copy is discarded.
    """
    spec = SyntheticSpec() if spec is None else spec
    if not isinstance(spec, SyntheticSpec):
        raise ValueError(f"spec={spec!r}; expected a SyntheticSpec")
    parent = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = generate_once(parent / "synthetic" / _folder_name(spec), lambda out: generate(spec, out))
    return _dataset_at(final, spec)


def generate_once(final: Path, write: Callable[[Path], object]) -> Path:
    """``final``, first written by ``write(folder)`` when it does not exist yet.

    ``write`` fills a temporary folder beside ``final``, which is then renamed into place, so a folder that exists
    is complete; when two processes race, the first rename wins and the other's copy is discarded.
    """
    if not final.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            write(tmp / "data")
            try:
                os.replace(tmp / "data", final)
            except OSError:
                if not final.is_dir():  # a concurrent run that finished first is fine; anything else is not
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
