"""Every section citation resolves (spec/README.md §1).

Reads every section sign in the code, the tests, spec/, vectors/ and the
README. A citation names a published document by an abbreviation from the
table of spec/README.md §1.1, or one of our documents by its path (in
Markdown, also by a link to it); a section sign after a cited section and
",", "and", "or", "-" or "/" continues that citation. A cited section of one
of our documents must be a numbered heading there, and a Markdown anchor into
one of them must be a heading's anchor.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIGN = "\N{SECTION SIGN}"
NUMBER = re.compile(r"\d+(?:\.\d+)*")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*$", re.MULTILINE)
HEADING_NUMBER = re.compile(r"(\d+(?:\.\d+)*)\.?\s")
LINK = re.compile(r"\[([^\]\n]*(?:\n[^\]\n]*)?)\]\(([^)\s]+)\)")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*(?:#[ \t]*)?\n")
# A comment or quote marker at the start of a wrapped line, or the quotes of
# adjacent string literals, join it to the line before, so a citation may
# break across lines.
LINE_BREAK = re.compile(r"[\"']?\n[ \t]*(?:#+|>|[\"'])?[ \t]*")
OUR_PATH = re.compile(r"(?:^|[\s(`\[*\"'])((?:spec|vectors|tests)/[\w/.-]+\.md|README\.md)`?\s*$")
LINK_BEFORE = re.compile(r"\]\(([^)\s]+)\)\s*$")
CONTINUATION = re.compile(SIGN + r"\d+(?:\.\d+)*(?: step \d+)?\s*(?:,|-|–|/|\band\b|\bor\b)\s*$")
# The word before a section sign, if it could be meant as a document's name:
# not a plain lowercase word, not the end of a sentence.
NAME_LIKE = re.compile(r"(?:^|[\s(\[`\"'])([A-Za-z][\w.'-]*(?: \d+)?)[`\"']?\s*$")
PLAIN_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*|.*\.")
SECTION_WORD = re.compile(r"\b[Ss]ections? (\d+(?:\.\d+)*)\b")
# Published vector text keeps its bytes (changing it changes a committed
# file), so these citations in it are read as noted here.
PUBLISHED = {"sender-key ratchet chains (" + SIGN + "5.1)": "RFC 9605"}


@dataclass(frozen=True)
class Citation:
    """One section sign: where it is, the document it cites (an abbreviation
    of spec/README.md §1.1, or the path of one of ours) and the section."""

    where: str
    source: str | Path
    section: str


def relative(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root).as_posix()


def scanned_files() -> list[Path]:
    """The files spec/README.md §1 holds to the citation style."""
    files = [ROOT / "README.md", ROOT / "vectors" / "README.md"]
    files += sorted((ROOT / "vectors").glob("*.json"))
    for folder in ("protocol", "spec", "tests"):
        files += sorted(
            p
            for p in (ROOT / folder).rglob("*")
            if p.suffix in (".py", ".md") and not {".cache", "node_modules"} & set(p.parts)
        )
    return files


@functools.cache
def abbreviations() -> tuple[str, ...]:
    """The first column of the table of spec/README.md §1.1, longest first."""
    text = (ROOT / "spec" / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE)
    return tuple(sorted(names, key=len, reverse=True))


def is_document(path: Path) -> bool:
    """Whether a section sign with no document before it cites this file."""
    return path.suffix == ".md" and path != ROOT / "README.md"


def our_document(base: Path, target: str) -> Path | None:
    """The project Markdown file a link in `base` points to, or None."""
    name = target.split("#", 1)[0]
    if "://" in target or not name.endswith(".md"):
        return None
    return (base.parent / name).resolve()


def read(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text.replace("\\u00a7", SIGN) if path.suffix == ".json" else text


def source_before(
    path: Path, at: int, before: str, links: list[tuple[int, int, str]], root: Path
) -> str | Path | None:
    """The document named right before the section sign at `at`, or None."""
    for name in abbreviations():
        if re.search(r"(?:^|[\s(\[`*\"'/;])" + re.escape(name) + r"`?\s*$", before):
            return name
    match = OUR_PATH.search(before)
    if match:
        return root / match.group(1)
    for start, end, target in links:
        if start <= at < end and our_document(path, target) is not None:
            return our_document(path, target)
    match = LINK_BEFORE.search(before)
    if match:
        return our_document(path, match.group(1))
    return None


def citations(path: Path, root: Path = ROOT) -> tuple[list[Citation], list[str]]:
    """Every section sign of one file as a Citation, and the problems found:
    a section sign without a number, a name not in the table, a section sign
    naming no document in code, a section spelled out as a word."""
    text = read(path)
    links = [(m.start(1), m.end(1), m.group(2)) for m in LINK.finditer(text)]
    found: list[Citation] = []
    problems: list[str] = []
    source: str | Path | None = None
    for sign in re.finditer(SIGN, text):
        where = f"{relative(path, root)}:{text.count(chr(10), 0, sign.start()) + 1}"
        number = NUMBER.match(text, sign.end())
        if number is None:
            problems.append(f"{where}: a section sign without a section number")
            continue
        paragraph = PARAGRAPH_BREAK.split(text[max(0, sign.start() - 300) : sign.start()])[-1]
        before = LINE_BREAK.sub(" ", paragraph)
        previous = source
        source = source_before(path, sign.start(), before, links, root)
        if source is None and CONTINUATION.search(before):
            source = previous
        for published, name in PUBLISHED.items():
            if text.startswith(published, sign.start() - published.index(SIGN)):
                source = name
        if source is None:
            word = NAME_LIKE.search(before)
            if word and not PLAIN_WORD.fullmatch(word.group(1)):
                problems.append(f"{where}: {word.group(1)!r} is not in spec/README.md {SIGN}1.1")
                continue
            if not is_document(path):
                problems.append(f"{where}: {SIGN}{number.group()} names no document")
                continue
            source = path
        found.append(Citation(where, source, number.group()))
    if is_document(path):
        for word in SECTION_WORD.finditer(text):
            where = f"{relative(path, root)}:{text.count(chr(10), 0, word.start()) + 1}"
            problems.append(f"{where}: write {SIGN}{word.group(1)}, not {word.group()!r}")
    return found, problems


@functools.cache
def headings(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The section numbers of a Markdown file's headings, and the anchors
    GitHub gives them."""
    numbers = set()
    anchors = set()
    for match in HEADING.finditer(path.read_text(encoding="utf-8")):
        title = match.group(1)
        number = HEADING_NUMBER.match(title + " ")
        if number:
            numbers.add(number.group(1))
        anchors.add(re.sub(r"[^\w\- ]", "", title.replace("`", "").lower()).replace(" ", "-"))
    return frozenset(numbers), frozenset(anchors)


@functools.cache
def scan() -> tuple[tuple[Citation, ...], tuple[str, ...]]:
    found: list[Citation] = []
    problems: list[str] = []
    for path in scanned_files():
        more, wrong = citations(path)
        found += more
        problems += wrong
    return tuple(found), tuple(problems)


def test_the_abbreviation_table_lists_the_documents_we_cite() -> None:
    cited = {c.source for c in scan()[0] if isinstance(c.source, str)}
    assert {"DR", "X3DH", "PQXDH", "XEdDSA", "Braid", "FIPS 203", "RFC 9605"} <= cited
    assert cited <= set(abbreviations())


def test_every_citation_names_a_listed_document() -> None:
    found, problems = scan()
    assert len(found) > 1000
    assert list(problems) == []


def missing_sections(found: tuple[Citation, ...] | list[Citation], root: Path = ROOT) -> list[str]:
    """The citations of our documents whose document or numbered heading is missing."""
    broken = []
    for citation in found:
        if isinstance(citation.source, str):
            continue
        target = citation.source
        if not target.is_file():
            broken.append(f"{citation.where}: {relative(target, root)} does not exist")
        elif citation.section not in headings(target)[0]:
            broken.append(
                f"{citation.where}: {relative(target, root)} has no {SIGN}{citation.section}"
            )
    return broken


def missing_anchors(path: Path, root: Path = ROOT) -> list[str]:
    """The Markdown links of ``path`` into our documents whose anchor no heading has."""
    broken = []
    text = read(path)
    for match in LINK.finditer(text):
        target = match.group(2)
        if "#" not in target:
            continue
        name, anchor = target.split("#", 1)
        document = path if not name else our_document(path, name)
        if document is None:
            continue
        where = f"{relative(path, root)}:{text.count(chr(10), 0, match.start()) + 1}"
        if not document.is_file():
            broken.append(f"{where}: {name} does not exist")
        elif anchor not in headings(document)[1]:
            broken.append(f"{where}: {name or relative(path, root)} has no heading #{anchor}")
    return broken


def test_every_cited_section_of_our_documents_exists() -> None:
    assert missing_sections(scan()[0]) == []


def test_every_markdown_anchor_into_our_documents_exists() -> None:
    assert [m for p in scanned_files() if p.suffix == ".md" for m in missing_anchors(p)] == []


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    # The rules above, each shown failing once on a file made for it.
    code = tmp_path / "code.py"
    code.write_text(
        f'"""Double Ratchet {SIGN}3.5; spec/ratchet.md {SIGN}3.2, {SIGN}3.1; ({SIGN}4)."""\n',
        encoding="utf-8",
    )
    found, problems = citations(code, root=tmp_path)
    assert [c.section for c in found] == ["3.2", "3.1"]
    assert found[1].source == tmp_path / "spec" / "ratchet.md"
    assert problems == [
        f"code.py:1: 'Ratchet' is not in spec/README.md {SIGN}1.1",
        f"code.py:1: {SIGN}4 names no document",
    ]


def test_the_checker_finds_missing_sections_and_anchors(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "a.md").write_text("# A\n\n## 1. One\n\n### 1.1 Sub\n", encoding="utf-8")
    doc = spec / "b.md"
    doc.write_text(
        f"[a.md](a.md) {SIGN}1.1 and {SIGN}2; [x](a.md#11-sub), [y](a.md#2-two), [z](c.md#1).\n",
        encoding="utf-8",
    )
    found, problems = citations(doc, root=tmp_path)
    assert problems == []
    assert missing_sections(found, tmp_path) == [f"spec/b.md:1: spec/a.md has no {SIGN}2"]
    assert missing_anchors(doc, tmp_path) == [
        "spec/b.md:1: a.md has no heading #2-two",
        "spec/b.md:1: c.md does not exist",
    ]
