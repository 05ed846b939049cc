"""The `snncomp` command line: cite, list, search and export the knowledge base; apply a recipe.

    snncomp cite KEY_OR_METHOD [--format bibtex|text]
    snncomp list [--section S] [--implemented]
    snncomp search WORDS...
    snncomp export --format json|csv [--output FILE]
    snncomp validate
    snncomp compress RECIPE.toml [--baseline NAME] [--nir MODEL.nir] [--seed N] [--out FILE.pt|FILE.nir] [--device cpu|cuda] [--threads N]
    snncomp bench [--quick] [--jobs N] [--seeds 0,1,2] [--only NAMES] [--spec NAME | --data NAME [--data-root DIR]] [--output PATH] [--threads N] [--device D] [--executor local|ray]

An unknown key, method or section exits with status 2 and the closest matches. Output piped into a
reader that stops early (`snncomp list | head`) ends without a traceback, with status 141 (128 + SIGPIPE,
as a shell reports for tools killed by the closed pipe).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import sys
from pathlib import Path

from snncomp.files import write_atomic

from . import bib
from .taxonomy import Knowledge, validate

__all__ = ["main"]

BROKEN_PIPE = 141


def _fail(msg: str) -> int:
    print(f"snncomp: {msg}", file=sys.stderr)
    return 2


def _cite(k: Knowledge, args) -> int:
    keys = k.resolve(args.what)
    if not keys:
        close = k.closest(args.what)
        return _fail(f"unknown key or method {args.what!r}" + (f"; closest: {', '.join(close)}" if close else ""))
    for key in keys:
        e = k.entries[key]
        print(bib.to_bibtex(e) if args.format == "bibtex" else bib.format_text(e))
        if args.format == "bibtex" and len(keys) > 1:
            print()
    return 0


def _list(k: Knowledge, args) -> int:
    if args.section and args.section not in {s.id for s in k.sections}:
        import difflib

        close = difflib.get_close_matches(args.section, [s.id for s in k.sections], n=3, cutoff=0.0)
        return _fail(f"unknown section {args.section!r}; closest: {', '.join(close)}")
    rows = k.rows(args.section, True if args.implemented else None)
    for r in rows:
        impl = f"  [{r['implemented']}]" if r["implemented"] else ""
        print(f"{r['taxonomy']:<34} {r['method']:<40} {r['key']:<28} {r['year']}{impl}")
    return 0


def _search(k: Knowledge, args) -> int:
    hits = k.search(" ".join(args.words))
    if not hits:
        close = k.closest(" ".join(args.words))
        return _fail(f"nothing matches {' '.join(args.words)!r}" + (f"; closest: {', '.join(close)}" if close else ""))
    for h in hits:
        print(f"{h['key']:<28} {h['year']}  {h['method'] or '-':<32} {h['title']}")
    return 0


FIELDS = ["section", "family", "taxonomy", "method", "key", "year", "venue", "implemented", "notebook", "title"]


def _export(k: Knowledge, args) -> int:
    rows = k.rows()
    if args.format == "json":
        tree = {
            "survey": k.survey_key,
            "sections": [
                {"id": s.id, "title": s.title, "notebook": s.notebook,
                 "families": [{"id": f.id, "title": f.title, "added": f.added,
                               "methods": [r for r in rows if r["taxonomy"] == f.path]} for f in s.families]}
                for s in k.sections
            ],
        }
        text = json.dumps(tree, indent=2, ensure_ascii=False) + "\n"
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if args.output:
        out = Path(args.output)
        if not out.parent.resolve().is_dir():
            return _fail(f"cannot write {out}: folder {out.parent} does not exist")
        write_atomic(out, text)  # an existing file is never left half-written
    else:
        sys.stdout.write(text)
    return 0


def _validate(k: Knowledge, args) -> int:
    found = validate(k)
    for p in found:
        print(p)
    print(f"{len(k.entries)} bib entries, {len(k.cards)} cards: {len(found)} problem(s)")
    return 1 if found else 0


COLUMNS = [  # (heading, field or energy model, format) of the `compress` table
    ("step", "label", "{}"), ("acc %", "accuracy", "{:.2f}"), ("sparsity", "connection_sparsity", "{:.3f}"),
    ("bits", "weight_bits", "{:.3g}"), ("T", "T", "{}"), ("spikes/sample", "spikes_per_sample", "{:.0f}"),
    ("synops", "synops", "{:.3g}"), ("45nm pJ", "45nm-fp32", "{:.3g}"), ("memory pJ", "memory", "{:.3g}"),
    ("footprint B", "deployed_footprint_bytes", "{:.0f}"), ("s", "seconds", "{:.1f}")]


def _cell(report: dict, key: str, fmt: str) -> str:
    value = report["energy_pj"].get(key) if key in ("45nm-fp32", "memory") else report.get(key)
    if value is None:
        return "-"
    return fmt.format(100 * value if key == "accuracy" else value)


def _unknown_baseline(name: str, known) -> str:
    """The message for a baseline name that is not one of `known`, with the closest names (or all)."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.3)
    return f"unknown baseline {name!r}; " + (f"closest: {', '.join(close)}" if close else f"known: {', '.join(known)}")


def _compress(args) -> int:
    """Apply a recipe to a trained baseline (or to the model of a NIR file, on the baseline's data), printing
    every step's measurements as they come; save the result as `.pt` or as NIR."""
    import torch  # the recipe machinery is imported here: cite, list and search never import torch

    from snncomp import baselines, compress, recipes

    path = Path(args.recipe)
    try:
        if not path.exists() and args.recipe in recipes.builtin():
            recipe = recipes.builtin()[args.recipe]
        else:
            recipe = recipes.load(path)
        name = args.baseline or recipe.baseline
        if name is None:
            return _fail(f"{recipe.source}: the recipe names no baseline; give --baseline NAME")
        if name not in baselines.BASELINES:
            return _fail(_unknown_baseline(name, baselines.BASELINES))
        if args.baseline:
            recipe = dataclasses.replace(recipe, baseline=name, data=None)
        recipes.validate(recipe)
    except recipes.RecipeError as exc:
        return _fail(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device != "cpu":
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            return _fail(f"--device {args.device}: no CUDA device is available here")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    data = baselines.split(name)
    if args.nir:  # the model comes from the file; the data (and the encoder, unless the file names one) from the baseline
        from snncomp import nir_io

        try:
            model, encoder = nir_io.load(args.nir)
        except (OSError, ValueError, TypeError) as exc:
            return _fail(f"--nir {args.nir}: {exc}")
        encoder = encoder or baselines.BASELINES[name].encoder
        try:
            with torch.no_grad():
                model(encoder(data.test_x[:2]))
        except (ValueError, RuntimeError) as exc:
            return _fail(f"--nir {args.nir}: the model does not fit the data of baseline {name} "
                         f"(inputs of shape {tuple(data.test_x.shape[1:])}, encoder {encoder}): {exc}")
    else:
        model, encoder = baselines.trained(name, args.seed)
    if args.device != "cpu":  # the model and every data tensor move; training then runs where they are
        model = model.to(args.device)
        data = dataclasses.replace(data, **{f.name: getattr(data, f.name).to(args.device)
                                            for f in dataclasses.fields(data) if torch.is_tensor(getattr(data, f.name))})
    print(f"recipe {recipe.name} on {f'{args.nir} with the data of ' if args.nir else ''}{name} "
          f"(seed {args.seed}, {len(recipe.steps)} steps)"
          + (f": {recipe.description}" if recipe.description else ""))
    widths = [max(len(h), 9) for h, _, _ in COLUMNS]
    print("  ".join(h.rjust(w) if i else h.ljust(16) for i, ((h, _, _), w) in enumerate(zip(COLUMNS, widths))))

    def show(report: dict) -> None:
        cells = [_cell(report, key, fmt) for _, key, fmt in COLUMNS]
        print("  ".join(c.rjust(w) if i else c[:16].ljust(16) for i, (c, w) in enumerate(zip(cells, widths))), flush=True)

    try:
        applied = recipes.apply(recipe, model, data, encoder, seed=args.seed, progress=progress, on_report=show)
    except recipes.RecipeError as exc:
        return _fail(str(exc))
    first, last = applied.reports[0], applied.reports[-1]
    print(f"accuracy {100 * first['accuracy']:.2f} -> {100 * last['accuracy']:.2f} %; "
          f"energy (45 nm) x{first['energy_pj']['45nm-fp32'] / max(last['energy_pj']['45nm-fp32'], 1e-30):.3g} lower; "
          f"deployed footprint x{first['deployed_footprint_bytes'] / max(last['deployed_footprint_bytes'], 1e-30):.3g} smaller")
    if args.out:
        out = Path(args.out)
        if not out.parent.resolve().is_dir():
            return _fail(f"cannot write {out}: folder {out.parent} does not exist")
        if out.suffix == ".nir":
            from snncomp import nir_io

            tmp = out.with_name(out.name + ".tmp")
            try:
                nir_io.export(applied.compressed.model, applied.compressed.encoder, path=tmp)
            except (TypeError, ValueError) as exc:
                tmp.unlink(missing_ok=True)
                return _fail(f"cannot write {out} as NIR: {exc}")
            os.replace(tmp, out)
            print(f"wrote {out} (NIR; load with snncomp.nir_io.load or any NIR reader)")
            return 0
        import io as _io

        buf = _io.BytesIO()
        torch.save({"model": compress.bake(applied.compressed.model), "encoder": applied.compressed.encoder,
                    "recipe": recipes.dumps(recipe), "reports": applied.reports}, buf)
        write_atomic(out, buf.getvalue())
        print(f"wrote {out} (load with torch.load(path, weights_only=False))")
    return 0


BENCH_COLUMNS = [  # (heading, field or energy model, format) of the `bench` table
    ("run", "recipe", "{}"), ("baseline", "baseline", "{}"), ("seed", "seed", "{}"), ("status", "status", "{}"),
    ("acc %", "accuracy", "{:.2f}"), ("sparsity", "connection_sparsity", "{:.3f}"), ("bits", "weight_bits", "{:.3g}"),
    ("spikes/sample", "spikes_per_sample", "{:.0f}"), ("synops", "synops", "{:.3g}"), ("45nm pJ", "45nm-fp32", "{:.3g}"),
    ("memory pJ", "memory", "{:.3g}"), ("footprint B", "deployed_footprint_bytes", "{:.0f}"), ("s", "seconds", "{:.0f}")]


def _bench_cell(row: dict, key: str, fmt: str) -> str:
    value = (row.get("energy_pj") or {}).get(key) if key in ("45nm-fp32", "memory") else row.get(key)
    if value is None:
        return "-"
    return fmt.format(100 * value if key == "accuracy" else value)


def _bench(args, argv: list[str]) -> int:
    """Run the leaderboard (every registered transform with its defaults, every recipe) into the result
    store, resuming from it, and print one line per run and the wall time."""
    import shlex
    import time

    from snncomp import runner  # imported here: cite, list and search never import torch

    try:
        seeds = tuple(int(x) for x in (args.seeds or "0,1,2").split(",") if x.strip())
    except ValueError:
        return _fail(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if not seeds:
        return _fail("--seeds names no seed")
    if args.jobs < 1 or args.threads < 1:
        return _fail("--jobs and --threads must be at least 1")
    only = [x for x in args.only.split(",") if x] if args.only else None
    spec_names = [x.strip() for s in args.spec for x in s.split(",") if x.strip()]
    if args.data and spec_names:
        return _fail("--data runs the board on another data set; a spec names its runs' data itself (drop --spec)")
    if args.data_root:  # read by the loaders here and in the worker processes, which inherit the environment
        os.environ["SNNCOMP_DATA"] = str(Path(args.data_root).expanduser().resolve())
    try:
        device = runner.resolve_device(args.device)
        if args.data:  # the data set's files must be there before any training starts
            from snncomp.data import catalog

            catalog.identity(args.data)
        if spec_names:  # a spec's runs keep their own seeds unless --seeds is given
            runs = runner.spec_board(spec_names, seeds=seeds if args.seeds is not None else None, only=only,
                                     quick=args.quick)
        else:
            runs = runner.board(quick=args.quick, seeds=seeds, only=only, data=args.data or "")
    except (KeyError, ValueError, FileNotFoundError) as exc:
        return _fail(exc.args[0] if exc.args else str(exc))
    out = Path(args.output) if args.output else runner.DEFAULT_OUTPUT
    store = runner.Store(out)
    if store.repaired:
        print(f"{out}: cut away a torn last line ({store.repaired} bytes) left by an interrupted run", file=sys.stderr)
    todo = len({r.key for r in runs} - (set() if args.redo else store.done()))
    print(f"{len(runs)} runs, {len(runs) - todo} already in {out}; running {todo} "
          f"(jobs {args.jobs}, threads {args.threads}, device {device}, executor {args.executor})", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        rows = runner.execute(runs, store, jobs=args.jobs, threads=args.threads, device=device, executor=args.executor,
                              progress=args.progress, command=shlex.join(["snncomp", *argv]), redo=args.redo)
    except KeyboardInterrupt:
        print(f"interrupted; finished runs are in {out}: run the same command again to resume", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    cells = [[h for h, _, _ in BENCH_COLUMNS]] + [[_bench_cell(r, k, f) for _, k, f in BENCH_COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(BENCH_COLUMNS))]
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"{r['key']}: {r['error']}", file=sys.stderr)
    print(f"{len(rows)} runs ({len(rows) - len(failed)} ok, {len(failed)} failed); {todo} run now in "
          f"{wall:.0f} s wall time; rows in {out}")
    return 1 if failed else 0


def _baselines(args) -> int:
    """Train (or load) each named baseline into the cache, in order, with `--threads` torch threads (default
    1, the thread count of the benchmark runs and the notebook kernels, which the cache key holds)."""
    import time

    import torch

    from snncomp import baselines

    wanted = []
    for item in args.baselines:
        name, _, seed = item.partition(":")
        if name not in baselines.BASELINES:
            return _fail(f"{item!r}: " + _unknown_baseline(name, baselines.BASELINES))
        if seed and not seed.isdigit():
            return _fail(f"{item!r}: the seed after ':' must be a non-negative integer")
        wanted.append((name, int(seed or 0)))
    torch.set_num_threads(args.threads)
    for name, seed in wanted:
        t0 = time.perf_counter()
        baselines.trained(name, seed)
        print(f"{name} seed {seed}: ready in {time.perf_counter() - t0:.1f} s "
              f"({baselines.record(name, seed)['seconds']} s to train)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="snncomp", description="Cite, list, search and export the snncomp knowledge base.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cite", help="print BibTeX (or a formatted reference) for a bib key or a method name")
    c.add_argument("what")
    c.add_argument("--format", choices=["bibtex", "text"], default="bibtex")
    ls = sub.add_parser("list", help="print taxonomy rows (one per paper card)")
    ls.add_argument("--section")
    ls.add_argument("--implemented", action="store_true", help="only papers with an implementation in snncomp")
    s = sub.add_parser("search", help="find methods and papers containing all the words")
    s.add_argument("words", nargs="+")
    e = sub.add_parser("export", help="write the taxonomy with its keys as JSON or CSV")
    e.add_argument("--format", choices=["json", "csv"], required=True)
    e.add_argument("--output", "-o", help="file to write (default: standard output)")
    sub.add_parser("validate", help="check bibliography, cards, taxonomy, registry and citations")
    cp = sub.add_parser("compress", help="apply a recipe (recipes/*.toml) to a trained baseline, measuring every step")
    cp.add_argument("recipe", help="a recipe TOML file, or the name of one under recipes/")
    cp.add_argument("--baseline", help="start from this baseline instead of the recipe's")
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--nir", help="start from the model of this NIR file instead of the baseline's trained model "
                                  "(the data stay the baseline's)")
    cp.add_argument("--out", help="save the compressed model: FILE.nir as a NIR graph, else (.pt) the baked model, "
                                  "its encoder, the recipe and the reports")
    cp.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    cp.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    cp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bars (default: when standard error is a terminal)")
    bl = sub.add_parser("baselines", help="train (or load) baselines into the cache: NAME[:SEED] ...")
    bl.add_argument("baselines", nargs="+", metavar="NAME[:SEED]", help="a baseline of snncomp.baselines, seed 0 by default")
    bl.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the benchmark and notebooks)")
    b = sub.add_parser("bench", help="run the leaderboard: every transform with its defaults and every recipe, "
                                     "resumable, into a JSON-lines store")
    b.add_argument("--quick", action="store_true", help="seed 0, the cheapest methods and two recipes, one-epoch budgets")
    b.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2, or a spec's own; --quick: 0)")
    b.add_argument("--spec", action="append", default=[],
                   help="run a section spec (benchmarks/specs/NAME.toml) instead of the board; repeatable or "
                        "comma-separated; 'all' for every spec")
    b.add_argument("--only", default="", help="comma-separated run names (a method or recipe name)")
    b.add_argument("--jobs", type=int, default=1, help="worker processes (default 1: this process)")
    b.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    b.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    b.add_argument("--redo", action="store_true",
                   help="run the selected runs again even when the store has them (new rows are appended; the newest counts)")
    b.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local processes, or a Ray cluster (pip install 'snncomp[ray]'; RAY_ADDRESS picks it)")
    b.add_argument("--data", default="", help="run the board on this data set (snncomp.data.catalog: mnist5k, "
                                              "fashion-mnist, cifar10, nmnist, shd, dvs-gesture, ...), its baselines "
                                              "trained on it")
    b.add_argument("--data-root", default="", help="the folder holding the local data sets' folders "
                                                   "(default: $SNNCOMP_DATA)")
    b.add_argument("--output", help="the JSON-lines store (default .cache/runs/board.jsonl, never a committed file)")
    b.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when standard error is a terminal)")
    args = p.parse_args(argv)
    if args.cmd == "compress":
        return _compress(args)
    if args.cmd == "baselines":
        return _baselines(args)
    if args.cmd == "bench":
        return _bench(args, list(sys.argv[1:] if argv is None else argv))
    try:
        k = Knowledge.load()
    except (bib.BibError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    command = {"cite": _cite, "list": _list, "search": _search, "export": _export, "validate": _validate}[args.cmd]
    try:
        code = command(k, args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except BrokenPipeError:
        # the reader stopped early (`snncomp list | head`): end quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the final flush at exit then goes nowhere
        return BROKEN_PIPE
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
