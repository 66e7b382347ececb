"""
A Jupyter server in a subprocess, for the system tests: ``jupyter lab`` for the browser tests
(``_support.jupyterlab``), ``python -m jupyter_server`` for its kernel channels
(``system/test_interop_codec_servers.py``).

:func:`jupyter_server` starts it on a free 127.0.0.1 port with its configuration and runtime
folders under a folder of the test's own (nothing of the machine's Jupyter set-up leaks in) and
nbws's plugin autoload off, reads its URL from what it logs, waits until it answers there, and
stops it at the end: SIGTERM first (Jupyter shuts its kernels down), then, if it is still there,
SIGKILL to it and everything it started. If it exits or stays silent instead, the error names the command and shows the last
lines it printed, its token masked.

:func:`run_cells` runs cells in a fresh kernel through nbclient, as a notebook user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import textwrap
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .waits import timeout

URL = re.compile(r"(http://127\.0\.0\.1:(\d+))/")
"""What a Jupyter server logs once it listens: its base URL (and port) on 127.0.0.1."""

SHOWN_LINES = 20
"""How many of its last lines an error shows."""


class _Output:
    """The lines a process printed (the last few hundred), read as they come so that its pipe never fills."""

    def __init__(self, secret: str) -> None:
        self.lines: deque[str] = deque(maxlen=500)
        self._secret = secret

    def masked(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def tail(self) -> str:
        shown = list(self.lines)[-SHOWN_LINES:]
        if not shown:
            return "it printed nothing"
        what = "its last line" if len(shown) == 1 else f"its last {len(shown)} lines"
        return f"{what}:\n" + "".join("    " + self.masked(line) for line in shown).rstrip()


@contextlib.asynccontextmanager
async def jupyter_server(
    app: Sequence[str | Path],
    root: Path,
    home: Path,
    *,
    token: str = "",
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    seconds: float = 30.0,
    grace: float = 15.0,
) -> AsyncIterator[str]:
    """
    Run the Jupyter application ``app`` (``[jupyter, "lab"]``, ``[python, "-m", "jupyter_server"]``)
    serving ``root``; yield its base URL (``http://127.0.0.1:PORT``) once it answers there.

    Args:
        app: The command that starts it; the server's own options (address, port 0, token, root
            folder, no browser) are added after it, then ``options``.
        root: The folder it serves.
        home: Where its configuration (``home/config``) and runtime (``home/runtime``) folders are.
        token: Its token ("" for none); masked in errors.
        env: More environment variables (on top of this process's and the ones above).
        seconds: How long it may take to answer (scaled by NBWS_TEST_TIMEOUT_SCALE).
        grace: How long it may take to stop after SIGTERM (scaled too) before it is killed.

    Raises:
        AssertionError: if it exits or does not answer in time, naming the command and showing
            the last lines it printed.
    """
    command = [
        *(str(part) for part in app),
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
        *options,
    ]
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "NBWS_DISABLE_PLUGIN_AUTOLOAD": "1",
        **(env or {}),
    }
    output = _Output(token)
    shown = output.masked(shlex.join(command))
    # A session of its own, so that what it starts (kernels) can be ended with it.
    process = await asyncio.create_subprocess_exec(
        *command,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    stream = process.stdout

    async def exited() -> AssertionError:
        code = await asyncio.wait_for(process.wait(), timeout(5))
        return AssertionError(f"`{shown}` exited with code {code} before it answered; {output.tail()}")

    async def until_answers() -> str:
        while line := (await stream.readline()).decode(errors="replace"):
            output.lines.append(line)
            found = URL.search(line)
            if found:
                break
        else:
            raise await exited()
        # It logs its URL as it starts to listen: wait until a connection there is accepted.
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", int(found.group(2)))
            except OSError:
                if process.returncode is not None:
                    raise await exited() from None
                await asyncio.sleep(0.02)  # polling a port that will open, bounded by the caller's deadline
                continue
            writer.close()
            await writer.wait_closed()
            return found.group(1)

    async def drain() -> None:
        while line := await stream.readline():
            output.lines.append(line.decode(errors="replace"))

    drainer: asyncio.Task[None] | None = None
    try:
        try:
            url = await asyncio.wait_for(until_answers(), timeout(seconds))
        except asyncio.TimeoutError:
            raise AssertionError(f"`{shown}` did not answer within {timeout(seconds):g} s; {output.tail()}") from None
        drainer = asyncio.create_task(drain())  # keep reading, so that a full pipe never blocks it
        yield url
    finally:
        await _stop(process, grace)
        if drainer is None:
            drainer = asyncio.create_task(drain())
        try:
            await asyncio.wait_for(drainer, timeout(5))  # ends when the last writer to the pipe is gone
        except asyncio.TimeoutError:
            pass  # a straggler outside its session still holds the pipe: the task is cancelled


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """Ask the server to stop (it ends its kernels); kill it if it does not in time, then what it left behind."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout(grace))
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    # Whatever it started in its session (pgid == its pid, start_new_session) and left running, even
    # after a clean exit: a kernel it did not end. A group with no member left raises ProcessLookupError.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_cells(cells: list[str]) -> list[tuple[str, str]]:
    """Run cells in a fresh kernel (a repeated string is the same cell run again); return (stdout, stderr) of each."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell)) for cell in cells]
    NotebookClient(nb, timeout=int(timeout(60)), kernel_name="python3").execute()
    outputs = []
    for cell in nb.cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, errors
        streams = [o for o in cell.outputs if o.output_type == "stream"]
        outputs.append(
            (
                "".join(o.text for o in streams if o.name == "stdout"),
                "".join(o.text for o in streams if o.name == "stderr"),
            )
        )
    return outputs
