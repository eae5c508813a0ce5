"""The experiments around detbalance: the long-tail benchmark, the demo and their synthetic data sets.

Not part of the installed package: ``tools/benchmark.py`` and ``tools/demo.py`` put ``benchmarks/`` on the path,
and every module here imports detbalance as a user would (``from detbalance.losses import ...``).

- :mod:`.data`: the synthetic shapes data sets (the demo's small one, the benchmark's LVIS-like one);
- :mod:`.demo`: the per-framework runners that train and predict one model, and the demo built on them;
- :mod:`.benchmark`: the method table, the resumable runs, the results and their tables.
"""
