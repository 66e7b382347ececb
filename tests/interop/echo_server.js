// A Node `ws` server for the interop and relay tests and the relay benchmark: nbws
// connects to it directly, or an nbws Relay stands between it and the client.
//
//   node echo_server.js [--prefix TEXT] [--greeting TEXT] [--plain] [--quiet] [protocol ...]
//
// Listens on 127.0.0.1, port 0, and reports on stdout, one JSON object a line:
// {"event": "listening", "port": N} first, then "connection" (with the path,
// the chosen protocol and the headers a relay should forward), "message" and
// "close" events. It picks the first of its protocols (argv order) the client
// offers, and refuses a handshake whose path starts with /refuse/<status> with
// that status. It greets each client with "<greeting><protocol>" and echoes
// text as "<prefix><text>" and binary with the bytes of the prefix in front.
// The text "close <code> <reason>" closes with that code and reason, "drop"
// destroys the TCP connection without a closing handshake, "burst <n> [<size>]"
// sends n numbered messages (padded with size x's). It exits when its stdin closes.
//
//   --prefix TEXT    what echoes start with (default "node echo: ")
//   --greeting TEXT  the greeting, before the protocol (default "hello from node ws ")
//   --plain          no greeting, no commands: every message echoed as it came (benchmarks)
//   --quiet          no "message" reports (benchmarks: a line per message would cost more than the echo)
//
// Like ws's own default, it declines permessage-deflate.
"use strict";

const http = require("http");
const { WebSocketServer } = require("ws");

const options = { prefix: "node echo: ", greeting: "hello from node ws ", plain: false, quiet: false };
const protocols = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--prefix" || arg === "--greeting") {
    if (i + 1 >= args.length) {
      process.stderr.write(`echo_server.js: ${arg} needs a value\n`);
      process.exit(2);
    }
    options[arg.slice(2)] = args[++i];
  } else if (arg === "--plain" || arg === "--quiet") {
    options[arg.slice(2)] = true;
  } else if (arg.startsWith("--")) {
    process.stderr.write(`echo_server.js: unknown option ${arg}\n`);
    process.exit(2);
  } else {
    protocols.push(arg);
  }
}
const PREFIX = Buffer.from(options.prefix);

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
    extensions: h["sec-websocket-extensions"] || null,
    cookie: h.cookie || null,
    authorization: h.authorization || null,
    origin: h.origin || null,
    user_agent: h["user-agent"] || null,
    secret: h["x-secret"] || null,
  });
  ws.on("close", (code, reason) => report({ event: "close", code, reason: reason.toString("utf8") }));
  ws.on("error", (error) => report({ event: "error", message: error.message }));
  if (options.plain) {
    ws.on("message", (data, isBinary) => {
      if (!options.quiet) report({ event: "message", binary: isBinary, size: data.length });
      ws.send(data, { binary: isBinary });
    });
    return;
  }
  ws.send(options.greeting + ws.protocol);
  ws.on("message", (data, isBinary) => {
    if (isBinary) {
      if (!options.quiet) report({ event: "message", binary: true, data: data.toString("hex") });
      ws.send(Buffer.concat([PREFIX, data]), { binary: true });
      return;
    }
    const text = data.toString("utf8");
    if (!options.quiet) report({ event: "message", binary: false, data: text });
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
      ws.send(options.prefix + text);
    }
  });
});

process.stdin.resume();
process.stdin.on("end", () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close(() => process.exit(0));
});
