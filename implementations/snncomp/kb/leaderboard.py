"""The Benchmark page: the committed result store of `snncomp bench`, summarised over seeds.

`read_store(path)` reads the JSON-lines store (`benchmarks/results/board.jsonl`, filled by
`snncomp bench --output benchmarks/results/board.jsonl`) and keeps the last row of each run key;
`summarise` groups the successful rows by recipe and baseline and gives each metric's mean and
standard deviation over the seeds; `targets` checks the issue's four targets on the `targets` recipe;
`board_page` writes the page, and `pareto_svg` draws accuracy against energy or footprint.

Energy columns follow the store's measurements (`snncomp.evaluation.measure_all`): the 45 nm compute
model in the format that holds the model's weights and membrane potentials (FP32 whenever the potentials
are floating point), every chip profile that publishes a synaptic-operation energy, and the
memory-inclusive model. Reads the store only: no torch import, so the site builds without running a model.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from pathlib import Path

from snncomp.files import parsed

__all__ = ["read_store", "summarise", "targets", "board_page", "pareto_svg", "STORE"]

STORE = Path("benchmarks") / "results" / "board.jsonl"  # relative to the repository root


def read_store(path: Path) -> list[dict]:
    """The rows of the store at `path`, the last one of each key (a resumed or retried run replaces its
    earlier row); a missing file gives no rows. A line that is not JSON is an error naming the line.
    The parse is kept while the file is unchanged (`files.parsed`: a site build reads the store about ten
    times, each `mkdocs serve` rebuild again): each call returns a new list of new row dicts, whose nested
    values (`steps`, ...) are shared between calls and must be treated as read-only."""
    if not Path(path).exists():
        return []
    return [dict(r) for r in parsed(path, _store_rows)]


def _store_rows(path: Path) -> list[dict]:
    rows: dict[str, dict] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not a JSON row ({exc.msg})") from None
        rows[row["key"]] = row
    return list(rows.values())


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def _regime_pj(m: dict) -> float | None:
    """45 nm energy of a measurement in its own arithmetic format (`45nm-int8`/`45nm-int32` when the store
    has it, else FP32)."""
    e = m.get("energy_pj") or {}
    for k in ("45nm-int8", "45nm-int32", "45nm-fp32"):
        if k in e:
            return e[k]
    return None


def _fewer(before, after) -> float | None:
    """Percent fewer than `before` (spikes, operations); None when either is missing or `before` is 0."""
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)) or not before:
        return None
    return 100 * (1 - after / before)


def _metrics(row: dict) -> dict[str, float | None]:
    """The page's numbers of one run: its last step against its starting model (`steps[0]`)."""
    steps = row.get("steps") or [{}]
    start, last = steps[0], steps[-1]
    e = last.get("energy_pj") or {}
    ann = last.get("ann_energy_pj") or {}
    own = _regime_pj(last)
    bits = last.get("weight_bits")
    mem_w = e.get(f"memory-w{bits:g}") if isinstance(bits, (int, float)) else None
    ann_mem_w = ann.get(f"memory-w{bits:g}") if isinstance(bits, (int, float)) else None
    out = {
        "accuracy": 100 * last["accuracy"] if last.get("accuracy") is not None else None,
        "val_accuracy": 100 * last["val_accuracy"] if last.get("val_accuracy") is not None else None,
        "drop": (100 * (start["accuracy"] - last["accuracy"])
                 if start.get("accuracy") is not None and last.get("accuracy") is not None else None),
        "sparsity": last.get("connection_sparsity"),
        "bits": bits,
        "state_bits": last.get("state_bits"),
        "T": last.get("T"),
        "spikes": last.get("spikes_per_sample"),
        "fewer_spikes": _fewer(start.get("spikes_per_sample"), last.get("spikes_per_sample")),
        "synops": last.get("synops"),
        "fewer_synops": _fewer(start.get("synops"), last.get("synops")),
        "dense_synops": last.get("dense_synops"),
        "params": last.get("params"),
        "e45": own,
        "e45_fp32": e.get("45nm-fp32"),
        "memory": e.get("memory"),
        "footprint_kb": (last["deployed_footprint_bytes"] / 1024 if last.get("deployed_footprint_bytes") else None),
        "smaller": (start["deployed_dense_bytes"] / last["deployed_footprint_bytes"]
                    if start.get("deployed_dense_bytes") and last.get("deployed_footprint_bytes") else None),
        "vs_ann_dense": (ann["45nm-fp32-dense"] / own if own and ann.get("45nm-fp32-dense") else None),
        "vs_ann_skip": (ann["45nm-fp32-zero-skipping"] / own if own and ann.get("45nm-fp32-zero-skipping") else None),
        "vs_ann_memory_w": (ann_mem_w / mem_w if mem_w and ann_mem_w else None),
        "vs_ann_memory": (ann["memory"] / e["memory"] if e.get("memory") and ann.get("memory") else None),
        "seconds": row.get("seconds"),
    }
    for chip, pj in e.items():
        if not chip.startswith(("45nm", "memory")):
            out[f"chip:{chip}"] = pj
    for name, report in (last.get("measures") or {}).items():  # a recipe's measures: their scalar fields
        for field, value in (report or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"m:{name}.{field}"] = value
    return out


def summarise(rows: list[dict], sections: dict[str, str] | None = None) -> list[dict]:
    """One entry per (recipe, baseline) over its successful seeds: `name`, `kind`, `section`, `baseline`,
    `seeds`, `failed` (seeds whose run failed) and `stats`: {metric: (mean, sd)}. `sections` maps a method
    name to its survey section (a recipe is in section "recipe")."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["baseline"]), []).append(r)
    out = []
    for (name, baseline), rs in sorted(groups.items()):
        ok = [r for r in rs if r.get("status") == "ok"]
        per = [_metrics(r) for r in ok]
        keys = sorted({k for p in per for k in p})
        kind = rs[0].get("kind", "recipe")
        out.append({"name": name, "kind": kind, "baseline": baseline,
                    "section": (sections or {}).get(name, "recipe") if kind == "method" else "recipe",
                    # a seed failed when no run of it succeeded (a fixed recipe's success supersedes its old error)
                    "seeds": sorted(r["seed"] for r in ok),
                    "failed": sorted({r["seed"] for r in rs if r.get("status") != "ok"} - {r["seed"] for r in ok}),
                    "errors": sorted({r.get("error") or "" for r in rs if r.get("status") != "ok"
                                      and r["seed"] not in {o["seed"] for o in ok}}),
                    "stats": {k: _mean_sd([p.get(k) for p in per]) for k in keys},
                    "shared_cpu": any(shared_cpu(r) for r in ok)})
    return out


def shared_cpu(row: dict) -> bool:
    """Whether the run got less than 80 % of a CPU per thread (`cpu_seconds` against `seconds` x `threads`):
    other jobs shared the machine, so its seconds are not an idle machine's. Rows from before `cpu_seconds`
    was recorded are not marked."""
    cpu, wall, threads = row.get("cpu_seconds"), row.get("seconds"), row.get("threads") or 1
    return bool(cpu is not None and wall and cpu < 0.8 * wall * threads)


TARGETS = (  # (metric, comparison, bound, what it means)
    ("drop", "<=", 2.0, "accuracy drop from the dense SNN, points"),
    ("vs_ann_dense", ">=", 50.0, "times cheaper than the FP32 dense ANN of the same architecture, 45 nm compute"),
    ("vs_ann_memory_w", ">=", 5.0, "times cheaper than the same architecture's ANN at the same bit width, memory-inclusive"),
    ("smaller", ">=", 20.0, "times smaller deployed footprint than the dense FP32 SNN"),
)


def targets(summary: list[dict], recipe: str = "targets") -> list[dict]:
    """The issue's targets on the mean over seeds of `recipe`: one row per target with its value, its
    worst seed... as mean, sd and whether the mean meets it (`None` when the recipe has no result)."""
    entry = next((s for s in summary if s["name"] == recipe), None)
    out = []
    for metric, op, bound, what in TARGETS:
        mean, sd = entry["stats"].get(metric, (None, None)) if entry else (None, None)
        met = None if mean is None else (mean <= bound if op == "<=" else mean >= bound)
        out.append({"target": f"{what} {op} {bound:g}", "metric": metric, "mean": mean, "sd": sd, "met": met})
    return out


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "–"
    a = abs(v)
    if a >= 1e5 or (0 < a < 1e-2):
        return f"{v:.2e}"
    return f"{v:,.{digits}f}"


def _cell(stat: tuple[float | None, float | None], digits: int = 1, scale: float = 1.0) -> str:
    mean, sd = stat
    if mean is None:
        return "–"
    if not sd:
        return _fmt(mean * scale, digits)
    return f"{_fmt(mean * scale, digits)} ± {_fmt(sd * scale, digits)}"


COLUMNS = (  # (header, metric, digits, scale)
    ("accuracy %", "accuracy", 2, 1.0), ("drop (points)", "drop", 2, 1.0), ("sparsity", "sparsity", 3, 1.0),
    ("weight bits", "bits", 1, 1.0), ("T", "T", 0, 1.0), ("spikes / sample", "spikes", 0, 1.0),
    ("synaptic ops / sample", "synops", 0, 1.0), ("45 nm (nJ)", "e45", 2, 1e-3),
    ("memory-incl. (nJ)", "memory", 1, 1e-3), ("× vs FP32 dense ANN", "vs_ann_dense", 1, 1.0),
    ("× vs zero-skipping ANN", "vs_ann_skip", 1, 1.0), ("× vs same-width ANN, memory", "vs_ann_memory_w", 2, 1.0),
    ("footprint (KiB)", "footprint_kb", 1, 1.0), ("× smaller", "smaller", 1, 1.0), ("train time (s)", "seconds", 0, 1.0),
)


def _table(summary: list[dict], chips: list[str]) -> str:
    head = ["method or recipe", "section", "baseline", "seeds"] + [c[0] for c in COLUMNS] + [f"{c} (nJ)" for c in chips]
    out = ['<input class="snn-filter" data-table="snn-board" placeholder="filter rows, e.g. pruning, quantization, recipe"'
           ' aria-label="filter the benchmark table">',
           '<div class="snn-wide"><table class="snn-sortable" id="snn-board"><thead><tr>'
           + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for s in summary:
        seeds = ",".join(map(str, s["seeds"])) or "none"
        if s["failed"]:
            seeds += f" (failed: {','.join(map(str, s['failed']))})"
        cells = [s["name"], s["section"], s["baseline"], seeds]
        cells += [_cell(s["stats"].get(m, (None, None)), d, sc) + (" ‡" if m == "seconds" and s.get("shared_cpu") else "")
                  for _, m, d, sc in COLUMNS]
        cells += [_cell(s["stats"].get(f"chip:{c}", (None, None)), 2, 1e-3) for c in chips]
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def pareto_svg(summary: list[dict], x_metric: str, x_label: str) -> str:
    """Accuracy (mean over seeds) against `x_metric` (log scale) for every entry, the Pareto front (more
    accurate and cheaper) drawn as a line; an SVG document."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(s["stats"].get(x_metric, (None,))[0], s["stats"].get("accuracy", (None,))[0], s["name"], s["section"])
           for s in summary]
    pts = [p for p in pts if p[0] and p[1] is not None and p[0] > 0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for section in sorted({p[3] for p in pts}):
        sel = [p for p in pts if p[3] == section]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], label=section, s=22)
    front, best = [], -1.0
    for p in sorted(pts):
        if p[1] > best:
            front.append(p)
            best = p[1]
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=0.8, label="Pareto front")
        for p in front:
            ax.annotate(p[2], (p[0], p[1]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("test accuracy (%), mean over seeds")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def _environment(rows: list[dict]) -> str:
    keys = ("command", "commit", "torch", "cpu_capability", "threads", "device", "machine")
    seen = {k: sorted({str(r.get(k)) for r in rows if r.get(k) is not None}) for k in keys}
    dates = sorted(r.get("date", "") for r in rows if r.get("date"))
    lines = [f"* **{k}**: " + ", ".join(f"`{v}`" for v in vals[:4]) + (" ..." if len(vals) > 4 else "")
             for k, vals in seen.items() if vals]
    if dates:
        lines.append(f"* **dates**: {dates[0]} to {dates[-1]}")
    total = sum(r.get("seconds") or 0 for r in rows)
    lines.append(f"* **run time, summed over runs**: {total / 60:.0f} min ({len(rows)} runs)")
    shared = sum(shared_cpu(r) for r in rows)
    lines.append(f"* **‡ train time under load**: {shared} of {len(rows)} runs got less than 80 % of a CPU per thread "
                 "(other jobs shared the machine; their seconds overstate an idle machine's); "
                 f"{sum(r.get('cpu_seconds') is None for r in rows)} runs predate this check and are not marked")
    return "\n".join(lines)


def board_page(base: Path, sections: dict[str, str], reported: dict[str, list[str]]) -> str:
    """The generated part of the Benchmark page from the store under `base`: the targets, the table, the
    two Pareto plots (as `assets/board/*.svg`, written by the site hook), the paper-reported numbers
    beside ours and the environment the rows were measured in. `reported` maps a method name to the
    lines its paper cards report (each marked with its citation)."""
    # the board's own runs; a section spec's runs (`section/run`) are shown on their section's page
    rows = [r for r in read_store(base / STORE) if "/" not in r["recipe"]]
    if not rows:
        return ("*No result store yet: run `snncomp bench --output benchmarks/results/board.jsonl` "
                "(see above) and commit the file.*\n")
    summary = summarise(rows, sections)
    chips = sorted({k.split(":", 1)[1] for s in summary for k in s["stats"] if k.startswith("chip:")})
    parts = ["## Targets", "",
             "Mean over the seeds of the `targets` recipe (`recipes/targets.toml`); a target is met when the mean "
             "meets it.", "", "| target | mean ± sd | met |", "|---|---|---|"]
    for t in targets(summary):
        met = "not run" if t["met"] is None else ("met" if t["met"] else "missed")
        parts.append(f"| {t['target']} | {_cell((t['mean'], t['sd']), 3)} | {met} |")
    parts += ["", "## All methods and recipes", "",
              "Each row is one registered transform with its default options, or one recipe of `recipes/`, on the "
              "baseline it names, as mean ± standard deviation over the seeds listed. Energy is per sample; "
              "45 nm prices the arithmetic in the format holding the weights and the membrane potentials. "
              "The × columns divide the ANN's energy by the SNN's (above 1: the SNN is cheaper); the "
              "footprint is the deployed one (quantised widths, cheapest sparse format) and × smaller compares "
              "it with the dense FP32 starting model. Click a header to sort.", "",
              _table(summary, chips), "",
              "## Pareto plots", "",
              '<figure markdown><img src="../assets/board/pareto_energy.svg" alt="Scatter plot of test accuracy '
              'against energy per sample at 45 nm for every method and recipe, with the Pareto front as a dashed '
              'line" width="100%"><figcaption>Accuracy against 45 nm energy per sample (log scale).</figcaption>'
              "</figure>", "",
              '<figure markdown><img src="../assets/board/pareto_footprint.svg" alt="Scatter plot of test accuracy '
              'against deployed footprint in KiB for every method and recipe, with the Pareto front as a dashed '
              'line" width="100%"><figcaption>Accuracy against deployed footprint (log scale).</figcaption>'
              "</figure>", "",
              "## What the papers report", "",
              "Numbers the papers report, on their own data sets and networks (marked *paper*), beside the methods "
              "measured here; they are not comparable one to one with the table above.", "",
              "| method | paper reports |", "|---|---|"]
    for s in summary:
        if s["kind"] == "method" and reported.get(s["name"]):
            parts.append(f"| {s['name']} | " + "<br>".join(reported[s["name"]]) + " |")
    failed = [s for s in summary if s["failed"]]
    if failed:
        parts += ["", "## Runs that failed", "", "| run | seeds | error |", "|---|---|---|"]
        parts += [f"| {s['name']} | {','.join(map(str, s['failed']))} | {html.escape('; '.join(s['errors']))[:300]} |"
                  for s in failed]
    parts += ["", "## Where these numbers come from", "", _environment(rows), ""]
    return "\n".join(parts)
