"""Time LIF forward+backward in snncomp, snnTorch and SpikingJelly, in one run.

    python benchmarks/neurons.py [--repeats 30] [--output benchmarks/results/neurons.json]

Setting (survey brief, section 3): T = 25 steps, batch 128, 1024 neurons, tau = 2 (beta = 0.5),
threshold 1, hard reset to 0 detached from the graph, ATan surrogate, loss = sum of spikes,
2 CPU threads. All three compute the same spikes (checked here before timing). The median of
`--repeats` timed runs after 5 warm-up runs is reported for each library.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import record
import torch

from snncomp import neurons
from snncomp.surrogate import ATan

T, B, N = 25, 128, 1024


def runners(x: torch.Tensor) -> dict:
    """Closures computing spikes [T, B, N] for each available library."""
    out = {"snncomp": lambda: neurons.lif(x, 2.0, 1.0, reset="hard", surrogate=ATan()).spikes}
    try:
        import snntorch as snn
        from snntorch import surrogate as snn_sg

        leaky = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", spike_grad=snn_sg.atan())

        def run_snntorch():
            mem = torch.zeros_like(x[0])
            spikes = []
            for t in range(x.shape[0]):
                s, mem = leaky(x[t], mem)
                spikes.append(s)
            return torch.stack(spikes)

        out["snntorch"] = run_snntorch
    except ImportError:
        pass
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate

        node = neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=True,
                              step_mode="m", surrogate_function=surrogate.ATan())

        def run_spikingjelly():
            functional.reset_net(node)
            return node(x)

        out["spikingjelly"] = run_spikingjelly
    except ImportError:
        pass
    return out


def time_fn(fn, repeats: int, x: torch.Tensor) -> float:
    def once():
        x.grad = None
        fn().sum().backward()

    for _ in range(5):
        once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "neurons.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = (torch.randn(T, B, N) * 0.8 + 0.3).requires_grad_(True)
    libs = runners(x)
    ref = libs["snncomp"]().detach()
    rows = []
    for name, fn in libs.items():
        same = torch.equal(fn().detach(), ref)
        ms = time_fn(fn, args.repeats, x)
        rows.append({"library": name, "ms": round(ms, 2), "identical_spikes": same})
        print(f"{name:>13}: {ms:7.2f} ms  identical spikes: {same}", file=sys.stderr)
    ours = rows[0]["ms"]
    peers = [r for r in rows[1:]]
    for r in rows:
        r["slowdown_vs_snncomp"] = round(r["ms"] / ours, 2)
    fastest_peer = min(peers, key=lambda r: r["ms"]) if peers else None
    versions = {"torch": torch.__version__}
    for mod in ("snntorch", "spikingjelly"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            pass
    result = {
        "benchmark": "LIF forward+backward, T=25, batch 128, 1024 neurons, 2 threads (median ms)",
        **record.provenance("python benchmarks/neurons.py", f"torch threads {torch.get_num_threads()}"),
        "versions": versions,
        "rows": rows,
        "speedup_vs_fastest_peer": round(fastest_peer["ms"] / ours, 2) if fastest_peer else None,
        "goal": "snncomp at least 1.5x faster than the faster peer",
    }
    record.write(args.output, result)
    print(json.dumps(result["rows"]), f"speedup vs fastest peer: {result['speedup_vs_fastest_peer']}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
