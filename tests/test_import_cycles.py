"""No import cycle inside ``speechbrain_sslse``.

The graph has one node per module of the package and an edge ``a -> b`` for every
import of ``b`` that ``a`` runs when it is imported (module level, class bodies,
``if``/``try`` blocks). A second check adds the imports inside functions too (run
later, they cannot fail the import, but a circle through them is still two modules
that need each other). Reading the files with :mod:`ast` imports nothing, so the
check takes a fraction of a second.
"""

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = "speechbrain_sslse"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root=ROOT, package=PACKAGE):
    """The modules of a package and their files.

    Arguments
    ---------
    root : Path
        Folder of the package.
    package : str
        Its import name.

    Returns
    -------
    dict
        ``{dotted module name: path}``; a package is named by its ``__init__.py``.
    """
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


@functools.cache
def _parse(path):
    """The syntax tree of a file (parsed once per test session)."""
    return ast.parse(path.read_text(), filename=str(path))


def _import_time_nodes(tree, deferred=False):
    """The nodes of a module that run when it is imported (and, if ``deferred``, function bodies)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if not deferred and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        pending.extend(ast.iter_child_nodes(node))


def imported_modules(name, path, modules, deferred=False):
    """The package's modules that importing ``name`` imports.

    Arguments
    ---------
    name : str
        Dotted name of the importing module.
    path : Path
        Its file.
    modules : dict
        All modules of the package (see :func:`module_files`).
    deferred : bool
        Also count the imports inside functions.

    Returns
    -------
    set of str
    """
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    parts = name.split(".")
    ancestors = {".".join(parts[:k]) for k in range(1, len(parts))}
    targets = set()

    def add(module, explicit):
        # Importing a.b.c runs a and a.b first; a package being imported already is
        # not imported again, so the importer's own ancestors count only when named.
        pieces = module.split(".")
        for k in range(1, len(pieces) + 1):
            prefix = ".".join(pieces[:k])
            named = explicit and k == len(pieces)
            if prefix in modules and prefix != name and (prefix not in ancestors or named):
                targets.add(prefix)

    for node in _import_time_nodes(_parse(path), deferred):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_longest_module(alias.name, modules), explicit=False)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                stem = ".".join(anchor + ([node.module] if node.module else []))
            else:
                stem = node.module
            if stem not in modules:
                continue
            # "from pkg import sub" imports the module pkg.sub; "from pkg import name"
            # needs pkg's namespace, so it depends on pkg even when pkg is an ancestor.
            names = [alias.name for alias in node.names]
            submodules = [f"{stem}.{n}" for n in names if f"{stem}.{n}" in modules]
            add(stem, explicit=len(submodules) < len(names))
            for module in submodules:
                add(module, explicit=True)
    return targets


def _longest_module(dotted, modules):
    """The longest prefix of ``dotted`` that is a module of the package ("" if none)."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted


def find_cycle(graph):
    """One cycle of a directed graph, or None.

    Arguments
    ---------
    graph : dict
        ``{node: set of successors}``.

    Returns
    -------
    list or None
        The nodes of a cycle, its first node repeated at the end.

    Example
    -------
    >>> find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}})
    ['a', 'b', 'c', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state = {}  # node -> "open" (on the current path) or "done"
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = "open"
        while stack:
            successor = next(stack[-1], None)
            if successor is None:
                state[path.pop()] = "done"
                stack.pop()
            elif state.get(successor) == "open":
                return path[path.index(successor) :] + [successor]
            elif successor not in state:
                state[successor] = "open"
                path.append(successor)
                stack.append(iter(sorted(graph.get(successor, ()))))
    return None


def test_cycle_finder_on_a_graph_without_and_with_a_cycle():
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_import_graph_reads_relative_and_absolute_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import thing\n")
    (pkg / "sub" / "__init__.py").write_text("from .mod import thing\n")
    (pkg / "sub" / "mod.py").write_text(
        "import os\nfrom pkg import other\n\ndef later():\n    import pkg.late\n\nthing = 1\n"
    )
    (pkg / "late.py").write_text("from pkg.sub import mod\n")
    (pkg / "other.py").write_text("try:\n    from . import sub\nexcept ImportError:\n    pass\n")
    modules = module_files(pkg, "pkg")
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert graph == {
        "pkg": {"pkg.sub"},
        "pkg.sub": {"pkg.sub.mod"},
        "pkg.sub.mod": {"pkg.other"},
        "pkg.other": {"pkg.sub"},
        "pkg.late": {"pkg.sub", "pkg.sub.mod"},
    }
    assert find_cycle(graph) == ["pkg.sub", "pkg.sub.mod", "pkg.other", "pkg.sub"]
    assert imported_modules("pkg.sub.mod", pkg / "sub" / "mod.py", modules, deferred=True) == {
        "pkg.other",
        "pkg.late",
    }


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-function-imports"])
def test_no_import_cycle_in_the_package(deferred):
    modules = module_files()
    graph = {name: imported_modules(name, path, modules, deferred) for name, path in modules.items()}
    assert len(graph) > 20
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
