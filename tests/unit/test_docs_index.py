"""docs/README.md, the index of the documentation: every page of docs/ is linked from it, and each of its links
leads to a file (a page nobody links to is a page nobody finds)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
INDEX = DOCS / "README.md"
# Markdown links' targets, without an #anchor: [text](target#anchor).
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def local_links(page: Path) -> set[Path]:
    return {(page.parent / target).resolve() for target in LINK.findall(page.read_text()) if "://" not in target}


def pages() -> set[Path]:
    """The hand-written pages and the generated reference's entry page."""
    return {path.resolve() for path in DOCS.glob("*.md") if path != INDEX} | {(DOCS / "reference" / "index.rst").resolve()}


def test_every_page_is_linked_from_the_index():
    unlinked = sorted(str(page.relative_to(DOCS)) for page in pages() - local_links(INDEX))
    assert unlinked == [], f"pages missing from docs/README.md: {unlinked}"


def test_every_link_of_the_index_leads_to_a_file():
    assert sorted(str(link) for link in local_links(INDEX) if not link.is_file()) == []


def test_the_layout_page_and_the_readme_point_to_the_index():
    assert INDEX.resolve() in local_links(DOCS / "layout.md")
    assert INDEX.resolve() in local_links(DOCS.parent / "README.md")


def test_the_link_reader_sees_a_missing_page(tmp_path):
    # The control: a page the index does not name is found unlinked.
    (tmp_path / "README.md").write_text("[a](a.md) [b](b.md#part) [web](https://example.org/c.md)\n")
    for name in ("a.md", "b.md", "c.md"):
        (tmp_path / name).write_text("# page\n")
    linked = local_links(tmp_path / "README.md")
    assert {path.name for path in linked} == {"a.md", "b.md"}
    assert {path.name for path in tmp_path.glob("*.md")} - {path.name for path in linked} == {"README.md", "c.md"}


def install_recipe(page: Path) -> str:
    """The shell block after the page's `<!-- install-recipe ... -->` marker."""
    text = page.read_text()
    start = text.index("```sh\n", text.index("<!-- install-recipe")) + len("```sh\n")
    return text[start : text.index("```", start)]


def test_one_install_recipe():
    # The README and getting-started give the same commands (they disagreed once).
    recipe = install_recipe(DOCS.parent / "README.md")
    assert "ansible-galaxy collection install toil.cluster" in recipe
    assert install_recipe(DOCS / "getting-started.md") == recipe
