"""spec/security.md names only tests that exist, and every security test backs a claim there."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
SPEC: Final = ROOT / "spec" / "security.md"
CITATION: Final = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def cited() -> set[tuple[str, str]]:
    return set(CITATION.findall(SPEC.read_text()))


def defined(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_test_named_in_the_security_spec_exists() -> None:
    citations = cited()
    assert citations
    missing = [(path, name) for path, name in citations if name not in defined(path)]
    assert missing == []


def test_every_security_test_is_named_in_the_security_spec() -> None:
    folder = Path(__file__).resolve().parent
    tests = {
        (str(path.relative_to(ROOT)), name)
        for path in folder.glob("test_*.py")
        for name in defined(str(path.relative_to(ROOT)))
        if name.startswith("test_")
    }
    assert tests - cited() == set()
