"""The documentation tells the truth: the README's example runs, every hook and public name is documented."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import nbformat
import pytest
from _support import timeout
from nbclient import NotebookClient

import nbws
from nbws import hookspecs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_example() -> str:
    section = README.split("## In twenty lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README lost its twenty-line example"
    return match.group(1)


def test_readme_example_is_about_twenty_lines() -> None:
    lines = [line for line in readme_example().splitlines() if line.strip()]
    assert len(lines) <= 22


@pytest.mark.notebook
def test_readme_example_runs_in_a_notebook_cell() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(readme_example()),
        nbformat.v4.new_code_cell(
            textwrap.dedent(
                """
                print(socket.ready_state, server.listening, server.clients)
                """
            )
        ),
    ]
    NotebookClient(nb, timeout=int(timeout(60)), kernel_name="python3").execute()
    first = nb.cells[0].outputs
    assert not [o for o in first if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in first if o.output_type == "stream")
    assert text.startswith("Received: Welcome to the WebSocket server!\n"), text
    assert "Connection closed 1000 True" in text, text
    last = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert last.split()[1:] == ["False", "[]"]


def test_every_hook_is_in_the_readme_table() -> None:
    for name in hookspecs.__all__:
        if name.startswith("nbws_"):
            assert f"`{name}(" in README, f"README's hook table misses {name}"


def test_every_public_name_has_a_docstring() -> None:
    for name in nbws.__all__:
        obj = getattr(nbws, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"nbws.{name} has no docstring"
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                assert inspect.getdoc(member), f"nbws.{name}.{attr} has no docstring"


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    wanted: set[str] = set()
    for block in ("dependencies", "test"):
        body = re.search(rf"^{block} = \[(.*?)^\]", pyproject, re.S | re.M)
        assert body, f"pyproject.toml has no {block} list"
        wanted |= set(re.findall(r'"([^"]+)"', body.group(1)))
    listed = set()
    dependencies = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    for line in dependencies.splitlines():
        item = re.fullmatch(r"\s+- ([A-Za-z0-9_.\-]+(?:[<>=!~].*)?)", line)
        if item and re.split(r"[<>=!~]", item.group(1))[0] not in ("python", "pip", "nodejs"):
            listed.add(item.group(1))
    assert listed == wanted
