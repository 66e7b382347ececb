"""The tests keep their layout: folders documented, unique names, one copy of each helper, no test importing another."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

from _support import ROOT

TESTS = ROOT / "tests"
README = (TESTS / "README.md").read_text()

# Names _support defines once for every folder: a test module must import them, not define its own.
SHARED = {"until", "timeout", "TIMEOUT_SCALE", "free_port", "echo_server", "start_echo_server"}


def modules() -> list[Path]:
    """Every test module under tests/ (not the npm packages' own files)."""
    return sorted(p for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts)


def test_every_folder_and_top_level_test_file_is_described_in_tests_readme() -> None:
    folders = {p.parent.relative_to(TESTS).parts[0] for p in modules() if p.parent != TESTS}
    documented = set(re.findall(r"^\| `(\w+)/` \|", README, re.M))
    assert folders == documented, "tests/README.md's table must list exactly the folders that hold tests"
    top_level = {p.name for p in modules() if p.parent == TESTS}
    assert top_level, "the layout test itself is at the top level"
    missing = sorted(name for name in top_level if f"`{name}`" not in README)
    assert missing == [], f"top-level test files not described in tests/README.md (or move them to a folder): {missing}"


def test_test_file_names_are_unique_across_tests_and_plugins() -> None:
    # No __init__.py: pytest imports a test file by its base name, so two of one name break the run.
    paths = modules() + sorted(ROOT.glob("plugins/*/tests/test_*.py"))
    counts = Counter(p.name for p in paths)
    assert [name for name, n in counts.items() if n > 1] == []


def test_no_test_module_defines_its_own_copy_of_a_shared_helper() -> None:
    copies = []
    for path in [*modules(), TESTS / "conftest.py"]:
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if path.name == "conftest.py" and names == ["start_echo_server"]:
                continue  # the fixture itself, built on _support.echo_server
            copies += [f"{path.relative_to(TESTS)}: {name}" for name in names if name in SHARED]
    assert copies == [], "import these from _support (tests/README.md says how)"


def test_no_test_module_imports_another() -> None:
    # What two test modules share belongs in _support; importing a test module runs its fixtures' and
    # tests' definitions a second time under another name.
    names = {p.stem for p in modules()} | {p.stem for p in ROOT.glob("plugins/*/tests/test_*.py")}
    found = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            imported = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            found += [f"{path.relative_to(TESTS)}: {name}" for name in imported if name.split(".")[0] in names]
    assert found == []
