"""Code identity: a hash of the parsed source of what a family's training imports; its import
graph, what changes it and what does not, and its stability across copies of the project."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from sweeplab import code_identity
from sweeplab.code_identity import SourceTree
from sweeplab.families import discover

SRC = Path(code_identity.__file__).resolve().parent


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A package ``pkg`` under ``root`` with these modules (relative path -> source)."""
    for relative, source in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / "pkg"


PACKAGE = {
    "__init__.py": "",
    "model.py": textwrap.dedent('''
        """A model."""
        import math

        from pkg.util import helper


        def forward(x):
            """Doubles."""
            return helper(x) * 2  # scaled
        '''),
    "util.py": "def helper(x):\n    return x + 1\n",
    "lazy.py": "def f():\n    from .deep import inner\n    return inner\n",
    "deep/__init__.py": "",
    "deep/inner.py": "VALUE = 1\n",
    "dynamic.py": "import importlib\nMOD = importlib.import_module('pkg.util')\n",
    "unrelated.py": "X = 3\n",
}


def tree_of(folder: Path) -> SourceTree:
    return SourceTree(folder, "pkg")


def test_the_import_graph_follows_every_kind_of_import_inside_the_package(tmp_path):
    tree = tree_of(write_package(tmp_path, PACKAGE))
    assert tree.closure(["pkg.model"]) == ["pkg.model", "pkg.util"], "math is outside the package"
    assert tree.closure(["pkg.lazy"]) == ["pkg.deep.inner", "pkg.lazy"], "relative, inside a function"
    assert tree.closure(["pkg.dynamic"]) == ["pkg.dynamic", "pkg.util"], "import_module of a constant name"
    assert tree.package_modules("pkg.deep") == ["pkg.deep", "pkg.deep.inner"]
    assert tree.file("pkg.absent") is None and tree.file("other.model") is None


@pytest.mark.parametrize(("edit", "same"), [
    (lambda s: s.replace("# scaled", "# twice the helper"), True),  # a comment
    (lambda s: s.replace('"""Doubles."""', '"""Twice the helper."""'), True),  # a docstring
    (lambda s: s.replace('"""A model."""\n', ""), True),  # a module docstring removed
    (lambda s: s.replace("helper(x) * 2", "helper( x )*2"), True),  # reformatting
    (lambda s: s.replace("\n\n\ndef", "\n\ndef"), True),  # blank lines
    (lambda s: s.replace("* 2", "* 3"), False),  # a number
    (lambda s: s.replace("helper(x)", "helper(-x)"), False),  # an expression
    (lambda s: s.replace("import math\n", ""), False),  # an import
])
def test_only_a_change_of_the_parsed_code_changes_the_identity(tmp_path, edit, same):
    before = tree_of(write_package(tmp_path / "a", PACKAGE)).identity(["pkg.model"])
    after = tree_of(write_package(tmp_path / "b", {**PACKAGE, "model.py": edit(PACKAGE["model.py"])}))
    identity = after.identity(["pkg.model"])
    assert (identity.digest == before.digest) is same
    assert identity.changes_since(before.as_dict()) == ([] if same else ["pkg/model.py"])


def test_an_imported_module_counts_and_an_unrelated_one_does_not(tmp_path):
    before = tree_of(write_package(tmp_path / "a", PACKAGE)).identity(["pkg.model"])
    unrelated = tree_of(write_package(tmp_path / "b", {**PACKAGE, "unrelated.py": "X = 4\n"}))
    assert unrelated.identity(["pkg.model"]).digest == before.digest
    helper = tree_of(write_package(tmp_path / "c", {**PACKAGE, "util.py": "def helper(x):\n    return x - 1\n"}))
    assert helper.identity(["pkg.model"]).changes_since(before.as_dict()) == ["pkg/util.py"]


def test_library_versions_are_part_of_the_identity(tmp_path, monkeypatch):
    tree = tree_of(write_package(tmp_path, PACKAGE))
    before = tree.identity(["pkg.model"])
    monkeypatch.setattr(code_identity, "library_versions", lambda: {**before.versions, "torch": "9.9.9"})
    after = tree.identity(["pkg.model"])
    assert after.digest != before.digest
    assert after.changes_since(before.as_dict()) == [f"torch {before.versions['torch']} -> 9.9.9"]


def test_a_file_that_does_not_parse_is_identified_by_its_bytes(tmp_path):
    tree = tree_of(write_package(tmp_path, {**PACKAGE, "util.py": "def helper(x:\n"}))
    assert tree.closure(["pkg.model"]) == ["pkg.model", "pkg.util"]
    assert len(tree.identity(["pkg.model"]).modules["pkg.util"]) == 64


def copy_source(folder: Path) -> SourceTree:
    """A copy of the project's package in another folder, as a fresh clone would hold it."""
    shutil.copytree(SRC, folder / "sweeplab", ignore=shutil.ignore_patterns("__pycache__"))
    return SourceTree(folder / "sweeplab")


def family_identities(tree: SourceTree | None = None) -> dict[str, str]:
    return {name: family.code_identity(tree).digest for name, family in discover().items()}


def test_every_family_has_the_same_identity_in_a_copy_in_another_folder(tmp_path):
    running = family_identities()
    assert family_identities(copy_source(tmp_path / "clone")) == running
    assert len(set(running.values())) == len(running), "each family's code is its own"


def test_a_family_s_modules_come_from_its_package_and_the_loop(tmp_path):
    for name, family in discover().items():
        modules = set(family.code_identity().modules)
        assert "sweeplab.training.loop" in modules and "sweeplab.sweeps" not in modules
        assert f"sweeplab.pipelines.{name}.pipeline" in modules or any(
            m.startswith("sweeplab.pipelines.") and m.endswith(".pipeline") for m in modules)


def edit(tree: SourceTree, module: str, old: str, new: str) -> None:
    path = tree.file(module)
    text = path.read_text()
    assert old in text, f"{module} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


def test_an_edit_of_the_ae_model_changes_only_the_families_that_import_it(tmp_path):
    running = family_identities()
    tree = copy_source(tmp_path)
    edit(tree, "sweeplab.pipelines.ae.model", "nn.GELU()", "nn.ReLU()")
    changed = {name for name, digest in family_identities(tree).items() if digest != running[name]}
    importers = {name for name, family in discover().items()
                 if "sweeplab.pipelines.ae.model" in family.code_identity().modules}
    assert changed == importers == {"ae"}


def test_a_comment_or_docstring_anywhere_changes_no_family(tmp_path):
    running = family_identities()
    tree = copy_source(tmp_path)
    edit(tree, "sweeplab.training.loop", '"""Train one variant', '"""Train one variant (reworded)')
    path = tree.file("sweeplab.pipelines.ae.model")
    path.write_text(path.read_text() + "\n# a note\n")
    assert family_identities(tree) == running


def test_an_edit_of_the_training_loop_changes_every_family(tmp_path):
    running = family_identities()
    tree = copy_source(tmp_path)
    edit(tree, "sweeplab.training.loop", "optimizer.zero_grad(set_to_none=True)", "optimizer.zero_grad()")
    after = family_identities(tree)
    assert all(after[name] != running[name] for name in running)
    assert {tuple(f.code_identity(tree).changes_since(f.code_identity().as_dict())) for f in discover().values()} \
        == {("sweeplab/training/loop.py",)}
