"""The versioned weights file: dataset statistics, the weighting scheme and the resulting per-class weights.

Layout (JSON, ``version`` 1)::

    {"format": "detbalance-weights", "version": 1,
     "stats": {"class_names": [...], "instance_counts": [...], "image_counts": [...], "num_images": N},
     "scheme": "inverse", "params": {...}, "weights": [...], "background_weight": 1.0, "groups": ["f", "r", ...]}

All per-class lists follow the model's contiguous label order (label ``i`` is ``class_names[i]``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .schemes import SCHEMES

__all__ = [
    "FORMAT",
    "VERSION",
    "ClassStats",
    "WeightsFile",
    "save_weights",
    "load_weights",
    "write_text_atomic",
    "write_bytes_atomic",
]

FORMAT = "detbalance-weights"
VERSION = 1
_GROUPS = ("r", "c", "f")


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _first_bad(values, ok) -> str:
    """``", got <value> at index <i>"`` for the first entry of ``values`` failing ``ok`` (the type if no list)."""
    if not isinstance(values, list):
        return f", got {type(values).__name__}"
    for i, v in enumerate(values):
        if not ok(v):
            return f", got {v!r} at index {i}"
    return ""


@dataclass
class ClassStats:
    """Per-class statistics of a training set, in the model's contiguous label order.

    Attributes:
        class_names: ``K`` class names; label ``i`` is ``class_names[i]``.
        instance_counts: instances (boxes) of each class.
        image_counts: images containing each class at least once.
        num_images: images the training loader iterates, images without instances included when it keeps them
            (Detectron2 drops them with ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, MMDetection with ``filter_cfg``).
    """

    class_names: list[str]
    instance_counts: list[int]
    image_counts: list[int]
    num_images: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def problems(self) -> list[tuple[str, str]]:
        """``(field, message)`` for everything inconsistent; empty when the statistics are valid."""
        out = []
        k = len(self.class_names) if isinstance(self.class_names, list) else -1
        if k <= 0 or not all(isinstance(n, str) and n for n in self.class_names):
            out.append(("class_names", "expected a non-empty list of non-empty strings"))
        elif len(set(self.class_names)) != k:
            dup = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
            out.append(("class_names", f"duplicate names {dup[:5]}"))
        if not _is_count(self.num_images):
            out.append(("num_images", f"expected an integer >= 0, got {self.num_images!r}"))
        for name in ("instance_counts", "image_counts"):
            values = getattr(self, name)
            if not isinstance(values, list) or not all(_is_count(v) for v in values):
                out.append((name, "expected a list of integers >= 0" + _first_bad(values, _is_count)))
            elif k > 0 and len(values) != k:
                out.append((name, f"has {len(values)} entries, expected {k} (one per class name)"))
        if not out:
            for i, (n_inst, n_img) in enumerate(zip(self.instance_counts, self.image_counts)):
                if n_img > self.num_images or n_img > n_inst:
                    out.append(
                        (
                            "image_counts",
                            f"class {self.class_names[i]!r} is in {n_img} images, expected at most "
                            f"min(num_images={self.num_images}, instances={n_inst})",
                        )
                    )
                    break
        return out


@dataclass(kw_only=True)
class WeightsFile:
    """Contents of a weights file (see module docstring); ``weights`` and ``groups`` have one entry per class.

    ``params`` records how the file was made (scheme parameters, data source); ``background_weight`` is the weight
    of the background column for losses with one (softmax cross-entropy: ``class_weight[K]``).
    """

    version: int = VERSION
    stats: ClassStats
    scheme: str
    params: dict = field(default_factory=dict)
    weights: list[float]
    background_weight: float = 1.0
    groups: list[str]

    @property
    def num_classes(self) -> int:
        return self.stats.num_classes

    def problems(self) -> list[tuple[str, str]]:
        """``(field, message)`` for everything inconsistent; empty when the file contents are valid."""
        if not isinstance(self.stats, ClassStats):
            return [("stats", f"expected ClassStats, got {type(self.stats).__name__}")]
        out = [(f"stats.{f}", m) for f, m in self.stats.problems()]
        k = self.stats.num_classes
        if self.version != VERSION:
            out.append(("version", f"unsupported version {self.version!r}, expected {VERSION}"))
        if self.scheme not in SCHEMES:
            out.append(("scheme", f"unknown scheme {self.scheme!r}, expected one of {SCHEMES}"))
        if not isinstance(self.weights, list) or not all(_is_number(w) and w > 0 for w in self.weights):
            out.append(
                (
                    "weights",
                    "expected a list of finite numbers > 0"
                    + _first_bad(self.weights, lambda w: _is_number(w) and w > 0),
                )
            )
        elif len(self.weights) != k:
            out.append(("weights", f"has {len(self.weights)} entries, expected {k} (one per class)"))
        if not (_is_number(self.background_weight) and self.background_weight >= 0):
            out.append(("background_weight", f"expected a finite number >= 0, got {self.background_weight!r}"))
        if not isinstance(self.groups, list) or not all(g in _GROUPS for g in self.groups):
            out.append(("groups", f"expected a list of {_GROUPS} entries"))
        elif len(self.groups) != k:
            out.append(("groups", f"has {len(self.groups)} entries, expected {k} (one per class)"))
        if not isinstance(self.params, dict):
            out.append(("params", f"expected an object, got {type(self.params).__name__}"))
        return out

    def to_json(self) -> dict:
        s = self.stats
        return {
            "format": FORMAT,
            "version": self.version,
            "stats": {
                "class_names": list(s.class_names),
                "instance_counts": [int(v) for v in s.instance_counts],
                "image_counts": [int(v) for v in s.image_counts],
                "num_images": int(s.num_images),
            },
            "scheme": self.scheme,
            "params": self.params,
            "weights": [float(w) for w in self.weights],
            "background_weight": float(self.background_weight),
            "groups": list(self.groups),
        }


def _raise(path, problems: list[tuple[str, str]]) -> None:
    field_name, message = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ValueError(f"{path}: field '{field_name}' {message}{more}")


def _dumps(obj: dict, indent: str = "  ") -> str:
    """JSON with one member per line and each list on a single line (readable diffs for thousands of classes)."""
    lines = []
    for key, value in obj.items():
        if key == "stats":
            text = _dumps(value, indent + "  ").rstrip("\n")[:-1] + indent + "}"
        else:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        lines.append(f"{indent}{json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_weights(path: str | os.PathLike, wf: WeightsFile) -> None:
    """Validate ``wf`` and write it to ``path`` atomically (temporary file in the same folder + ``os.replace``)."""
    problems = wf.problems()
    if problems:
        _raise(path, problems)
    write_text_atomic(path, _dumps(wf.to_json()))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    Readers see the old file or the new one, never a partial one; on any error nothing is left behind. The one
    atomic writer of the package (weights, calibration, reports, plots, the demo's results).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_weights(path: str | os.PathLike, num_classes: int | None = None) -> WeightsFile:
    """Read and validate a weights file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not valid JSON (message gives the position), a field is missing or inconsistent
            (message names the path and the field), or ``num_classes`` is given and differs from the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: field 'format' must be {FORMAT!r}; this is not a detbalance weights file")
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: field 'version' is {data.get('version')!r}, this detbalance reads version {VERSION}")
    stats = data.get("stats")
    if not isinstance(stats, dict):
        raise ValueError(f"{path}: field 'stats' missing or not an object")
    for key in ("class_names", "instance_counts", "image_counts", "num_images"):
        if key not in stats:
            raise ValueError(f"{path}: field 'stats.{key}' is missing")
    for key in ("scheme", "weights", "background_weight", "groups", "params"):
        if key not in data:
            raise ValueError(f"{path}: field '{key}' is missing")
    wf = WeightsFile(
        stats=ClassStats(stats["class_names"], stats["instance_counts"], stats["image_counts"], stats["num_images"]),
        scheme=data["scheme"],
        weights=data["weights"],
        background_weight=data["background_weight"],
        groups=data["groups"],
        params=data["params"],
        version=data["version"],
    )
    problems = wf.problems()
    if problems:
        _raise(path, problems)
    if num_classes is not None and num_classes != wf.num_classes:
        raise ValueError(
            f"{path}: the weights file has {wf.num_classes} classes but the model has num_classes={num_classes}"
        )
    return wf
