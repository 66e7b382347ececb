// A Node `ws` client for the interop tests: it connects to an nbws.Server.
//
//   node client.js URL [protocol ...]
//
// Reports on stdout, one JSON object a line: "open" (with the negotiated
// protocol), "message" (binary data in hex), "close" (code and reason),
// "error" and "rejected" (the HTTP status of a refused handshake). Takes
// commands on stdin, one JSON object a line:
//   {"send": "text"}   {"sendBinary": "<hex>"}   {"close": [code, "reason"]}
// It exits once the connection is closed, and closes it when stdin ends.
"use strict";

const readline = require("node:readline");
const WebSocket = require("ws");

const [url, ...protocols] = process.argv.slice(2);

function report(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

const ws = new WebSocket(url, protocols);

ws.on("open", () => report({ event: "open", protocol: ws.protocol }));
ws.on("message", (data, isBinary) =>
  report({ event: "message", binary: isBinary, data: isBinary ? data.toString("hex") : data.toString("utf8") }),
);
ws.on("unexpected-response", (req, res) => {
  report({ event: "rejected", status: res.statusCode });
  process.exit(0);
});
ws.on("error", (error) => report({ event: "error", message: error.message }));
ws.on("close", (code, reason) => {
  report({ event: "close", code, reason: reason.toString("utf8") });
  process.exit(0);
});

const commands = readline.createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = JSON.parse(line);
  if ("send" in command) ws.send(command.send);
  else if ("sendBinary" in command) ws.send(Buffer.from(command.sendBinary, "hex"), { binary: true });
  else if ("close" in command) ws.close(...command.close);
});
// Stdin closed: the test is over, close normally (the close handler exits).
commands.on("close", () => ws.close());
