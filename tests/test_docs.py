"""Every document the repository cites is in it, and every #anchor it cites is a heading of that page.

Three kinds of citation are checked in every file of the repository (tracked, or new and not ignored):
- a path to a page under docs/ (`docs/protocol.md`, `docs/protocol.md#metrics`), from the repository root;
- in Markdown files, relative links (`[text](protocol.md#gen)`, `[x](../README.md)`, `[y](#studies)`);
- the specification file that the code's comments once cited, which the repository does not hold.
An anchor is the GitHub slug of a heading of the cited page (or an explicit `<a id=...>`).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# "SPEC" followed by a section sign, "section" or ".md": the specification the repository never held.
ABSENT_SPEC = re.compile(r"\bSPEC(?:\.md\b|\s*\u00a7|\s+section\b)")
# docs/NAME.md[#anchor], from the repository root; not the tail of a URL or of another path
DOCS_PATH = re.compile(r"(?<![\w./-])(docs/[\w./-]*?\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\]\(([^()\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")
SKIP_PARTS = {".git", ".venv", ".venv-vllm", "runs", "__pycache__", ".pytest_cache", "node_modules"}


def repo_files(root: Path = ROOT) -> list[Path]:
    """The repository's files: git's tracked and new-but-not-ignored ones; without git, a walk of the tree."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout.decode("utf-8", "surrogateescape")
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_PARTS]
            names += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(root / n for n in names if (root / n).is_file())


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # a binary file cites nothing


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page: its headings' slugs (repeats numbered as GitHub does) and <a id>s."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in (read_text(page) or "").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(HTML_ANCHOR.findall(line))
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def citations(root: Path, files: list[Path]) -> list[tuple[str, Path, str | None]]:
    """(where, cited page, anchor or None) for every docs/ path and every relative Markdown link."""
    out = []
    for path in files:
        text = read_text(path)
        if text is None:
            continue
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{number}"
            for m in DOCS_PATH.finditer(line):
                out.append((where, root / m.group(1), m.group(2)))
            if path.suffix != ".md":
                continue
            for m in MD_LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto: ...
                    continue
                name, _, anchor = target.partition("#")
                page = (path.parent / name).resolve() if name else path
                out.append((where, page, anchor or None))
    return list(dict.fromkeys((where, page.resolve(), anchor) for where, page, anchor in out))


def missing_documents(root: Path, files: list[Path]) -> list[str]:
    present = {p.resolve() for p in files}
    bad = []
    for where, page, _ in citations(root, files):
        if page.resolve() not in present and not (page.is_dir() and any(p.is_relative_to(page.resolve())
                                                                        for p in present)):
            bad.append(f"{where} cites {os.path.relpath(page, root)}")
    return bad


def missing_anchors(root: Path, files: list[Path]) -> list[str]:
    cache: dict[Path, set[str]] = {}
    bad = []
    for where, page, anchor in citations(root, files):
        if anchor is None or page.suffix != ".md" or not page.is_file():
            continue
        if page not in cache:
            cache[page] = anchors(page)
        if anchor not in cache[page]:
            bad.append(f"{where} cites {os.path.relpath(page, root)}#{anchor}, which is no heading there")
    return bad


def absent_spec_citations(root: Path, files: list[Path]) -> list[str]:
    bad = []
    for path in files:
        text = read_text(path)
        for number, line in enumerate((text or "").splitlines(), 1):
            if ABSENT_SPEC.search(line):
                bad.append(f"{path.relative_to(root).as_posix()}:{number}: {line.strip()[:100]}")
    return bad


# ------------------------------------------------------------------------------------------- the repository


def cited_from() -> list[Path]:
    """The repository's files but this one, whose citations are examples for the checker's own tests."""
    return [p for p in repo_files() if p != Path(__file__).resolve()]


def test_the_protocol_page_is_in_the_repository():
    files = repo_files()
    assert ROOT / "docs" / "protocol.md" in files
    assert {"studies", "metrics", "defaults", "gen", "transferability-index-and-mti", "bootstrap-intervals",
            "parallel-scaling-law-fit", "first-parallel-leap", "monolingual-generalization-gap", "off-target-rate",
            "prompt-hacking", "evaluation-benchmarks", "training", "rewards", "languages"} <= anchors(
        ROOT / "docs" / "protocol.md")


def test_every_cited_document_is_in_the_repository():
    files = cited_from()
    bad = missing_documents(ROOT, files)
    assert not bad, "documents cited but not in the repository:\n" + "\n".join(bad)


def test_every_cited_anchor_is_a_heading_of_its_page():
    files = cited_from()
    bad = missing_anchors(ROOT, files)
    assert not bad, "anchors cited but not found:\n" + "\n".join(bad)


def test_no_file_cites_the_specification_the_repository_does_not_hold():
    bad = absent_spec_citations(ROOT, cited_from())
    assert not bad, (
        f"{len(bad)} line(s) cite a specification file that is not in the repository; cite the page of docs/ "
        "that says the same instead (docs/protocol.md#metrics, #prompts, #languages, #generation, "
        "#evaluation-benchmarks, #training, #rewards, #published-parallel-scaling-numbers):\n" + "\n".join(bad))


# ------------------------------------------------------------------------------------------- the checker itself


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## Metrics\n\n### Study A: Parallel Scaling Law\n\n## Metrics\n\n"
        "```bash\n# not a heading\n```\n\n<a id=\"kept\"></a>\n[back](../README.md) [here](#metrics)\n",
        encoding="utf-8")
    (tmp_path / "README.md").write_text("[doc](docs/page.md#study-a-parallel-scaling-law)\n", encoding="utf-8")
    return tmp_path


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_slugs_follow_github():
    assert slug("Study A: Parallel Scaling Law") == "study-a-parallel-scaling-law"
    assert slug("Study C: PB-RLSVR") == "study-c-pb-rlsvr"
    assert slug("The paper's numbers (k = 0…7)") == "the-papers-numbers-k--07"
    assert slug("`gen.n` per benchmark") == "genn-per-benchmark"


def test_anchors_are_headings_outside_code_with_repeats_numbered(tree):
    assert anchors(tree / "docs" / "page.md") == {"page", "metrics", "metrics-1", "study-a-parallel-scaling-law",
                                                  "kept"}


def test_a_consistent_tree_passes(tree):
    files = files_of(tree)
    assert missing_documents(tree, files) == []
    assert missing_anchors(tree, files) == []
    assert absent_spec_citations(tree, files) == []


def test_a_missing_page_a_missing_anchor_and_the_absent_specification_are_each_reported(tree):
    (tree / "run.py").write_text("# see docs/gone.md and docs/page.md#nowhere\n# as SPEC \u00a72 says\n",
                                 encoding="utf-8")
    (tree / "docs" / "other.md").write_text("[x](page.md#not-here) [y](missing.md) [z](https://example.org/a.md)\n",
                                            encoding="utf-8")
    files = files_of(tree)
    assert missing_documents(tree, files) == ["docs/other.md:1 cites docs/missing.md", "run.py:1 cites docs/gone.md"]
    assert missing_anchors(tree, files) == [
        "docs/other.md:1 cites docs/page.md#not-here, which is no heading there",
        "run.py:1 cites docs/page.md#nowhere, which is no heading there",
    ]
    assert absent_spec_citations(tree, files) == ["run.py:2: # as SPEC \u00a72 says"]


def test_the_readme_layout_names_every_package_and_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    missing = []
    for path in sorted((ROOT / "xling").rglob("*.py")):
        rel = path.relative_to(ROOT / "xling")
        if path.name == "__init__.py":
            if len(rel.parts) > 1 and f"{rel.parts[0]}/" not in block:
                missing.append(f"{rel.parts[0]}/")
            continue
        named = f"{path.name}" in block or (rel.parts[0] == "tasks" and f" {path.stem}" in block)
        if not named:
            missing.append(str(rel))
    assert not missing, f"README's Layout does not name: {', '.join(missing)}"


def test_every_source_path_the_docs_name_exists():
    named = PATH_IN_TEXT.findall("\n".join(p.read_text(encoding="utf-8")
                                           for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]))
    assert named, "the docs name no source file at all: the pattern is wrong"
    missing = sorted({p for p in named if not (ROOT / p).exists()})
    assert not missing, f"the docs name files that do not exist: {', '.join(missing)}"


PATH_IN_TEXT = re.compile(r"\bxling/[\w/]+\.py\b")
