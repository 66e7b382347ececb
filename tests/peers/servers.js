// Protocol servers nbws did not write, for the codec tests.
//
//   node servers.js graphql|graphql-legacy|jsonrpc|stomp|mqtt
//
// Each listens on 127.0.0.1, port 0, and reports on stdout one JSON object a
// line: {"event": "listening", "port": N, "path": "/..."} first, then what the
// server itself received where a test needs proof that the peer accepted a
// message (an edited one in particular). It exits when its stdin closes.
"use strict";

const http = require("http");

const kind = process.argv[2];

function report(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function listening(server, path) {
  server.listen(0, "127.0.0.1", () => report({ event: "listening", port: server.address().port, path }));
}

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

if (kind === "graphql") {
  // graphql-ws (protocol graphql-transport-ws) with a query and a subscription.
  const { WebSocketServer } = require("ws");
  const { useServer } = require("graphql-ws/use/ws");
  const { buildSchema } = require("graphql");
  const schema = buildSchema(`
    type Query { hello(name: String): String }
    type Subscription { greetings(to: String!): String }
  `);
  const roots = {
    query: { hello: ({ name }) => `Hello ${name}` },
    subscription: {
      greetings: async function* ({ to }) {
        for (const hi of ["Hi", "Bonjour", "Hola"]) yield { greetings: `${hi} ${to}` };
      },
    },
  };
  const server = http.createServer();
  const wss = new WebSocketServer({ server, path: "/graphql" });
  useServer(
    {
      schema,
      roots,
      onSubscribe: (ctx, id, payload) => report({ event: "subscribe", id, payload }),
    },
    wss,
  );
  listening(server, "/graphql");
} else if (kind === "graphql-legacy") {
  // subscriptions-transport-ws (Apollo's legacy protocol, subprotocol graphql-ws) with a subscription.
  const { SubscriptionServer } = require("subscriptions-transport-ws");
  const { buildSchema, execute, subscribe } = require("graphql");
  const schema = buildSchema(`
    type Query { hello: String }
    type Subscription { greetings(to: String!): String }
  `);
  const rootValue = {
    hello: () => "Hello",
    greetings: async function* ({ to }) {
      for (const hi of ["Hi", "Bonjour", "Hola"]) yield { greetings: `${hi} ${to}` };
    },
  };
  const server = http.createServer();
  SubscriptionServer.create(
    {
      schema,
      rootValue,
      execute,
      subscribe,
      onOperation: (message, params) => {
        report({ event: "start", id: message.id, payload: message.payload });
        return params;
      },
    },
    { server, path: "/graphql" },
  );
  listening(server, "/graphql");
} else if (kind === "jsonrpc") {
  // rpc-websockets: JSON-RPC 2.0 methods.
  const { Server } = require("rpc-websockets");
  const server = new Server({ host: "127.0.0.1", port: 0 });
  server.register("sum", (params) => {
    report({ event: "call", method: "sum", params });
    return params.reduce((a, b) => a + b, 0);
  });
  server.register("fail", () => {
    throw new Error("it failed");
  });
  server.on("listening", () => report({ event: "listening", port: server.wss.address().port, path: "/" }));
} else if (kind === "stomp") {
  // stomp-broker-js: a STOMP broker on /stomp.
  const StompServer = require("stomp-broker-js");
  const server = http.createServer();
  const broker = new StompServer({ server, path: "/stomp", heartbeat: [0, 0] });
  const text = (body) => (typeof body === "string" ? body : JSON.stringify(body));
  broker.on("subscribe", (sub) => report({ event: "subscribe", topic: sub.topic }));
  broker.on("send", (ev) => report({ event: "send", dest: ev.dest, body: text(ev.frame.body) }));
  listening(server, "/stomp");
} else if (kind === "mqtt") {
  // aedes, the MQTT broker, over websocket-stream on /mqtt.
  const aedes = require("aedes")();
  const websocket = require("websocket-stream");
  const server = http.createServer();
  websocket.createServer({ server, path: "/mqtt" }, aedes.handle);
  aedes.on("publish", (packet, client) => {
    if (client) report({ event: "publish", topic: packet.topic, payload: packet.payload.toString() });
  });
  listening(server, "/mqtt");
} else {
  process.stderr.write(`unknown server ${kind}\n`);
  process.exit(2);
}
