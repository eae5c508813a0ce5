"""The long-tail benchmark: the method table, resumable runs on the LVIS-like set, results and their tables.

:mod:`.methods` (the matrix's rows, also the demo's) -> :mod:`.jobs` (a row's run, the one loop that trains runs)
-> :mod:`.runner` (one cached record per framework, method, seed and data version; :mod:`.plan`: which jobs the
protocol still needs) -> :mod:`.summary` (``results/summary.json``) ->
:mod:`.render` (README / RESULTS.md blocks, plot).
The runner imports a framework only when a run of it starts.
"""

from .methods import BASELINE, FRAMEWORKS, METHODS, ORACLE, Method, get_method, pending
from .summary import PRIMARY_METRIC, build_summary, load_records, record_path

__all__ = [
    "BASELINE",
    "FRAMEWORKS",
    "METHODS",
    "ORACLE",
    "Method",
    "get_method",
    "pending",
    "PRIMARY_METRIC",
    "build_summary",
    "load_records",
    "record_path",
]
