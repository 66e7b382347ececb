// A Node `ws` server for the interop tests: nbws.WebSocket connects to it.
//
//   node echo_server.js [protocol ...]
//
// Listens on 127.0.0.1, port 0, and reports on stdout, one JSON object a line:
// {"event": "listening", "port": N} first, then "connection", "message" and
// "close" events. It greets each client with "hello from node ws <protocol>",
// echoes text as "node echo: <text>" and binary with the bytes of "node echo: "
// in front, and on the text "close <code> <reason>" closes with that code and
// reason. It picks the first of its protocols (argv order) the client offers.
// It exits when its stdin closes.
"use strict";

const { WebSocketServer } = require("ws");

const protocols = process.argv.slice(2);
const PREFIX = "node echo: ";

function report(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  handleProtocols(offered) {
    for (const protocol of protocols) {
      if (offered.has(protocol)) return protocol;
    }
    return false;
  },
});

wss.on("listening", () => report({ event: "listening", port: wss.address().port }));

wss.on("connection", (ws, req) => {
  report({ event: "connection", protocol: ws.protocol, path: req.url, origin: req.headers.origin || null });
  ws.send(`hello from node ws ${ws.protocol}`);
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      report({ event: "message", binary: true, data: data.toString("hex") });
      ws.send(Buffer.concat([Buffer.from(PREFIX), data]), { binary: true });
      return;
    }
    const text = data.toString("utf8");
    report({ event: "message", binary: false, data: text });
    const close = /^close (\d+) ?(.*)$/s.exec(text);
    if (close) {
      ws.close(Number(close[1]), close[2]);
    } else {
      ws.send(PREFIX + text);
    }
  });
  ws.on("close", (code, reason) => report({ event: "close", code, reason: reason.toString("utf8") }));
  ws.on("error", (error) => report({ event: "error", message: error.message }));
});

process.stdin.resume();
process.stdin.on("end", () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
});
