// Node's ws, client and server in one process: the same echo benchmark as benchmarks/echo.py.
//
//   NODE_PATH=tests/interop/node_modules node benchmarks/js/echo_bench.js MESSAGES ROUND_TRIPS SIZE
//
// Prints one JSON object: {"throughput": messages per second, "cpu_us": CPU microseconds per echoed
// message while pipelined (this process: both ends), "median_us": ..., "p99_us": ...}.
// Neither end enables permessage-deflate (ws's server default), so it compares with compression off.
"use strict";

const { WebSocketServer, WebSocket } = require("ws");

const [messages, roundTrips, size] = process.argv.slice(2).map(Number);
const payload = "x".repeat(size);

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));

wss.on("listening", () => {
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  let onMessage = null;
  ws.on("message", () => onMessage());
  // Resolves once n more echoes have arrived.
  const echoes = (n) =>
    new Promise((resolve) => {
      let left = n;
      onMessage = () => {
        left -= 1;
        if (left === 0) resolve();
      };
    });

  ws.on("open", async () => {
    // Warm up.
    let done = echoes(1000);
    for (let i = 0; i < 1000; i++) ws.send(payload);
    await done;

    done = echoes(messages);
    const cpu = process.cpuUsage();
    let start = process.hrtime.bigint();
    for (let i = 0; i < messages; i++) ws.send(payload);
    await done;
    const throughput = messages / (Number(process.hrtime.bigint() - start) / 1e9);
    const used = process.cpuUsage(cpu);
    const cpu_us = (used.user + used.system) / messages;

    const times = [];
    for (let i = 0; i < roundTrips; i++) {
      done = echoes(1);
      start = process.hrtime.bigint();
      ws.send(payload);
      await done;
      times.push(Number(process.hrtime.bigint() - start) / 1e3);
    }
    times.sort((a, b) => a - b);
    const pick = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    process.stdout.write(JSON.stringify({ throughput, cpu_us, median_us: pick(0.5), p99_us: pick(0.99) }) + "\n");
    ws.close();
    wss.close();
  });
});
