// Many Node ws clients for the broadcast benchmark (benchmarks/broadcast.py).
//
//   NODE_PATH=tests/interop/node_modules node benchmarks/js/broadcast_clients.js URL CLIENTS
//
// Opens CLIENTS connections to URL and prints {"ready": CLIENTS} once all are
// open. Every message is a round number; once all clients have received round
// k it prints {"round": k}. It exits when its stdin closes.
"use strict";

const WebSocket = require("ws");

const [url, count] = [process.argv[2], Number(process.argv[3])];
const received = new Map();
let open = 0;

for (let i = 0; i < count; i++) {
  const ws = new WebSocket(url);
  ws.on("open", () => {
    open += 1;
    if (open === count) process.stdout.write(JSON.stringify({ ready: count }) + "\n");
  });
  ws.on("message", (data) => {
    const round = data.toString();
    const n = (received.get(round) || 0) + 1;
    if (n === count) {
      received.delete(round);
      process.stdout.write(JSON.stringify({ round: Number(round) }) + "\n");
    } else {
      received.set(round, n);
    }
  });
  ws.on("error", (error) => process.stderr.write(`client ${i}: ${error.message}\n`));
}

process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
