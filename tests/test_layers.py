"""The packages form layers and imports only go down: core → platform → surfaces.

Every module under src/openenrich is parsed and each `openenrich.…` import in it is mapped
to the top-level package (or module) it reaches. Every import counts: at the top of a
module, inside a function, and under `if TYPE_CHECKING:` (a type still depends on its
module). The layers are written down in docs/design.md ("Layers"); a new package goes in
one of them here and there.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from pathlib import Path

import openenrich

SOURCE = Path(openenrich.__file__).parent
DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"

# Packages that depend on nothing above them. `__init__` is the package itself
# (`from openenrich import __version__`).
CORE = frozenset(
    {
        "__init__",
        "config",
        "errors",
        "ids",
        "json_input",
        "json_output",
        "logs",
        "fsync",
        "looping",
        "nodes",
        "secretbox",
        "db",
        "http",
        "tenancy",
    }
)
# In this order: each imports only core packages and the platform packages before it.
PLATFORM = (
    "web",
    "email",
    "lake",
    "billing",
    "jobs",
    "component",
    "webhooks",
    "llm",
    "enrichers",
)
# The API surfaces: they import core and platform, never one another.
SURFACES = frozenset({"streams", "verify", "leads", "entities", "console"})
# It speaks the public HTTP API and imports nothing of the server but its version; only
# the packages that put things together use it (the CLI's client commands).
CLIENT = frozenset({"client"})
# They put the server together, so they may import anything.
ASSEMBLERS = frozenset({"app", "background", "components", "cli", "client_cli", "__main__"})
# Modules inside a lower package that assemble too, and why.
ASSEMBLING_MODULES = {
    "openenrich.db.migrations.env": "Alembic's entry point: it needs every table "
    "(components.metadata) to compare and autogenerate",
}


@dataclass(frozen=True)
class Import:
    source: str  # top-level package (or module) of the importing module
    target: str  # top-level package (or module) imported
    where: str  # path:line


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((root.name, *parts))


def top_level(root: Path, dotted: str) -> str | None:
    """`openenrich.llm.gateway` → `llm`; `openenrich.__version__` → `__init__`."""
    parts = dotted.split(".")
    if parts[0] != root.name:
        return None
    if len(parts) == 1:
        return "__init__"
    name = parts[1]
    if (root / name).is_dir() or (root / f"{name}.py").is_file():
        return name
    return "__init__"


def imports(root: Path) -> list[Import]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(root, path)
        if module in ASSEMBLING_MODULES:
            continue
        relative = path.relative_to(root)
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from openenrich import background` imports the module `background`.
                names = [base] if base != root.name else [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = top_level(root, name)
                if target is not None and target != source:
                    found.append(Import(source, target, f"{path}:{node.lineno}"))
    return found


def layer(package: str) -> tuple[int, int]:
    """(layer, position): 0 core, 1 platform (position in PLATFORM), 2 surfaces, 3 top."""
    if package in CORE:
        return (0, 0)
    if package in PLATFORM:
        return (1, PLATFORM.index(package))
    if package in SURFACES:
        return (2, 0)
    assert package in ASSEMBLERS | CLIENT, f"{package} is in no layer"
    return (3, 0)


def wrong_way(found: list[Import]) -> list[str]:
    problems = []
    for edge in found:
        if edge.source in CLIENT and edge.target != "__init__":
            problems.append(f"{edge.where}: {edge.source} imports {edge.target}")
            continue
        if edge.target in CLIENT and edge.source not in ASSEMBLERS:
            problems.append(f"{edge.where}: {edge.source} imports {edge.target}")
            continue
        if edge.source in ASSEMBLERS or edge.source in CLIENT:
            continue
        (source_layer, source_position) = layer(edge.source)
        (target_layer, target_position) = layer(edge.target)
        if target_layer < source_layer:
            continue
        if target_layer == source_layer == 0:
            continue  # core packages: only cycles are wrong, checked apart
        if target_layer == source_layer == 1 and target_position < source_position:
            continue
        problems.append(f"{edge.where}: {edge.source} imports {edge.target}")
    return problems


def cycle(found: list[Import]) -> list[str]:
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in found:
        graph[edge.source].add(edge.target)
    try:
        TopologicalSorter(graph).prepare()  # an importer comes after what it imports
    except CycleError as error:
        ring: list[str] = error.args[1]  # each imported by the next; the last is the first
        return [
            f"{edge.where}: {edge.source} imports {edge.target}"
            for imported, importer in pairwise(ring)
            for edge in found
            if (edge.source, edge.target) == (importer, imported)
        ]
    return []


def packages(root: Path) -> set[str]:
    return {
        path.stem if path.is_file() else path.name
        for path in root.iterdir()
        if (path.is_file() and path.suffix == ".py") or (path / "__init__.py").is_file()
    }


def test_every_package_has_one_layer() -> None:
    declared = [*CORE, *PLATFORM, *SURFACES, *ASSEMBLERS, *CLIENT]
    assert len(declared) == len(set(declared))
    undeclared = packages(SOURCE) - set(declared)
    assert not undeclared, f"put {sorted(undeclared)} in a layer (here and in docs/design.md)"


def test_the_design_page_shows_these_layers() -> None:
    table = DESIGN.read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = {
        row: re.findall(r"`([^`]+)`", packages)
        for row, packages in re.findall(r"^\| ([a-z, ]+) \| (.+?) \| .+ \|$", table, re.M)
        if row != "layer"
    }
    assert rows.pop("platform, in order", None) == list(PLATFORM)
    assert {row: set(names) for row, names in rows.items()} == {
        "top": ASSEMBLERS,
        "client": CLIENT,
        "surfaces": SURFACES,
        "core": CORE - {"__init__"},
    }


def test_no_cycle_between_packages() -> None:
    assert cycle(imports(SOURCE)) == []


def test_imports_go_down_the_layers() -> None:
    found = imports(SOURCE)
    assert len({edge.source for edge in found}) > 10, "the walk found the imports"
    assert wrong_way(found) == []


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    root = tmp_path / "openenrich"
    files = {
        "__init__.py": "",
        "config.py": "from openenrich import __version__\n",
        "web/__init__.py": "",
        "web/scrape.py": "from openenrich.llm.gateway import Gateway\n",
        "llm/__init__.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from openenrich.web import guard\n",
        "verify/__init__.py": "def f():\n    import openenrich.streams.service\n",
        "streams/__init__.py": "",
        "streams/service.py": "from . import __name__\nfrom ..verify import f\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    found = imports(root)
    assert sorted(wrong_way(found)) == [
        f"{root}/streams/service.py:2: streams imports verify",
        f"{root}/verify/__init__.py:2: verify imports streams",
        f"{root}/web/scrape.py:1: web imports llm",
    ]
    assert len(cycle(found)) == 2


def test_importing_web_loads_nothing_from_llm() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pkgutil, importlib, openenrich.web as web\n"
            "for m in pkgutil.iter_modules(web.__path__):\n"
            "    importlib.import_module(f'openenrich.web.{m.name}')\n"
            "print(*sys.modules)",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE.parent), *sys.path])},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "openenrich.web.fetch" in loaded
    assert [
        name for name in loaded if name.startswith(("openenrich.llm", "openenrich.enrichers"))
    ] == []
