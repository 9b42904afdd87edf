"""The project's import graph keeps its shape: pure packages stay pure, apps depend one way, no circles.

Every module of annotations/, segmentation/ and emportal/ (migrations aside: they are frozen
history) is parsed with `ast`; nothing is imported. An import statement is an edge from its
module to the module it names: ``import a.b.c`` names a.b.c, ``from a.b import c`` names a.b and,
where c is a module of ours, a.b.c too. Parent packages, which Python runs first, are not edges:
every submodule would otherwise form a circle with the re-exports of its package's __init__.

The dependency rules (a-d) count every import, also those inside functions and under
``if TYPE_CHECKING:``, since each is a dependency all the same. The circle rule (e) counts only
imports that run when the module is loaded (module level and class bodies, not functions nor
TYPE_CHECKING blocks): those are the circles that break an import order.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("annotations", "segmentation", "emportal")
PURE = ("segmentation.core", "annotations.imaging")
#: The web stack the pure packages must not touch (top-level distribution names).
WEB = ("django", "rest_framework", "drf_spectacular", "channels", "channels_redis", "daphne", "celery", "kombu")
#: What the jobs app may read of annotations: role checks and the rows they need.
JOBS_MAY_IMPORT = ("annotations.access", "annotations.models")


@dataclass(frozen=True)
class Edge:
    """One import: `source` (a module of ours) names `target` at `line`."""

    source: str
    target: str
    line: int
    at_load: bool  # runs when `source` is loaded (not inside a function, not TYPE_CHECKING only)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules_of(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """{dotted module name: file} of every module under the given top-level packages, migrations aside."""
    mods: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(body: list[ast.stmt], *, at_load: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under `body`, with whether it runs when the module loads."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, at_load
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _imports(node.body, at_load=False)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.body, at_load=False)
            yield from _imports(node.orelse, at_load=at_load)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    stmts += [s for c in children if isinstance(c, (ast.ExceptHandler, ast.match_case))
                              for s in c.body]
                    yield from _imports(stmts, at_load=at_load)


def edges_of(mods: dict[str, Path]) -> list[Edge]:
    """Every import edge of the given modules (targets outside them keep their full dotted name)."""
    edges: list[Edge] = []
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, at_load in _imports(tree.body, at_load=True):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in mods]
            edges += [Edge(name, target, node.lineno, at_load) for target in targets if target != "__future__"]
    return edges


def resolve(target: str, mods: dict[str, Path]) -> str | None:
    """The module of ours that `target` names (its longest known prefix), or None for another distribution."""
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def load_cycles(mods: dict[str, Path], edges: list[Edge]) -> list[str]:
    """Each circle of imports that run at load time, with the edges that close it."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for edge in edges:
        target = resolve(edge.target, mods)
        if edge.at_load and target is not None and target != edge.source:
            graph[edge.source].add(target)
    out = []
    for component in cycles(graph):
        members = set(component)
        inside = sorted({str(e) for e in edges if e.at_load and e.source in members
                         and resolve(e.target, mods) in members and resolve(e.target, mods) != e.source})
        out.append(" | ".join(component) + ":\n      " + "\n      ".join(inside))
    return out


def _report(edges: Iterable[Edge]) -> str:
    return "\n  " + "\n  ".join(sorted(str(e) for e in edges))


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], list[Edge]]:
    mods = modules_of(ROOT, PACKAGES)
    return mods, edges_of(mods)


def test_the_pure_packages_import_no_web_stack_and_no_app(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, edges = graph
    bad = [e for e in edges if _within(e.source, *PURE)
           and (_within(e.target, *WEB) or (_within(e.target, *PACKAGES) and not _within(e.target, *PURE)))]
    assert not bad, f"segmentation.core and annotations.imaging must stay free of Django and the apps:{_report(bad)}"


def test_the_jobs_app_knows_no_kinds_and_only_role_checks_of_annotations(
        graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, edges = graph
    bad = [e for e in edges if _within(e.source, "emportal.jobs")
           and (_within(e.target, "segmentation")
                or (_within(e.target, "annotations") and resolve(e.target, mods) not in JOBS_MAY_IMPORT))]
    assert not bad, f"emportal.jobs imports beyond {JOBS_MAY_IMPORT}:{_report(bad)}"


def test_annotations_uses_only_the_pure_core_of_segmentation(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, edges = graph
    bad = [e for e in edges if _within(e.source, "annotations")
           and _within(e.target, "segmentation") and not _within(e.target, "segmentation.core")]
    assert not bad, f"annotations imports segmentation beyond segmentation.core:{_report(bad)}"


def test_annotations_never_imports_the_reviews_app(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, edges = graph
    bad = [e for e in edges if _within(e.source, "annotations") and not _within(e.source, "annotations.reviews")
           and _within(e.target, "annotations.reviews")]
    assert not bad, ("reviews depends on annotations, never the other way round (annotations announces audit "
                     f"events through annotations.signals):{_report(bad)}")


def test_segmentation_features_depend_one_way(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    """The model loop knows neither cells nor reports; cells builds on the model loop (its latest
    prediction); reports reads layers, not either feature."""
    mods, edges = graph
    rules = {"segmentation.modelloop": ("segmentation.cells", "segmentation.reports"),
             "segmentation.cells": ("segmentation.reports",),
             "segmentation.reports": ("segmentation.modelloop", "segmentation.cells")}
    bad = [e for e in edges for source, banned in rules.items()
           if _within(e.source, source) and _within(e.target, *banned)]
    assert not bad, f"segmentation's features import each other the wrong way:{_report(bad)}"


def test_models_in_a_segmentation_module_name_means_django_models(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    """The ML models' code lives in segmentation.modelloop; a name with "models" is the Django models package."""
    mods, _ = graph
    bad = sorted(m for m in mods if _within(m, "segmentation") and not _within(m, "segmentation.models")
                 and any("models" in part for part in m.split(".")))
    assert not bad, f"module names that say models but hold no Django models: {bad}"


#: How code bumps a label layer's version: an ORM increment of the field (F("version") + n), a
#: LabelLayer update that sets it, or SQL that sets it. (A stroke's version is a value it is given.)
LAYER_VERSION_WRITES = re.compile(
    r"""version\s*=\s*F\(\s*["']version|LabelLayer\.objects\.[\w().=, ]*update\([^)]*\bversion\s*="""
    r"|\bSET\s+version\s*=", re.IGNORECASE)
LAYER_STORAGE_OWNER = "annotations.layers"


def layer_version_writes(mods: dict[str, Path]) -> list[str]:
    """Each line outside annotations.layers that writes a layer's version (module:line)."""
    found = []
    for name, path in mods.items():
        text = path.read_text()
        if name != LAYER_STORAGE_OWNER:
            found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in LAYER_VERSION_WRITES.finditer(text)]
    return found


def test_only_the_layer_module_bumps_a_layer_version(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    """Label tiles are cached by layer version: one function (annotations.layers.layer_bump) bumps it."""
    mods, _ = graph
    found = layer_version_writes(mods)
    assert not found, f"a layer's version is written outside {LAYER_STORAGE_OWNER}: {found}"
    assert LAYER_VERSION_WRITES.search(mods[LAYER_STORAGE_OWNER].read_text())  # the pattern sees the real bump


def test_the_version_write_pattern_sees_every_layer_bump_and_not_a_strokes_version(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "orm.py").write_text('LabelLayer.objects.filter(pk=1).update(\n    version=F("version") + 1)\n'
                                'layers.filter(pk=1).update(max_value=2, version=F("version") + 1)\n'
                                'LabelLayer.objects.filter(pk=1).update(version=7)\n'
                                'Stroke.objects.filter(pk=1).update(active=True, version=version)\n')
    (app / "sql.py").write_text('SQL = "UPDATE layer SET version = version + %s WHERE id = %s"\n')
    assert layer_version_writes(modules_of(tmp_path, ["app"])) == ["app.orm:1", "app.orm:3", "app.orm:4", "app.sql:1"]


def test_no_module_level_import_circles(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, edges = graph
    found = load_cycles(mods, edges)
    assert not found, "import circles between files at load time:\n  " + "\n  ".join(found)


def test_the_graph_is_read_from_the_sources(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    """The rules above see real edges (a parser finding nothing would pass them all)."""
    mods, edges = graph
    assert {"annotations.strokes", "segmentation.core", "emportal.jobs.models"} <= set(mods)
    found = {(e.source, e.target, e.at_load) for e in edges}
    assert ("annotations.strokes", "annotations.models", True) in found
    assert ("annotations.reviews.apps", "annotations.signals", False) in found  # inside ready()
    assert len(edges) > 500


def test_the_checks_find_a_circle_and_a_lazy_import_is_not_one(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.a import A\n")
    (pkg / "a.py").write_text("from __future__ import annotations\nfrom . import b\nA = 1\n")
    (pkg / "b.py").write_text("try:\n    from pkg.sub import c\nexcept ImportError:\n    pass\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\nimport pkg.a\n")
    (pkg / "d.py").write_text("def f():\n    import pkg.sub.c\n")
    mods = modules_of(tmp_path, ["pkg"])
    edges = edges_of(mods)
    assert {str(e) for e in edges if e.source == "pkg.a"} == {"pkg.a:2 -> pkg", "pkg.a:2 -> pkg.b"}
    found = load_cycles(mods, edges)
    assert len(found) == 1 and found[0].startswith("pkg | pkg.a | pkg.b | pkg.sub.c:"), found
    assert "pkg.d" not in found[0]  # TYPE_CHECKING and function-level imports run no circle



def _unit(module: str, mods: dict[str, Path]) -> str:
    """What may share private names: a sub-package of an app (annotations.imaging, segmentation.core)
    is one unit; a module directly in an app (segmentation.volume_jobs) is a unit of its own."""
    parts = module.split(".")
    if len(parts) >= 3 or (len(parts) == 2 and mods[module].name == "__init__.py"):
        return ".".join(parts[:2])
    return module


def private_uses(mods: dict[str, Path]) -> list[str]:
    """Each private name (`_x`) of a module of ours used from another unit: imported by name, or
    read as an attribute of an imported module."""
    found = []
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        bound: dict[str, str] = {}  # local name -> module of ours it is bound to
        for node, _ in _imports(tree.body, at_load=True):
            if isinstance(node, ast.Import):
                bound.update({a.asname: a.name for a in node.names if a.asname and a.name in mods})
                continue
            base = name.split(".") if is_package else name.split(".")[:-1]
            module = (".".join(base[:len(base) - (node.level - 1)] + ([node.module] if node.module else []))
                      if node.level else node.module or "")
            for alias in node.names:
                if f"{module}.{alias.name}" in mods:
                    bound[alias.asname or alias.name] = f"{module}.{alias.name}"
                elif (alias.name.startswith("_") and not alias.name.startswith("__") and module in mods
                      and _unit(module, mods) != _unit(name, mods)):
                    found.append(f"{name}:{node.lineno} imports {module}.{alias.name}")
        for attr in ast.walk(tree):
            if (isinstance(attr, ast.Attribute) and isinstance(attr.value, ast.Name) and attr.value.id in bound
                    and attr.attr.startswith("_") and not attr.attr.startswith("__")
                    and _unit(bound[attr.value.id], mods) != _unit(name, mods)):
                found.append(f"{name}:{attr.lineno} reads {bound[attr.value.id]}.{attr.attr}")
    return sorted(found)


def test_no_module_uses_another_units_private_names(graph: tuple[dict[str, Path], list[Edge]]) -> None:
    mods, _ = graph
    found = private_uses(mods)
    assert not found, "private names (_x) used outside their module's unit; make them public:\n  " + "\n  ".join(found)


def test_private_names_may_be_shared_inside_a_sub_package_only(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "sub").mkdir(parents=True)
    for init in (app / "__init__.py", app / "sub" / "__init__.py"):
        init.write_text("")
    (app / "sub" / "base.py").write_text("def _helper(): ...\n")
    (app / "sub" / "reader.py").write_text("from app.sub.base import _helper\n")
    (app / "feature.py").write_text("def _step(): ...\n")
    (app / "other.py").write_text("from app.feature import _step\nfrom app.sub import base as b\nb._helper()\n")
    found = private_uses(modules_of(tmp_path, ["app"]))
    assert found == ["app.other:1 imports app.feature._step", "app.other:3 reads app.sub.base._helper"]
