"""Generated blocks inside hand-written pages: the taxonomy map, the headline result, the closing block of
every section page and the project's own citation.

`fill(markdown, k, src_uri, url)` is the one entry point (the site hook calls it last, once the other
markers are replaced). It replaces

* `<!-- taxonomy-map -->` with the taxonomy as a grid of sections and families, each family linking to the
  heading that explains it (`anchor:` in `taxonomy.yaml`, resolved by `snncomp.kb.anchors`);
* `<!-- headline -->` with the `targets` recipe's result from the committed result store;
* `<!-- cite-project -->` with `CITATION.cff` and the BibTeX made from it;

and ends every section page (a `page:` of `taxonomy.yaml`) with its methods table (added when the page has
none), a link to its notebook and the list of every work the page cites. Pure functions of the files
under `k.base`; no torch import.
"""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

import yaml

from . import bib, leaderboard, pages
from .anchors import family_links
from .taxonomy import Knowledge, Section, load_yaml

__all__ = ["fill", "taxonomy_map", "headline", "section_closing", "project_citation", "read_citation"]

TAXONOMY_MARK = re.compile(r"<!--\s*taxonomy-map\s*-->")
HEADLINE_MARK = re.compile(r"<!--\s*headline\s*-->")
CITE_MARK = re.compile(r"<!--\s*cite-project\s*-->")


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


# ----------------------------------------------------------------------------- the taxonomy map

def taxonomy_map(k: Knowledge, prefix: str = "") -> str:
    """The taxonomy as a grid: one box per section (linking to its page) holding its families (each linking
    to the heading that explains it) with their paper and implementation counts. `prefix` leads from the
    page to the site root ("" on the home page)."""
    return '<div class="tax-map">\n' + pages.taxonomy_grid(k, prefix, family_links(k)) + "</div>\n"


# ----------------------------------------------------------------------------- the headline result


def headline(base: Path, recipe: str = "targets") -> str:
    """The `recipe`'s result from the committed store: accuracy drop, times cheaper than the FP32 dense
    ANN and times smaller, each the mean ± sd over its seeds, with the recipe, the baseline and the
    command that measured it."""
    rows = [r for r in leaderboard.read_store(base / leaderboard.STORE) if "/" not in r["recipe"]]
    entry = next((s for s in leaderboard.summarise(rows) if s["name"] == recipe and s["seeds"]), None)
    if entry is None:
        return (f"*The `{recipe}` recipe has no result in `benchmarks/results/board.jsonl` yet: run "
                "`snncomp bench --output benchmarks/results/board.jsonl` and commit the file.*\n")
    path = base / "recipes" / f"{recipe}.toml"
    what = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "") if path.exists() else ""
    own = [r for r in rows if r["recipe"] == recipe and r.get("status") == "ok"]
    commands = sorted({r.get("command", "?") for r in own})
    dates = sorted(r.get("date", "")[:10] for r in own if r.get("date"))
    stat = entry["stats"]
    met = {t["metric"]: t["met"] for t in leaderboard.targets([entry], recipe)}
    bounds = {metric: f"{'≤' if op == '<=' else '≥'} {bound:g}" for metric, op, bound, _ in leaderboard.TARGETS}

    def cell(metric: str, digits: int) -> str:
        return leaderboard._cell(stat.get(metric, (None, None)), digits)

    def target(metric: str) -> str:
        return f"{bounds[metric]} ({'met' if met[metric] else 'missed'})"

    out = [f"**{what}** (`recipes/{recipe}.toml`)" if what else f"**`recipes/{recipe}.toml`**", "",
           "| | mean ± sd | target |", "|---|---|---|",
           f"| accuracy drop from the dense SNN (points) | {cell('drop', 2)} | {target('drop')} |",
           f"| × cheaper than the FP32 dense ANN (45 nm compute) | {cell('vs_ann_dense', 0)} | {target('vs_ann_dense')} |",
           f"| × smaller deployed footprint than the dense FP32 SNN | {cell('smaller', 1)} | {target('smaller')} |",
           f"| test accuracy (%) | {cell('accuracy', 2)} | |", "",
           f"*Reproduced here: baseline `{entry['baseline']}`, seeds {', '.join(map(str, entry['seeds']))}, "
           f"measured by `{'`, `'.join(commands)}`" + (f" on {dates[0]}" if dates and dates[0] == dates[-1]
                                                       else f" from {dates[0]} to {dates[-1]}" if dates else "")
           + " (rows of `benchmarks/results/board.jsonl`). The fourth target, "
           f"× cheaper than the same-width ANN with memory included, is {cell('vs_ann_memory_w', 3)} "
           f"against {target('vs_ann_memory_w')}; the [Benchmark](benchmark.md) page has every method and recipe.*", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- section pages

METHODS_SENTINEL = "<!-- snncomp:methods-table -->"  # written by `pages.section_table`


def section_closing(k: Knowledge, s: Section, markdown: str, prefix: str) -> str:
    """The standard end of section `s`'s page: its methods table when the page has none, a link to its
    notebook, and every work the page cites (each linking to the bibliography)."""
    out = []
    if METHODS_SENTINEL not in markdown:
        out += ["## Papers in this section", "", pages.section_table(k, s.id)]
    out += ["## Run it", ""]
    if s.notebook:
        stem = Path(s.notebook).stem
        out.append(f"[{pages.notebook_title(stem)}](notebooks/{stem}.md) runs this section's methods, outputs "
                   f"included (executed when the site is built); its source is `{s.notebook}`, which "
                   f"`jupytext --to ipynb {s.notebook}` opens in Jupyter.")
    else:
        out.append(f"No notebook covers this section yet (`taxonomy.yaml` names none for `{s.id}`).")
    keys = list(dict.fromkeys(key for key in bib.cite_keys(markdown + "\n".join(out)) if key in k.entries))
    if keys:
        keys.sort(key=lambda key: ([a.lower() for a in bib.authors(k.entries[key])], bib.field(k.entries[key], "year")))
        out += ["", "## References", "", f"Every work this page cites ({len(keys)}), with its entry in the "
                "[bibliography](bibliography.md).", "", '<ol class="snn-refs">']
        out += [f'<li><a class="snn-cite" href="{prefix}bibliography/#{key}">{_esc(bib.short_cite(k.entries[key]))}'
                f"</a>: {_esc(bib.format_text(k.entries[key]))}</li>" for key in keys]
        out.append("</ol>")
    return markdown.rstrip() + "\n\n" + "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the project's citation


def read_citation(base: Path) -> dict:
    """`CITATION.cff` as a mapping; a missing file or one that is no YAML mapping is an error naming it."""
    path = base / "CITATION.cff"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; the cite-project marker shows it")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of CFF keys, got {type(data).__name__}")
    return data


def _names(people: list[dict]) -> str:
    return " and ".join(f"{{{p['name']}}}" if "name" in p else f"{p['family-names']}, {p.get('given-names', '')}".strip(", ")
                        for p in people)


def project_citation(base: Path) -> str:
    """`CITATION.cff` verbatim and the same metadata as a BibTeX `@software` entry."""
    cff = read_citation(base)
    for key in ("title", "authors", "version", "date-released"):
        if key not in cff:
            raise ValueError(f"{base / 'CITATION.cff'}: missing {key!r}, which the BibTeX entry needs")
    date = str(cff["date-released"])
    fields = [("author", _names(cff["authors"])), ("title", cff["title"]), ("version", cff["version"]),
              ("year", date[:4]), ("date", date), ("license", cff.get("license")), ("url", cff.get("url")),
              ("repository", cff.get("repository-code"))]
    entry = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    text = (base / "CITATION.cff").read_text(encoding="utf-8").rstrip()
    return (f"`CITATION.cff` at the repository root:\n\n```yaml\n{text}\n```\n\n"
            f"The same as BibTeX (generated from that file when the site is built):\n\n"
            f"```bibtex\n@software{{snncomp,\n{entry}\n}}\n```\n")


# ----------------------------------------------------------------------------- the entry point


def fill(markdown: str, k: Knowledge, src_uri: str, url: str) -> str:
    """Replace this module's markers in one page's Markdown and close a section page (see the module)."""
    prefix = "../" * url.count("/")
    markdown = TAXONOMY_MARK.sub(lambda m: taxonomy_map(k, prefix), markdown)
    markdown = HEADLINE_MARK.sub(lambda m: headline(k.base), markdown)
    markdown = CITE_MARK.sub(lambda m: project_citation(k.base), markdown)
    section = next((s for s in k.sections if s.page == src_uri), None)
    return section_closing(k, section, markdown, prefix) if section else markdown
