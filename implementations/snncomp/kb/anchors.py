"""Where the site links a taxonomy family: the heading that explains it.

Each family of `taxonomy.yaml` names an `anchor:`, a heading id on its section's page (or `other.md` /
`other.md#id`); `family_links` resolves them against the pages' headings, with ids made as the
`toc` extension makes them (`headings`), so a renamed heading fails the build instead of leaving a dead
link. Used by the taxonomy page and the home page's map.
"""

from __future__ import annotations

import re

from .taxonomy import Knowledge, load_yaml

__all__ = ["headings", "family_links"]

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(?:\{[^}]*#([\w-]+)[^}]*\})?\s*#*\s*$")


def headings(text: str) -> list[str]:
    """The ids of a Markdown page's headings as the `toc` extension makes them (an explicit `{#id}` wins),
    fenced code skipped."""
    from markdown.extensions.toc import slugify

    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        m = None if fence else _HEADING.match(line)
        if m:
            words = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(2)).replace("`", "").replace("*", "")
            out.append(m.group(3) or slugify(words, "-"))
    return out


def family_links(k: Knowledge) -> dict[str, str]:
    """Family path -> `page/#id` (or `page/`) relative to the site root, from each family's `anchor:` in
    `taxonomy.yaml`: a heading id on its section's page, or `other.md` / `other.md#id`. A family without
    an anchor, a page that does not exist or an id that is no heading of the page is an error naming the
    family and the page's headings."""
    tree = load_yaml((k.base / "taxonomy.yaml").read_text(encoding="utf-8"))
    out = {}
    for s in tree["sections"]:
        for f in s["families"]:
            where = f"taxonomy.yaml: family {s['id']}/{f['id']}"
            anchor = f.get("anchor")
            if not anchor:
                raise ValueError(f"{where} has no `anchor:` (a heading id on {s['page']}, or other.md#id)")
            if anchor.endswith(".md"):  # a whole page
                page, hid = anchor, ""
            elif ".md#" in anchor:  # a heading of another page
                page, hid = anchor.split("#", 1)
            else:  # a heading of the section's own page
                page, hid = s["page"], anchor
            path = k.base / "docs" / page
            if not path.exists():
                raise ValueError(f"{where}: anchor {anchor!r} names {path}, which does not exist")
            if hid and hid not in (ids := headings(path.read_text(encoding="utf-8"))):
                raise ValueError(f"{where}: anchor {anchor!r} is no heading of docs/{page}; its headings: "
                                 + ", ".join(ids))
            out[f"{s['id']}/{f['id']}"] = page[:-3] + "/" + (f"#{hid}" if hid else "")
    return out
