#!/usr/bin/env python
"""Long-tailed detection demo: CE baseline vs rows of the method table, per-class AP with APr/APc/APf and deltas.

Examples:
    python tools/demo.py                                   # default: Detectron2, CE / weighted CE / seesaw
    python tools/demo.py --quick --framework mmdet         # about 2 minutes
    python tools/demo.py --framework both --seeds 0 1 2 --oracle
    python tools/demo.py --data ../shared/data/bccd --iters 3000 --losses ce,wce,seesaw
    python tools/demo.py --methods ce,rfs,rfs-seesaw       # the benchmark's rows: repeat-factor sampling

Outputs in --out: <framework>_table.txt, <framework>_ap.png, results.json, weights.json/.png/.txt, runs/.
The logic lives in dbbench.demo.cli (benchmarks/, next to the package: not installed with it).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from dbbench.demo import cli
from dbbench.demo.cli import build_parser, settings_from_args  # noqa: F401  (the tool's interface)


def main(argv=None) -> int:
    return cli.main(argv, prog="demo.py")


if __name__ == "__main__":
    sys.exit(main())
