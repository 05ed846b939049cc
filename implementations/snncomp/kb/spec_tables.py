"""Section tables and targets from the result store, as a spec (`benchmarks/specs/<section>.toml`) declares them.

`spec_table(base, section, table)` renders one `[[table]]` of the spec as Markdown: one row per run (or
`RUN@N`, the measurement after its N-th step), each column the mean ± standard deviation over the seeds found
in the store (`snncomp.kb.leaderboard._metrics` of each seed's row), the seeds listed, "not run yet" for a run
with no row, the failed seeds named, the caption, and a line naming the spec file and the command that fills
it. `spec_targets(base, section)` judges every `[[target]]` on the mean over seeds: met, missed or not run.
The site hook replaces `<!-- table: SECTION TABLE -->` and `<!-- targets: SECTION -->` with them.

A row is matched by its exact run key (recipe content hash included), so a changed spec shows "not run yet"
until its runs are run again. With a `reference` run, `gain` is the accuracy in points over the reference and
`spikes_vs_reference` the ratio of spikes per sample, both seed by seed, then averaged.
"""

from __future__ import annotations

from pathlib import Path

from snncomp import specs as specs_mod

from . import leaderboard

__all__ = ["spec_table", "spec_targets", "means", "HEADERS"]

HEADERS = {  # column -> (header, digits, scale)
    **{m: (h, d, sc) for h, m, d, sc in leaderboard.COLUMNS},
    "state_bits": ("membrane bits", 1, 1.0), "fewer_spikes": ("fewer spikes %", 1, 1.0),
    "fewer_synops": ("fewer synops %", 1, 1.0), "dense_synops": ("dense synops / sample", 0, 1.0),
    "params": ("parameters", 0, 1.0), "e45_fp32": ("45 nm FP32 (nJ)", 2, 1e-3),
    "vs_ann_memory": ("× vs ANN, memory", 2, 1.0), "gain": ("gain (points)", 2, 1.0),
    "spikes_vs_reference": ("spikes vs reference", 3, 1.0), "val_accuracy": ("validation accuracy %", 2, 1.0),
}


def _header(column: str) -> tuple[str, int, float]:
    if column.startswith("chip:"):
        return f"{column[5:]} (nJ)", 2, 1e-3
    if column.startswith("m:"):
        return column[2:].replace(".", ": ", 1), 2, 1.0
    return HEADERS.get(column, (column, 2, 1.0))


def _spec(base: Path, section: str) -> specs_mod.Spec:
    return specs_mod.load(Path(base) / "benchmarks" / "specs" / f"{section}.toml", check=False)


def _rows(base: Path, spec: specs_mod.Spec) -> dict[str, dict[int, dict]]:
    """For each run of `spec`, its store rows by seed (the last row of each key)."""
    by_key = {r["key"]: r for r in leaderboard.read_store(Path(base) / leaderboard.STORE)}
    out: dict[str, dict[int, dict]] = {}
    for r in spec.runs:
        for run in specs_mod.runs(spec, only=[r.name]):
            if run.key in by_key:
                out.setdefault(r.name, {})[run.seed] = by_key[run.key]
    return out


def _per_seed(ref: str, rows: dict[str, dict[int, dict]], reference: str | None) -> dict[int, dict]:
    """The metrics of run reference `ref` ("name" or "name@N") for each seed whose row is ok."""
    name, _, step = ref.partition("@")
    out = {}
    for seed, row in rows.get(name, {}).items():
        if row.get("status") != "ok":
            continue
        if step:
            row = {**row, "steps": (row.get("steps") or [])[:int(step) + 1]}
        out[seed] = leaderboard._metrics(row)
    if reference is not None:
        ref_m = _per_seed(reference, rows, None)
        for seed, m in out.items():
            r = ref_m.get(seed)
            ok = r is not None and m.get("accuracy") is not None and r.get("accuracy") is not None
            m["gain"] = m["accuracy"] - r["accuracy"] if ok else None
            m["spikes_vs_reference"] = (m["spikes"] / r["spikes"] if r is not None and m.get("spikes") is not None
                                        and r.get("spikes") else None)
    return out


def _stat(per: dict[int, dict], metric: str) -> tuple[float | None, float | None]:
    return leaderboard._mean_sd([m.get(metric) for m in per.values()])


def _footer(spec: specs_mod.Spec, how: str = "mean ± standard deviation over the seeds listed") -> str:
    return f"*From `benchmarks/specs/{spec.section}.toml`; filled by `{specs_mod.command(spec.section)}`; {how}.*"


def _entries(row: dict, measure: str, rows: str) -> list[tuple[str, dict]]:
    """The entries of `rows` (a list or a mapping) in the report of `measure` in a store row, labelled."""
    step = (row.get("steps") or [{}])[-1]
    got = ((step.get("measures") or {}).get(measure) or {}).get(rows)
    if isinstance(got, dict):
        return [(str(k), v) for k, v in got.items()]
    return [(str(i + 1), v) for i, v in enumerate(got or [])]


def sweep_table(base: Path, spec: specs_mod.Spec, t: specs_mod.Table) -> str:
    """A sweep table: for each run, one line per entry of its measure's `rows`; numeric fields as mean ± sd
    over the seeds, other fields as their value (joined when the seeds differ)."""
    rows = _rows(base, spec)
    lines = [t.caption, ""] if t.caption else []
    lines += ["| run | entry | seeds | " + " | ".join(t.columns) + " |", "|---|---|---|" + "---|" * len(t.columns)]
    for ref in t.runs:
        name = ref.partition("@")[0]
        ok = {seed: r for seed, r in rows.get(name, {}).items() if r.get("status") == "ok"}
        if not ok:
            lines.append(f"| `{ref}` | | not run yet | " + " | ".join("" for _ in t.columns) + " |")
            continue
        per_seed = {seed: dict(_entries(r, t.measure, t.rows)) for seed, r in sorted(ok.items())}
        labels = list(dict.fromkeys(k for entries in per_seed.values() for k in entries))
        digits = {}  # one number of decimals per column: 4 for a column of fractions, else 2
        for c in t.columns:
            nums = [abs(e[label].get(c)) for e in per_seed.values() for label in e
                    if isinstance(e[label].get(c), (int, float)) and not isinstance(e[label].get(c), bool)]
            digits[c] = 4 if nums and max(nums) < 1 else 2
        for label in labels:
            got = [e[label] for e in per_seed.values() if label in e]
            cells = []
            for c in t.columns:
                values = [g.get(c) for g in got]
                if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                    cells.append(leaderboard._cell(leaderboard._mean_sd(values), digits[c]))
                else:
                    cells.append(", ".join(dict.fromkeys(str(v) for v in values if v is not None)))
            seeds = ",".join(str(s) for s, e in per_seed.items() if label in e)
            lines.append(f"| `{ref}` | {label} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", _footer(spec), ""])


def energy_assumptions(base: Path, spec: specs_mod.Spec, t: specs_mod.Table) -> str:
    """The SNN run against the ANN run (`t.runs`, seed by seed) under every pair of assumptions of
    `snncomp.energy.compare`: the SNN's neuron updates not priced, priced as ACs or as MACs; the ANN dense
    or zero-skipping; FP32 and INT8 at 45 nm. Each cell is $E_{SNN}/E_{ANN}$ (below 1: the SNN is cheaper),
    mean and range over the seeds, from the counts the store holds."""
    from types import SimpleNamespace

    from snncomp import energy

    rows = _rows(base, spec)
    snn_name, ann_name = (r.partition("@")[0] for r in t.runs)
    pairs = []
    for seed, srow in sorted(rows.get(snn_name, {}).items()):
        arow = rows.get(ann_name, {}).get(seed)
        if srow.get("status") == "ok" and arow is not None and arow.get("status") == "ok":
            pairs.append(tuple(SimpleNamespace(**{k: (r["steps"][-1].get(k) or 0.0) for k in
                                                  ("effective_macs", "effective_acs", "neuron_updates", "dense_synops")})
                               for r in (srow, arow)))
    lines = [t.caption, ""] if t.caption else []
    lines += ["| regime | SNN neuron updates | ANN accounting | E_SNN / E_ANN (mean) | range over seeds |",
              "|---|---|---|---|---|"]
    if not pairs:
        lines.append("| not run yet | | | | |")
    for regime in ("fp32", "int8"):
        comps = [energy.compare(s, a, regime) for s, a in pairs]
        for key in (comps[0].ratios() if comps else ()):
            vals = [c.ratios()[key] for c in comps]
            lines.append(f"| {regime} | {key[0]} | {key[1]} | {sum(vals) / len(vals):.3f} | "
                         f"{min(vals):.3f} to {max(vals):.3f} |")
    seeds = sorted(seed for seed, r in rows.get(snn_name, {}).items() if r.get("status") == "ok")
    return "\n".join(lines + ["", _footer(spec, f"seeds {', '.join(map(str, seeds)) or 'none'}"), ""])


def ranking(base: Path, spec: specs_mod.Spec, t: specs_mod.Table) -> str:
    """The runs ranked under each column (1: the smallest mean over seeds, e.g. the cheapest), and whether
    each column's order differs from the first column's."""
    rows = _rows(base, spec)
    means = {ref: {c: _stat(_per_seed(ref, rows, None), c)[0] for c in t.columns} for ref in t.runs}
    lines = [t.caption, ""] if t.caption else []
    lines += ["| run | " + " | ".join(_header(c)[0].replace(" (nJ)", "") for c in t.columns) + " |",
              "|---|" + "---|" * len(t.columns)]
    order = {}
    for c in t.columns:
        have = sorted((m[c], ref) for ref, m in means.items() if m[c] is not None)
        order[c] = [ref for _, ref in have]
    for ref in t.runs:
        cells = [str(order[c].index(ref) + 1) if ref in order[c] else "not run yet" for c in t.columns]
        lines.append(f"| `{ref}` | " + " | ".join(cells) + " |")
    first = order[t.columns[0]]
    differ = [_header(c)[0].replace(" (nJ)", "") for c in t.columns[1:] if order[c] != first and len(order[c]) == len(first)]
    first_name = _header(t.columns[0])[0].replace(" (nJ)", "")
    lines += ["", f"*Order differs from {first_name} under: {', '.join(differ) or 'none'}.*", "",
              _footer(spec, "ranked on the means over seeds"), ""]
    return "\n".join(lines)


def spec_table(base: Path, section: str, table: str) -> str:
    """The Markdown table `table` of spec `section`, from the store under `base`."""
    spec = _spec(base, section)
    t = spec.table(table)
    if t.view == "ranking":
        return ranking(base, spec, t)
    if t.view == "energy-assumptions":
        return energy_assumptions(base, spec, t)
    if t.measure is not None:
        return sweep_table(base, spec, t)
    rows = _rows(base, spec)
    heads = [_header(c) for c in t.columns]
    lines = [t.caption, ""] if t.caption else []
    lines += ["| run | baseline | seeds | " + " | ".join(h for h, _, _ in heads) + " |",
              "|---|---|---|" + "---|" * len(heads)]
    for ref in t.runs:
        name = ref.partition("@")[0]
        per = _per_seed(ref, rows, t.reference)
        failed = sorted(s for s, r in rows.get(name, {}).items() if r.get("status") != "ok")
        seeds = ",".join(map(str, sorted(per))) if per else "not run yet"
        if failed:
            seeds += f" (failed: {','.join(map(str, failed))})"
        cells = [leaderboard._cell(_stat(per, c), d, sc) for c, (_, d, sc) in zip(t.columns, heads)]
        lines.append(f"| `{ref}` | {spec.run(name).baseline} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", _footer(spec), ""])


def means(base: Path, section: str, table: str) -> list[dict]:
    """The numbers of one table of spec `section` as data, for notebooks and plots: one dict per run of the
    table with `run`, `seeds` (those with a successful row) and, for each column, the mean over those seeds
    (None when not run)."""
    spec = _spec(base, section)
    t = spec.table(table)
    rows = _rows(base, spec)
    out = []
    for ref in t.runs:
        per = _per_seed(ref, rows, t.reference)
        out.append({"run": ref, "seeds": sorted(per), **{c: _stat(per, c)[0] for c in t.columns}})
    return out


def judge(spec: specs_mod.Spec, rows: dict[str, dict[int, dict]]) -> list[dict]:
    """Every target of `spec` on the mean over seeds: `text`, `run` (the run judged: the best of `runs`),
    `mean`, `sd`, `met` (None: not run)."""
    out = []
    for t in spec.targets:
        got = []
        for ref in t.runs:
            mean, sd = _stat(_per_seed(ref, rows, t.reference), t.metric)
            if mean is not None:
                got.append((mean, sd, ref))
        if not got:
            out.append({"text": t.text, "run": ", ".join(t.runs), "mean": None, "sd": None, "met": None,
                        "target": f"{t.metric} {t.op} {t.bound:g}"})
            continue
        mean, sd, ref = (min if t.op == "<=" else max)(got)
        met = mean <= t.bound if t.op == "<=" else mean >= t.bound
        out.append({"text": t.text, "run": ref, "mean": mean, "sd": sd, "met": met,
                    "target": f"{t.metric} {t.op} {t.bound:g}"})
    return out


def spec_targets(base: Path, section: str) -> str:
    """The targets of spec `section` as a Markdown table (met / missed / not run, mean ± sd)."""
    spec = _spec(base, section)
    lines = ["| target | run | bound | mean ± sd | |", "|---|---|---|---|---|"]
    for j in judge(spec, _rows(base, spec)):
        verdict = "not run" if j["met"] is None else ("met" if j["met"] else "missed")
        lines.append(f"| {j['text']} | `{j['run']}` | {j['target']} | "
                     f"{leaderboard._cell((j['mean'], j['sd']), 2)} | {verdict} |")
    return "\n".join(lines + ["", _footer(spec), ""])
