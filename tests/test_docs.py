"""The documentation's Python blocks name what exists, and its links lead somewhere.

Each ```python block of README.md and docs/*.md is parsed; every module it imports must import,
every name it imports from a module must be there, and every `module.attr` it reads from an
imported module must exist (the blocks themselves run in minutes, not in the suite).
"""

import ast
import importlib
import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _blocks():
    for doc in DOCS:
        for i, code in enumerate(_BLOCK.findall(doc.read_text())):
            yield pytest.param(code, id=f"{doc.relative_to(ROOT)}#{i}")


def _attribute_reads(tree: ast.AST, modules: dict) -> list[tuple[str, str]]:
    """(alias, attr) for every `alias.attr[.more]` whose alias is an imported module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in modules:
                out.append((node.value.id, node.attr))
    return out


def _has(module, name: str) -> bool:
    """`module.name` exists: an attribute, or a submodule of a package."""
    if hasattr(module, name):
        return True
    return hasattr(module, "__path__") and importlib.util.find_spec(f"{module.__name__}.{name}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_python_blocks_name_what_exists(code):
    tree = ast.parse(code)
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                module = importlib.import_module(a.name)
                if a.asname:
                    modules[a.asname] = module
                else:
                    modules[a.name.split(".")[0]] = importlib.import_module(a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for a in node.names:
                assert _has(module, a.name), f"{node.module} has no {a.name}"
                value = getattr(module, a.name, None)
                if value is None:
                    value = importlib.import_module(f"{node.module}.{a.name}")
                if isinstance(value, type(importlib)):
                    modules[a.asname or a.name] = value
    for alias, attr in _attribute_reads(tree, modules):
        assert _has(modules[alias], attr), f"{modules[alias].__name__} has no {attr}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(doc):
    for target in _LINK.findall(doc.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
