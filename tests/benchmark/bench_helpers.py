"""Shared settings of the benchmark tests: a tiny long-tailed set and tiny benchmark settings."""

from dbbench.benchmark.runs import BenchmarkSettings
from dbbench.data.longtail import LongTailSpec
from dbbench.training import Schedule

TINY = LongTailSpec(counts=(12, 11, 4, 1), test_per_class=2, val_per_class=1, image_size=96, max_size=24, max_objects=2)


def tiny_settings(tmp_path, iters: int = 2) -> BenchmarkSettings:
    """Results, work and data cache under ``tmp_path``; ``iters`` iterations, one thread, no progress bars."""
    return BenchmarkSettings(
        results_dir=tmp_path / "results",
        work_dir=tmp_path / "work",
        spec=TINY,
        schedule=Schedule(iters=iters, warmup_iters=1),
        cache_dir=tmp_path / "cache",
        progress=False,
        threads=1,
    )
