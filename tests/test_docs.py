"""The README and the pages of docs/ link to what exists: each relative link to a file that is
there, each ``#anchor`` to a heading of its page (GitHub's anchors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```")


def prose(page: Path) -> list[str]:
    """The page's lines outside code blocks."""
    lines, in_code = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """GitHub's anchor of each heading: lower case, punctuation but ``-`` and ``_`` dropped,
    spaces as ``-``, a repeated one numbered."""
    found: set[str] = set()
    for line in prose(page):
        if heading := re.match(r"^#{1,6}\s+(.*?)\s*$", line):
            slug = re.sub(r"[^\w\- ]", "", heading[1].lower()).replace(" ", "-")
            n = 0
            while (numbered := slug if n == 0 else f"{slug}-{n}") in found:
                n += 1
            found.add(numbered)
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_reaches_a_file_and_heading(page):
    broken = []
    for line in prose(page):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):  # http(s), mailto
                continue
            path, _, anchor = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                broken.append(f"{target}: no such file")
            elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
                broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_readme_links_every_docs_page():
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", (REPO / "README.md").read_text()))
    assert linked == {p.name for p in PAGES[1:]}
