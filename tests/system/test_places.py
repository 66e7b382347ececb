"""nbws runs in the three places users run it: a Jupyter kernel, an asyncio program, a plain script."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import nbformat
import pytest
from _support import timeout
from _support.jupyter import run_cells
from nbclient import NotebookClient


def run_script(source: str) -> str:
    """Run ``source`` in a fresh Python process and return what it printed; fail on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout(60),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.notebook
def test_in_a_jupyter_kernel_without_await_where_the_browser_needs_none() -> None:
    cells = [
        # Construct, start and send need no await: the kernel's loop is already running.
        """
        import asyncio, nbws
        server = nbws.Server()
        server.on("message", lambda conn, message: conn.send("echo: " + message.data))
        server.start()
        received = []
        ws = nbws.WebSocket(server.url)
        ws.onopen = lambda event: ws.send("hello from a cell")
        ws.onmessage = lambda message: received.append(message.data)
        print(type(asyncio.get_running_loop()).__name__ != "", server.url.startswith("ws://127.0.0.1:"))
        """,
        # Waiting uses top-level await.
        """
        await ws.opened(timeout=10)
        message = await ws.recv(timeout=10)
        print(message.data, received)
        """,
        # A blocking wait inside the running kernel loop (nest-asyncio2 under the hood).
        """
        ws.send("blocking")
        print(ws.recv().wait(10).data)
        """,
        """
        ws.close()
        event = await ws.closed(timeout=10)
        await server.stop()
        print(event.code, event.was_clean, server.listening)
        """,
    ]
    outputs = [stdout + stderr for stdout, stderr in run_cells(cells)]
    assert outputs == [
        "True True\n",
        "echo: hello from a cell ['echo: hello from a cell']\n",
        "echo: blocking\n",
        "1000 True False\n",
    ]


@pytest.mark.notebook
def test_handler_output_appears_in_the_cell_running_now() -> None:
    cells = [
        """
        import nbws
        server = nbws.Server()
        server.on("message", lambda conn, message: (print("server got", message.data), conn.send(message.data)))
        server.start()
        ws = nbws.WebSocket(server.url)
        ws.onmessage = lambda message: print("client got", message.data)
        await ws.opened(timeout=10)
        """,
        # The handlers were set up in the cell above; what they print belongs here.
        """
        ws.send("ping")
        await ws.recv(timeout=10)
        """,
        """
        ws.close()
        await ws.closed(timeout=10)
        await server.stop()
        """,
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell)) for cell in cells]
    NotebookClient(nb, timeout=int(timeout(60)), kernel_name="python3").execute()
    printed = ["".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") for cell in nb.cells]
    assert printed == ["", "server got ping\nclient got ping\n", ""]


def test_in_an_asyncio_run_program() -> None:
    out = run_script(
        """
        import asyncio, nbws

        async def main():
            async with nbws.Server() as server:
                server.on("message", lambda conn, message: conn.send(message.data[::-1]))
                async with nbws.WebSocket(server.url) as ws:
                    ws.send("stressed")
                    print((await ws.recv(timeout=10)).data)

        asyncio.run(main())
        """
    )
    assert out == "desserts\n"


def test_in_a_plain_script_with_blocking_calls() -> None:
    out = run_script(
        """
        import threading, nbws

        server = nbws.Server()
        server.on("connection", lambda conn: conn.send("welcome"))
        server.start().wait(10)
        ws = nbws.WebSocket(server.url)
        ws.opened().wait(10)
        print(ws.recv().wait(10).data, threading.current_thread().name)
        ws.close(1000, "bye")
        event = ws.closed().wait(10)
        server.stop().wait(10)
        print(event.code, event.reason, server.listening)
        """
    )
    assert out == "welcome MainThread\n1000 bye False\n"
