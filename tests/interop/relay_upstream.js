// A Node `ws` server standing for "the real backend" behind an nbws Relay.
//
//   node relay_upstream.js [protocol ...]
//
// Listens on 127.0.0.1, port 0, and reports on stdout, one JSON object a line:
// {"event": "listening", "port": N} first, then "connection" (with the path,
// the chosen protocol and the headers a relay should forward), "message" and
// "close". It refuses a handshake whose path starts with /refuse/<status> with
// that status, greets each client with "hello <protocol>", echoes text as
// "echo: <text>" and binary with "echo: " in front. The text
// "close <code> <reason>" closes with that code and reason, "drop" destroys the
// TCP connection without a closing handshake, "burst <n> [<size>]" sends n numbered
// messages (padded with size x's). It exits when its stdin closes.
"use strict";

const http = require("http");
const { WebSocketServer } = require("ws");

const protocols = process.argv.slice(2);

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
  verifyClient(info, done) {
    const refuse = /^\/refuse\/(\d+)/.exec(info.req.url);
    if (refuse) {
      const status = Number(refuse[1]);
      done(false, status, http.STATUS_CODES[status] || "Refused", { "WWW-Authenticate": "Bearer realm=test" });
    } else {
      done(true);
    }
  },
});

wss.on("listening", () => report({ event: "listening", port: wss.address().port }));

wss.on("connection", (ws, req) => {
  const h = req.headers;
  report({
    event: "connection",
    path: req.url,
    protocol: ws.protocol,
    offered: h["sec-websocket-protocol"] || null,
    cookie: h.cookie || null,
    authorization: h.authorization || null,
    origin: h.origin || null,
    user_agent: h["user-agent"] || null,
    secret: h["x-secret"] || null,
  });
  ws.send(`hello ${ws.protocol}`);
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      report({ event: "message", binary: true, data: data.toString("hex") });
      ws.send(Buffer.concat([Buffer.from("echo: "), data]), { binary: true });
      return;
    }
    const text = data.toString("utf8");
    report({ event: "message", binary: false, data: text });
    const close = /^close (\d+) ?(.*)$/s.exec(text);
    const burst = /^burst (\d+) ?(\d*)$/.exec(text);
    if (close) {
      ws.close(Number(close[1]), close[2]);
    } else if (text === "drop") {
      ws._socket.destroy();
    } else if (burst) {
      const pad = "x".repeat(Number(burst[2] || 0));
      for (let i = 1; i <= Number(burst[1]); i++) ws.send(`n${i}${pad}`);
    } else {
      ws.send("echo: " + text);
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
