"""Code identity: which code made a result, as a hash of the parsed source of what it imports.

A result belongs to the code that made it. A training run's numbers depend on its family's
package, the data code its inputs come from, the training loop and the shared modules these
import, and on the versions of torch and numpy. :class:`SourceTree` follows the imports inside
the project from a set of root modules (statically, from each module's syntax tree: every
``import`` and ``from ... import`` anywhere in the file, and ``importlib.import_module`` of a
constant name) and hashes each module's parsed code: ``ast.dump`` of its tree without
docstrings, so a comment, a docstring or reformatting gives the same identity, and a changed
expression does not. Module names, never file paths, go into the hash: a clone in another
folder or on another machine has the same identity.

What it does not cover: code outside the project (other packages, beyond torch's and
numpy's versions), code reached only by a computed import name, and data that a dataset
reads at run time from a file the project did not fingerprint.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import torch

PACKAGE = __name__.split(".")[0]
PACKAGE_ROOT = Path(__file__).resolve().parent  # the folder of the package's __init__.py
SHORT = 12  # hex digits of an identity as records and folder names show it


def library_versions() -> dict[str, str]:
    """What outside the project can change a run's numbers, and the Python whose syntax trees
    are hashed (``ast.dump`` differs between Python minor versions)."""
    return {"torch": str(torch.__version__), "numpy": numpy.__version__,
            "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


@dataclass(frozen=True)
class CodeIdentity:
    """The identity of some code: each module's hash, and the libraries' versions."""

    modules: Mapping[str, str]  # module name -> sha256 of its parsed code
    versions: Mapping[str, str]

    @functools.cached_property
    def digest(self) -> str:
        canonical = json.dumps({"modules": dict(self.modules), "versions": dict(self.versions)}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:SHORT]

    def as_dict(self) -> dict[str, Any]:
        return {"identity": self.digest, "modules": dict(self.modules), "versions": dict(self.versions)}

    def changes_since(self, earlier: Mapping[str, Any] | None) -> list[str]:
        """What differs from an earlier identity's ``as_dict()``: the files (``sweeplab/...py``)
        changed, added or removed, then the libraries whose versions changed."""
        if not earlier:
            return []
        before, versions = dict(earlier.get("modules") or {}), dict(earlier.get("versions") or {})
        changed = sorted(m for m in set(before) | set(self.modules) if before.get(m) != self.modules.get(m))
        libraries = sorted(k for k in set(versions) | set(self.versions) if versions.get(k) != self.versions.get(k))
        return [module_file(m) for m in changed] + [f"{k} {versions.get(k)} -> {self.versions.get(k)}"
                                                     for k in libraries]


def module_file(module: str) -> str:
    """A module's file as a person finds it: ``sweeplab/pipelines/ae/model.py``."""
    return module.replace(".", "/") + ".py"


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:]
    return tree


class SourceTree:
    """The project's modules as files under ``root`` (the package's folder): each module is
    read, parsed and hashed once."""

    def __init__(self, root: Path = PACKAGE_ROOT, package: str = PACKAGE):
        self.root, self.package = Path(root), package

    def file(self, module: str) -> Path | None:
        """The file of a module of the package, or None when there is none."""
        if module != self.package and not module.startswith(f"{self.package}."):
            return None
        parts = module.split(".")[1:]
        candidates = [self.root.joinpath(*parts[:-1], f"{parts[-1]}.py")] if parts else []
        return next((p for p in [*candidates, self.root.joinpath(*parts, "__init__.py")] if p.is_file()), None)

    def package_modules(self, package: str) -> list[str]:
        """Every module of a subpackage, its ``__init__`` included."""
        folder = self.root.joinpath(*package.split(".")[1:])
        return sorted(package + "".join(f".{p}" for p in path.relative_to(folder).with_suffix("").parts)
                      .removesuffix(".__init__") for path in folder.rglob("*.py"))

    @functools.cache  # noqa: B019 - a tree lives as long as the process's code does
    def parsed(self, module: str) -> tuple[str, tuple[str, ...]]:
        """(sha256 of the module's code without docstrings, the project modules it imports)."""
        path = self.file(module)
        source = path.read_bytes()
        try:
            tree = ast.parse(source, filename=str(path))
        except (SyntaxError, ValueError):  # the import fails anyway; its bytes still identify it
            return hashlib.sha256(source).hexdigest(), ()
        imports = tuple(sorted(self._imports(module, path.name == "__init__.py", tree)))
        return hashlib.sha256(ast.dump(_without_docstrings(tree)).encode()).hexdigest(), imports

    def _imports(self, module: str, is_package: bool, tree: ast.AST) -> set[str]:
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:  # a submodule if there is one, else a name in the module
                    found.add(f"{base}.{alias.name}" if self.file(f"{base}.{alias.name}") else base)
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) \
                    == "import_module" and node.args and isinstance(node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
        return {name for name in found if self.file(name) is not None and name != module}

    def closure(self, roots: Iterable[str]) -> list[str]:
        """The roots and every project module they import, directly or not."""
        seen: set[str] = set()
        todo = [r for r in roots if self.file(r) is not None]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(self.parsed(module)[1])
        return sorted(seen)

    def identity(self, roots: Iterable[str]) -> CodeIdentity:
        return CodeIdentity({m: self.parsed(m)[0] for m in self.closure(roots)}, library_versions())


@functools.cache
def installed() -> SourceTree:
    """The tree of the code this process runs."""
    return SourceTree()


@functools.cache
def of_modules(roots: tuple[str, ...]) -> CodeIdentity:
    """The identity of what these modules of the running code import; computed once a process."""
    return installed().identity(roots)


@functools.cache
def source_version() -> str:
    """The running code's git commit (``-dirty`` with uncommitted changes), or the package's
    version outside a git checkout; asked of git once a process."""
    from sweeplab.provenance import code_version  # noqa: PLC0415 - provenance imports the package

    return code_version(PACKAGE_ROOT)["code_version"]
