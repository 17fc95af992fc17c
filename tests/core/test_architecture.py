"""The import graph has no circles, and quantizers import no entropy-coding library.

Read from the source with :mod:`ast` (imports inside functions count too), so it needs no tool;
the finer contracts (layers, inference never imports training, no Qt in lic_core) are
import-linter's, in pyproject.toml, run by ``.ci/run``.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("lic_core", "app", "campaign")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of our packages that ``name`` imports (a ``from pkg import sub`` names ``sub``)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module
                                                                    else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod
                       for a in node.names]
        for t in targets:
            while t and t not in modules:  # ``import a.b.c`` of a package path: nearest module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_graph_is_read_correctly():
    g = _graph()
    assert "lic_core.latent_codecs.hyperprior" in g["lic_core.codecs.learned"] or \
        "lic_core.latent_codecs" in g["lic_core.codecs.learned"]
    assert "lic_core.codecs.learned" in g["lic_core.train.finetune"]
    assert "lic_core.quantizer.base" in g["lic_core.quantizer.scalar"]


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert not cycles, f"import circles: {cycles}"


def test_every_import_of_our_packages_names_a_module():
    """A moved module's relative imports (also lazy ones inside functions) still resolve."""
    modules = _modules()
    dangling = []
    for name, path in modules.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                mod = (".".join(base[: len(base) - node.level + 1]
                                + ([node.module] if node.module else []))
                       if node.level else node.module or "")
                mods = [mod]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            dangling += [f"{name}: {m}" for m in mods
                         if m.split(".")[0] in PACKAGES and m not in modules]
    assert not dangling, dangling


def test_quantizers_import_no_entropy_coding_library():
    for path in (REPO / "lic_core" / "quantizer").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] == "constriction"
                    or "entropy_coder" in n}, path.name
