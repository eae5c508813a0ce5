"""The experiments around detbalance: the long-tail benchmark, the demo and their synthetic data sets.

Not part of the installed package: ``tools/benchmark.py`` and ``tools/demo.py`` put ``benchmarks/`` on the path,
and every module here imports detbalance as a user would (``from detbalance.losses import ...``).

Four layers, each importing only the ones before it (and :mod:`.checks`):

- :mod:`.data`: the synthetic shapes data sets (the demo's small one, the benchmark's LVIS-like one);
- :mod:`.training`: one training run (:class:`~.training.run.RunSpec`) and the per-framework runners that train
  and predict it;
- :mod:`.benchmark`: the one method table (:mod:`.benchmark.methods`), the one job loop that turns its rows into
  runs and trains them (:mod:`.benchmark.jobs`), the benchmark's resumable runs, the results and their tables;
- :mod:`.demo`: the 8-class demo, rows of the same table through the same job loop on its own data.
"""
