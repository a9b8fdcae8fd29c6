"""Every relative link in the README and docs/ points at a file of this repository, and
no document sends readers to a wire reference outside it (docs/memory-api.md is ours)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench/README.md"]
DOCS += sorted((ROOT / "examples").glob("**/*.md"))
# [text](target) outside code spans; targets with a scheme or only an anchor are skipped.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"```.*?```", re.S)
CODE = re.compile(r"`[^`\n]*`")


def relative_links(doc: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", doc.read_text()))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#")
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(doc):
    broken = []
    for target in relative_links(doc):
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"


def test_the_readme_links_the_operating_docs():
    links = set(relative_links(ROOT / "README.md"))
    for doc in ("docs/deployment.md", "docs/memory-api.md", "docs/remote-mode.md"):
        assert doc in links, f"README does not link {doc}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_no_wire_document_outside_the_repository(doc):
    assert "dakera-wire" not in doc.read_text()
