"""Re-run cells and kernel restarts in a real kernel: what a notebook user does in the first hour."""

from __future__ import annotations

import pytest
from _support import free_port, timeout, until
from _support.jupyter import run_cells
from jupyter_client.manager import AsyncKernelManager

import nbws

pytestmark = pytest.mark.notebook


def test_re_running_server_plugin_and_handler_cells_replaces_instead_of_failing_or_stacking() -> None:
    port = free_port()
    server_cell = f"""
        server = nbws.Server(port={port})
        server.on("message", lambda conn, message: conn.send("echo: " + message.data))
        server.start();
    """
    plugin_cell = """
        class Tag:
            @nbws.hookimpl
            def nbws_message_receive(self, message):
                message.data += " +tag"

        server.plugins.register(Tag());
    """
    defined_elsewhere = """
        class Count:
            @nbws.hookimpl
            def nbws_open(self):
                pass

        def shout(text):
            return text.upper()
    """
    register_cell = """
        nbws.plugins.register(Count())
        nbws.plugins.register(nbws.transforms.map_text(shout, direction="send"))
        names = [info.name for info in nbws.plugins if info.name.startswith(("Count", "map_text"))]
        print(names)
    """
    loop_cell = """
        for _ in range(3):
            server.plugins.register(Count())
        print(len([info for info in server.plugins if info.name.startswith("Count")]))
    """
    handler_cell = """
        def show(message):
            got.append(message.data)

        ws.on("message", show);
    """
    outputs = run_cells(
        [
            "import nbws",
            server_cell,
            server_cell,  # the same cell run again: the port is the user's own earlier server's
            plugin_cell,
            plugin_cell,
            plugin_cell,
            "ws = nbws.WebSocket(server.url); got = []",
            handler_cell,
            handler_cell,
            """
            await ws.opened(timeout=10)
            ws.send("hi")
            print((await ws.recv(timeout=10)).data)
            print(got)
            print([type(e).__name__ for e in nbws.endpoints()])
            """,
            """
            closed = await nbws.close_all()
            print(len(closed), nbws.endpoints(), ws.close_event.code)
            """,
            defined_elsewhere,
            register_cell,
            register_cell,  # run again: the same plugins, not two of each
            loop_cell,  # one run registering three: all three are meant
        ]
    )
    assert outputs[1] == ("", "")
    assert f"stopped the earlier server on 127.0.0.1:{port}" in outputs[2][1]
    assert "replaced plugin 'Tag'" in outputs[4][1] and "replaced plugin 'Tag'" in outputs[5][1]
    assert "replaced the 'message' listener show" in outputs[8][1]
    assert outputs[9][0] == "echo: hi +tag\n['echo: hi +tag']\n['Server', 'WebSocket']\n"
    assert outputs[10][0] == "2 [] 1001\n"
    assert outputs[12][0] == outputs[13][0] == "['Count', 'map_text:shout']\n"
    assert "replaced plugin 'Count'" in outputs[13][1] and "replaced plugin 'map_text:shout'" in outputs[13][1]
    assert outputs[14][0] == "3\n"


@pytest.mark.parametrize("how", ["restart", "shutdown"])
async def test_kernel_restart_or_shutdown_sends_1001_going_away_to_every_peer(how: str) -> None:
    # Peers outside the kernel: a server the kernel's client talks to, a client of the kernel's server.
    outside = nbws.Server()
    codes: dict[str, int] = {}
    outside.on("close", lambda conn, event: codes.setdefault("kernel's client", event.code))
    await outside.start()
    port = free_port()

    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=timeout(60))
        code = f"""
import nbws
server = nbws.Server(port={port})
server.start()
ws = nbws.WebSocket({outside.url!r})
await ws.opened(timeout=10)
"""
        reply = await kc.execute_interactive(code, timeout=timeout(60))
        assert reply["content"]["status"] == "ok", reply["content"]
        client = nbws.WebSocket(f"ws://127.0.0.1:{port}/")
        client.onclose = lambda event: codes.setdefault("kernel's server", event.code)
        await client.opened(timeout=timeout())
        await until(lambda: outside.clients, what="the kernel's client to connect")

        if how == "restart":
            await km.restart_kernel(now=False)
        else:
            await km.shutdown_kernel(now=False)
        await until(lambda: len(codes) == 2, seconds=20, what="both peers to see the close")
        assert codes == {"kernel's client": 1001, "kernel's server": 1001}
    finally:
        kc.stop_channels()
        if await km.is_alive():
            await km.shutdown_kernel(now=True)
        await outside.stop()


async def test_a_script_that_exits_without_close_sends_1001() -> None:
    import asyncio
    import sys

    outside = nbws.Server()
    codes: list[int] = []
    outside.on("close", lambda conn, event: codes.append(event.code))
    await outside.start()
    script = f"import nbws\nws = nbws.WebSocket({outside.url!r})\nws.opened().wait(10)\nprint('open')\n"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout(30))
    assert out == b"open\n" and proc.returncode == 0
    await until(lambda: codes, what="the script's close")
    assert codes == [1001]
    await outside.stop()
