"""
STOMP 1.2 (https://stomp.github.io/stomp-specification-1.2.html) over WebSocket,
one frame per message (text, or binary for a binary body), as stomp.js sends it.

A frame is a command line, ``name:value`` header lines, an empty line, the
body and a NUL byte. A lone end-of-line is a heart-beat. Header values are
escaped (``\\n``, ``\\r``, ``\\c``, ``\\\\``) except in CONNECT and CONNECTED.
Correlation: a frame with a ``receipt`` header gets a RECEIPT (or ERROR) with
that ``receipt-id``; CONNECT (or STOMP) gets CONNECTED.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import CodecError
from ._core import Codec, Decoded

__all__ = ["Stomp"]

CLIENT = frozenset(
    {"CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN", "COMMIT", "ABORT", "DISCONNECT"}
)
SERVER = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})
COMMANDS = CLIENT | SERVER
_UNESCAPE = {"n": "\n", "r": "\r", "c": ":", "\\": "\\"}
_NO_ESCAPE = frozenset({"CONNECT", "CONNECTED"})


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in _UNESCAPE:
                raise CodecError(f"undefined escape sequence in header value {value!r}")
            out.append(_UNESCAPE[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")


class Stomp(Codec):
    """STOMP 1.2 frames, text or binary."""

    name = "stomp"
    subprotocols = ("v12.stomp", "v11.stomp", "v10.stomp", "stomp")
    url_hints = ("stomp",)
    priority = 6

    def sniff(self, data: str | bytes) -> bool:
        start = data[:16]
        text = start if isinstance(start, str) else start.decode("latin-1")
        command = text.split("\n", 1)[0].rstrip("\r")
        return command in COMMANDS and "\n" in text

    def decode(self, data: str | bytes, state: Any, direction: str = "send") -> Decoded:
        binary = isinstance(data, bytes)
        raw = data if isinstance(data, bytes) else data.encode()
        if raw in (b"\n", b"\r\n"):
            return Decoded(self.name, "heartbeat", fields={"eol": raw.decode()})
        head_end = raw.find(b"\n\n")
        crlf = raw.find(b"\r\n\r\n")
        if crlf != -1 and (head_end == -1 or crlf < head_end):
            head_end, sep = crlf, 4
        else:
            sep = 2
        if head_end == -1:
            raise CodecError("no empty line after the headers")
        try:
            lines = raw[:head_end].decode().split("\n")
        except UnicodeDecodeError:
            raise CodecError("the command and headers are not UTF-8") from None
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        while lines and lines[0] == "":  # heart-beats before the frame
            lines.pop(0)
        if not lines:
            raise CodecError("no command")
        command = lines[0]
        if command not in COMMANDS:
            raise CodecError(f"unknown command {command!r}")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if ":" not in line:
                raise CodecError(f"header line without a colon: {line!r}")
            key, value = line.split(":", 1)
            if command not in _NO_ESCAPE:
                key, value = _unescape(key), _unescape(value)
            headers.append((key, value))
        first: dict[str, str] = {}
        for key, value in headers:
            first.setdefault(key, value)  # the spec: the first occurrence wins
        rest = raw[head_end + sep :]
        if "content-length" in first:
            try:
                length = int(first["content-length"])
            except ValueError:
                raise CodecError(f"content-length is not a number: {first['content-length']!r}") from None
            if length < 0 or len(rest) < length + 1 or rest[length : length + 1] != b"\0":
                raise CodecError(f"content-length {length} does not match a NUL-terminated body")
            body, tail = rest[:length], rest[length + 1 :]
        else:
            nul = rest.find(b"\0")
            if nul == -1:
                raise CodecError("the frame does not end with a NUL byte")
            body, tail = rest[:nul], rest[nul + 1 :]
        if tail.strip(b"\r\n"):
            raise CodecError(f"{len(tail)} bytes after the frame's NUL")
        payload: str | bytes = body
        if not binary:
            try:
                payload = body.decode()
            except UnicodeDecodeError:
                raise CodecError("the body of a text frame is not UTF-8") from None
        fields: dict[str, Any] = {"headers": headers}
        if binary:
            fields["binary"] = True
        if tail:
            fields["trailer"] = tail.decode("latin-1")
        name = first.get("destination")
        role, msg_id = None, None
        if command in ("CONNECT", "STOMP"):
            role, fields["_corr"] = "request", "connect"
        elif command == "CONNECTED":
            role, fields["_corr"] = "response", "connect"
        elif "receipt" in first:
            role, msg_id = "request", first["receipt"]
        elif command in ("RECEIPT", "ERROR") and "receipt-id" in first:
            role, msg_id = "response", first["receipt-id"]
        elif command == "MESSAGE":
            msg_id = first.get("message-id")
            name = name or first.get("subscription")
        elif command in ("SUBSCRIBE", "UNSUBSCRIBE"):
            msg_id = first.get("id")
        return Decoded(self.name, command, name=name, id=msg_id, payload=payload, fields=fields, role=role)

    def encode(self, decoded: Decoded) -> str | bytes:
        fields = decoded.fields
        if decoded.kind == "heartbeat":
            return str(fields.get("eol", "\n"))
        command = decoded.kind
        if command not in COMMANDS:
            raise CodecError(f"unknown STOMP command {command!r}")
        body = decoded.payload if decoded.payload is not None else ""
        body_bytes = body.encode() if isinstance(body, str) else bytes(body)
        headers = [(str(k), str(v)) for k, v in fields.get("headers", [])]
        # The name is the destination: an edited name goes to the destination header, or makes one.
        if decoded.name is not None and command in ("SEND", "SUBSCRIBE", "MESSAGE"):
            if any(k == "destination" for k, _ in headers):
                headers = [(k, decoded.name if k == "destination" else v) for k, v in headers]
            elif command != "MESSAGE":
                headers.append(("destination", decoded.name))
        # An edited body must not keep a stale length: content-length follows the body.
        headers = [(k, str(len(body_bytes)) if k == "content-length" else v) for k, v in headers]
        lines = [command]
        for key, value in headers:
            lines.append(f"{key}:{value}" if command in _NO_ESCAPE else f"{_escape(key)}:{_escape(value)}")
        frame = (
            ("\n".join(lines) + "\n\n").encode() + body_bytes + b"\0" + str(fields.get("trailer", "")).encode("latin-1")
        )
        if fields.get("binary") or isinstance(body, bytes):
            return frame
        return frame.decode()
