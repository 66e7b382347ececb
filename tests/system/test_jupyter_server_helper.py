"""
``_support.jupyter.jupyter_server``, the one way the system tests start a Jupyter server, against
stand-ins that behave as a Jupyter server does or fails to: one that logs its URL and answers,
one that exits first, one that says nothing, one that ignores SIGTERM and leaves a child behind.
(The real ones run in test_interop_codec_servers.py and the test_browser_* files.)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from _support import until
from _support.jupyter import jupyter_server

TOKEN = "s3cr3t-t0ken"

# A stand-in for `jupyter lab`: what it does is chosen by FAKE_MODE; it writes its pids to FAKE_PIDS.
FAKE = r"""
import os, signal, socket, subprocess, sys, time
mode, pids = os.environ["FAKE_MODE"], open(os.environ["FAKE_PIDS"], "a")
token = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--IdentityProvider.token="))
pids.write(f"{os.getpid()}\n")
pids.flush()
if mode == "exit":
    for n in range(30):
        print(f"log line {n} token={token}", file=sys.stderr)
    sys.exit(3)
if mode == "silent":
    print("starting", flush=True)
    time.sleep(600)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    pids.write(f"{child.pid}\n")
    pids.flush()
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print("[I ServerApp] starting", file=sys.stderr, flush=True)
# As Jupyter does: the URL is logged as the server starts to listen.
print(f"    http://127.0.0.1:{sock.getsockname()[1]}/lab?token={token}", file=sys.stderr, flush=True)
sock.listen()
while True:
    sock.accept()[0].close()
"""


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its new parent counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def fake(tmp_path: Path, mode: str) -> tuple[list[str], dict[str, str], Path]:
    script = tmp_path / "fake_jupyter.py"
    script.write_text(FAKE)
    pids = tmp_path / "pids"
    return [sys.executable, str(script)], {"FAKE_MODE": mode, "FAKE_PIDS": str(pids)}, pids


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


async def test_yields_the_url_once_it_answers_and_stops_the_server(tmp_path: Path) -> None:
    app, env, pids = fake(tmp_path, "serve")
    async with jupyter_server(app, tmp_path, tmp_path / "home", token=TOKEN, env=env) as url:
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.close()
        await writer.wait_closed()
        (server,) = pids_in(pids)
        assert not gone(server)
    assert gone(server), "stopped at the end"


async def test_a_server_that_ignores_sigterm_is_killed_with_what_it_started(tmp_path: Path) -> None:
    app, env, pids = fake(tmp_path, "stubborn")
    async with jupyter_server(app, tmp_path, tmp_path / "home", token=TOKEN, env=env, grace=0.2):
        server, child = pids_in(pids)
    assert gone(server)
    await until(lambda: gone(child), 5, "the server's child ended")


async def test_an_early_exit_names_the_command_and_shows_the_last_lines_token_masked(tmp_path: Path) -> None:
    app, env, pids = fake(tmp_path, "exit")
    with pytest.raises(AssertionError) as raised:
        async with jupyter_server(app, tmp_path, tmp_path / "home", token=TOKEN, env=env):
            pytest.fail("it never answered")
    message = str(raised.value)
    assert message.startswith(f"`{sys.executable} {tmp_path / 'fake_jupyter.py'} --allow-root")
    assert "exited with code 3 before it answered; its last 20 lines:" in message
    assert "log line 29 token=***" in message and "log line 9 " not in message and "log line 10 " in message
    assert "--IdentityProvider.token=***" in message and TOKEN not in message
    assert all(gone(pid) for pid in pids_in(pids))


async def test_silence_times_out_with_what_it_printed_and_the_server_stopped(tmp_path: Path) -> None:
    app, env, pids = fake(tmp_path, "silent")
    with pytest.raises(AssertionError, match=r"did not answer within [\d.]+ s; its last line:\n    starting$"):
        async with jupyter_server(app, tmp_path, tmp_path / "home", env=env, seconds=2):
            pytest.fail("it never answered")
    assert all(gone(pid) for pid in pids_in(pids))
