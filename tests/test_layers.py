"""The house as DESIGN.md draws it: each package imports only the floors below it, and no module imports itself
back through others (an import circle breaks as soon as someone imports the wrong module first)."""

from __future__ import annotations

import ast
from pathlib import Path

NODE = Path(__file__).resolve().parent.parent / "node"

# Floor of each top-level package or module of ``node``; a package may import only packages on lower floors.
FLOORS: dict[str, int] = {
    "errors": 0,
    "json_text": 1,
    "config": 1,
    "ld": 1,
    "store": 1,
    "trust": 2,
    "net": 3,
    "sparql": 3,
    "catalog": 4,
    "credentials": 5,
    "federation": 5,
    "oai": 5,
    "conformance": 6,
    "web": 6,
    "app": 7,
    "bootstrap": 7,
    "backup": 8,
    "demo": 8,
    "cli": 9,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in NODE.rglob("*.py"):
        parts = path.relative_to(NODE.parent).with_suffix("").parts
        if "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ``node`` that ``name`` imports (``from node.x import y`` counts ``node.x.y`` when it is one)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("node."))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            if not module.startswith("node."):
                continue
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in known)
    return {module for module in found if module in known and module != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_package_has_a_floor() -> None:
    tops = {name.split(".")[1] for name in _modules() if name != "node"}
    assert tops <= set(FLOORS), f"give these a floor in FLOORS: {sorted(tops - set(FLOORS))}"


def test_packages_import_only_lower_floors() -> None:
    upward = []
    for name, imported in _graph().items():
        if name == "node":
            continue
        source = name.split(".")[1]
        for target in imported:
            top = target.split(".")[1]
            if top != source and FLOORS[top] >= FLOORS[source]:
                upward.append(f"{name} imports {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circles() -> None:
    graph = _graph()
    circles = []
    for start in graph:
        stack = [(start, (start,))]
        while stack:
            current, path = stack.pop()
            for nxt in graph[current]:
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in path and nxt > start:
                    stack.append((nxt, (*path, nxt)))
    assert not circles, "\n".join(sorted(circles))
