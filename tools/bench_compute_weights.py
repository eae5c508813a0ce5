#!/usr/bin/env python
"""Benchmark: class statistics of an LVIS-sized COCO json versus a plain ``json.load`` of the same file.

Builds, in a temporary folder, a synthetic instances json with LVIS v1 train's shape: its 1203 categories with the
published per-category image and instance counts (``lvis_v1_train_stats.json``), 100,170 images, ~1.27 M boxes
with a small polygon each. Then, in this one process, times (median of ``--repeats``):

- ``json.load`` of the file (the floor for any reader that parses the whole text), and
- ``detbalance.stats.read_coco`` (streamed parse + counting),

and prints the ratio. The statistics are checked against the published counts, so the benchmark also verifies the
reader end to end. ``--memory`` additionally reports each one's peak memory, each in a fresh subprocess.

Usage:
    python tools/bench_compute_weights.py [--stats ../shared/data/lvis_v1_train_stats.json] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from detbalance.stats import read_coco
from detbalance.weights import frequency_groups

LVIS_V1_TRAIN_IMAGES = 100_170
DEFAULT_STATS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lvis_v1_train_stats.json"


def build_synthetic_lvis(stats_path: Path, out: Path, *, num_images: int, seed: int = 0) -> list[dict]:
    """Write an instances json whose per-category image/instance counts equal those in ``stats_path``."""
    cats = json.loads(stats_path.read_text())["categories"]
    rng = np.random.default_rng(seed)
    ann_image, ann_cat = [], []
    for c in cats:
        imgs = rng.choice(num_images, size=c["image_count"], replace=False)
        extra = rng.multinomial(c["instance_count"] - c["image_count"], np.full(len(imgs), 1.0 / len(imgs)))
        ann_image.append(np.repeat(imgs, 1 + extra))
        ann_cat.append(np.full(c["instance_count"], c["id"]))
    image = np.concatenate(ann_image)
    cat = np.concatenate(ann_cat)
    order = np.argsort(image, kind="stable")  # grouped by image, as in the LVIS release
    image, cat = image[order], cat[order]
    xy = rng.uniform(0, 500, size=(len(image), 2)).round(2)
    wh = rng.uniform(1, 140, size=(len(image), 2)).round(2)
    annotations = [
        {
            "id": j + 1,
            "image_id": int(image[j]) + 1,
            "category_id": int(cat[j]),
            "bbox": [x, y, w, h],
            "area": round(w * h, 2),
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
        }
        for j, (x, y, w, h) in enumerate(np.concatenate([xy, wh], axis=1).tolist())
    ]
    images = [
        {
            "id": i + 1,
            "file_name": f"{i + 1:012d}.jpg",
            "height": 640,
            "width": 640,
            "neg_category_ids": [],
            "not_exhaustive_category_ids": [],
        }
        for i in range(num_images)
    ]
    categories = [{k: c[k] for k in ("id", "name", "frequency", "image_count", "instance_count")} for c in cats]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(
            {
                "info": {"description": "synthetic LVIS-sized set"},
                "annotations": annotations,
                "images": images,
                "licenses": [],
                "categories": categories,
            },
            f,
        )
    return cats


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _peak_rss_mib(code: str, path: Path) -> float:
    # VmHWM (peak resident set of this address space) rather than ru_maxrss, which Linux carries over exec from
    # the forking parent.
    script = (
        f"import json, sys\n{code}\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stats", type=Path, default=DEFAULT_STATS, help="LVIS per-category statistics json")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-images", type=int, default=LVIS_V1_TRAIN_IMAGES)
    p.add_argument("--memory", action="store_true", help="also measure peak memory (fresh subprocess each)")
    args = p.parse_args(argv)
    if not args.stats.is_file():
        print(f"error: statistics file {args.stats} does not exist (pass --stats)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_lvis_train.json"
        t0 = time.perf_counter()
        cats = build_synthetic_lvis(args.stats, path, num_images=args.num_images)
        print(
            f"built {path.name}: {path.stat().st_size / 2**20:.0f} MiB, "
            f"{sum(c['instance_count'] for c in cats)} boxes, {args.num_images} images, {len(cats)} categories "
            f"in {time.perf_counter() - t0:.1f} s"
        )

        def plain_load():
            with open(path, encoding="utf-8") as f:
                return len(json.load(f)["annotations"])

        t_load, _ = _median_time(plain_load, args.repeats)
        t_stats, ds = _median_time(lambda: read_coco(path), args.repeats)

        s = ds.stats
        expected = sorted(cats, key=lambda c: c["id"])
        assert s.instance_counts == [c["instance_count"] for c in expected], "instance counts differ"
        assert s.image_counts == [c["image_count"] for c in expected], "image counts differ"
        groups = frequency_groups(s.image_counts)
        print(
            f"statistics verified: counts equal the published ones; groups {groups.count('r')} r / "
            f"{groups.count('c')} c / {groups.count('f')} f"
        )
        print(f"json.load             median of {args.repeats}: {t_load:7.2f} s")
        print(f"read_coco (streamed)  median of {args.repeats}: {t_stats:7.2f} s   = {t_stats / t_load:.2f}x json.load")
        if args.memory:
            load_mib = _peak_rss_mib("d = json.load(open(sys.argv[1]))", path)
            stats_mib = _peak_rss_mib("from detbalance.stats import read_coco\nd = read_coco(sys.argv[1])", path)
            print(f"peak memory: json.load {load_mib:.0f} MiB, read_coco {stats_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
