"""Speed benchmark: generating the synthetic N-MNIST-like event data from nothing.

    python benchmarks/event_generation.py [--note "what else ran"] [--output benchmarks/results/events_generation.json]

Seconds to generate, bin and store the 5000 synthetic streams (`data.nmnist_like(T=16)`) in an empty,
temporary cache folder, first with one worker process and then with one per CPU. A timing, not a method run,
so it is not a spec of the one runner (as `neurons.py`); run it on an idle machine and say otherwise with
`--note`, which the result file keeps.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import record

from snncomp import data

OUT = Path(__file__).resolve().parent / "results" / "events_generation.json"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=str(OUT))
    ap.add_argument("--note", default="", help="what else the machine ran, for the record")
    args = ap.parse_args(argv)
    rows = []
    for workers in (1, None):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"SNNCOMP_CACHE": tmp}):
            t0 = time.perf_counter()
            split = data.nmnist_like(T=16, workers=workers, progress=False)
            seconds = time.perf_counter() - t0
        rows.append({"workers": workers or os.cpu_count(), "images": len(split.train_y) + len(split.test_y),
                     "seconds": round(seconds, 1)})
        print(rows[-1], file=sys.stderr)
    record.write(args.output, {**record.provenance("python benchmarks/event_generation.py",
                                                   "workers are processes" + (f"; {args.note}" if args.note else "")),
                               "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
