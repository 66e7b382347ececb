"""
``__all__`` says the whole truth (httpx's test_exports): every public name of the package is
listed, every listed name exists and is documented, and each public module's ``__all__`` holds.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import itertools
import types
import warnings
from pathlib import Path

import pytest

import nbws

PACKAGE = Path(nbws.__file__).parent
PUBLIC_MODULES = sorted(
    ".".join(("nbws", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if not any(part.startswith("_") and part != "__init__.py" for part in path.relative_to(PACKAGE).parts)
    and path.name != "__main__.py"
)


def test_every_public_name_of_the_package_is_in_all() -> None:
    """A name without an underscore in ``nbws`` is public: it is in ``__all__`` or it is a public submodule."""
    leaked = sorted(
        name
        for name, value in vars(nbws).items()
        if not name.startswith("_") and name not in nbws.__all__ and not isinstance(value, types.ModuleType)
    )
    assert leaked == [], "public by accident: list them in nbws.__all__ or import them under a _name"


def test_all_has_no_repeats() -> None:
    assert len(set(nbws.__all__)) == len(nbws.__all__)


def _attribute_docstrings(module: types.ModuleType) -> set[str]:
    """Names assigned at the top of ``module`` with a string right after them (Sphinx's attribute docstrings)."""
    source = inspect.getsource(module)
    body = ast.parse(source).body
    found: set[str] = set()
    for node, following in itertools.pairwise(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if (
            targets
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


def documented(module: types.ModuleType, name: str) -> bool:
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isfunction(value) or isinstance(value, types.ModuleType):
        return bool(inspect.getdoc(value))
    if callable(value) and not isinstance(value, type) and type(value).__module__.startswith("_pytest"):
        return bool(value.__doc__)  # a pytest fixture: its function's docstring
    if isinstance(value, enum.Enum):
        return bool(type(value).__doc__)  # a member: its enum says what it is
    if name == "__version__":
        return True
    home = inspect.getmodule(value)
    places = [module]
    if home is not None:
        places.append(home)
    # A constant or an instance: an attribute docstring where it is defined, or where it is re-exported.
    for place in places:
        for candidate in (place, *(m for m in vars(place).values() if isinstance(m, types.ModuleType))):
            if getattr(candidate, "__name__", "").startswith("nbws") and name in _attribute_docstrings(candidate):
                return True
    return False


# Old module paths kept so that existing imports work: they re-export names documented where the
# names now live (checked there), and the deprecated ones warn on access.
OLD_PATHS = {
    "nbws.intercept": "nbws.builtins.intercept",
    "nbws.logger": "nbws.builtins.logger",
    "nbws.replay": "nbws.recording.replay",
    "nbws.recording_panels": "nbws.widgets",
}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_exists_and_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_name} has no __all__"
    assert inspect.getdoc(module), f"{module_name} has no docstring"
    if module_name in OLD_PATHS:
        home = importlib.import_module(OLD_PATHS[module_name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            moved = [name for name in names if getattr(module, name, None) is not getattr(home, name, object())]
        assert moved == [], f"{module_name} re-exports names that are not those of {home.__name__}"
        return
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ lists names it does not have"
    undocumented = [name for name in names if not documented(module, name)]
    assert undocumented == [], f"{module_name}: no docstring for {undocumented}"


def test_the_documentation_check_can_fail() -> None:
    module = types.ModuleType("nbws_example", "An example.")
    exec("def f():\n    pass\nX = 1\n", module.__dict__)
    assert not documented(module, "f")
