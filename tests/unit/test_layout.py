"""The code's layout rules (docs/layout.md), checked on the source.

- Modules import this collection's ``module_utils`` only: a module runs on a target host as one AnsiballZ
  payload, which carries module_utils and nothing else of the collection.
- ``module_utils`` imports only ``module_utils``; controller-only code (``plugin_utils``) may import it, not
  the reverse.
- No import cycles among them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
PREFIX = "ansible_collections.toil.cluster.plugins."


def own_imports(path):
    """The collection's modules ``path`` imports, as ``kind.name`` (``module_utils.nodes``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            package = node.module[len(PREFIX) :]
            if "." in package:
                found.add(package)
            else:  # from ...plugins.module_utils import nodes
                found.update(f"{package}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name[len(PREFIX) :] for alias in node.names if alias.name.startswith(PREFIX))
    return found


def sources(kind):
    return sorted(p for p in (PLUGINS / kind).glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", sources("modules"), ids=lambda p: p.name)
def test_modules_import_module_utils_only(path):
    assert {name for name in own_imports(path) if not name.startswith("module_utils.")} == set()


@pytest.mark.parametrize("path", sources("module_utils"), ids=lambda p: p.name)
def test_module_utils_import_module_utils_only(path):
    assert {name for name in own_imports(path) if not name.startswith("module_utils.")} == set()


def test_no_import_cycles():
    graph = {f"{kind}.{p.stem}": own_imports(p) for kind in ("module_utils", "plugin_utils") for p in sources(kind)}
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        path.append(name)
        for imported in sorted(graph.get(name, ())):
            visit(imported)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_cycle_check_sees_cycles(tmp_path, monkeypatch):
    # The check itself: two module_utils importing each other are reported.
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / "module_utils").mkdir(exist_ok=True)
        (tmp_path / "module_utils" / f"{name}.py").write_text(f"from {PREFIX}module_utils.{other} import x\n")
    (tmp_path / "plugin_utils").mkdir()
    monkeypatch.setattr(__import__(__name__), "PLUGINS", tmp_path)
    with pytest.raises(AssertionError, match="import cycle: module_utils.a -> module_utils.b -> module_utils.a"):
        test_no_import_cycles()
