"""The installed package never reads the checkout (issue 29): no ``git``, no ``benchmarks/``, no
``Path.cwd()`` or ``source_checkout()`` fallbacks in lic_core's code — the training campaign,
which does know the checkout, is the repository's ``campaign/`` package (tests/campaign/)."""
from __future__ import annotations

import ast
from pathlib import Path

LIC_CORE = Path(__file__).resolve().parents[2] / "lic_core"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_lic_core_code_does_not_reach_into_the_checkout():
    found = []
    for path in sorted(LIC_CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(LIC_CORE.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs:
                if node.value == "git" or node.value.startswith("benchmarks/") \
                        or node.value == "benchmarks":
                    found.append(f"{where} {node.value!r}")
            if isinstance(node, ast.Attribute) and node.attr == "cwd":
                found.append(f"{where} .cwd()")
            if isinstance(node, ast.Name) and node.id == "source_checkout" \
                    and path.name != "paths.py":
                found.append(f"{where} source_checkout")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n == "campaign" or n.startswith("campaign.") for n in names) \
                        and getattr(node, "level", 0) == 0:
                    found.append(f"{where} imports the campaign")
    assert not found, found
