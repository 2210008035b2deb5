/**
 * Fault servers: real loopback sockets (node:net, or node:tls for Service Fabric) that parse
 * each HTTP/1.1 request and then do whatever a test asks with the raw socket: answer, answer
 * and break, trickle, or never answer. Plus a fake clock whose `sleep` records the delays and
 * resolves at once, so no test waits through a real backoff.
 */

import { createServer as createNetServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { AddressInfo } from "node:net";

/** A request as the fault server read it off the socket. */
export interface RawRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** What the server does with a request: `index` counts the requests it has seen, from 0. */
export type FaultHandler = (request: RawRequest, socket: Socket, index: number) => void;

/** A running fault server. */
export interface FaultServer {
  /** `http://127.0.0.1:port` or `https://127.0.0.1:port`. */
  readonly origin: string;
  readonly port: number;
  /** Every request the server read, in order. */
  readonly requests: RawRequest[];
  /** Stops listening and destroys every open connection. Safe to call twice. */
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  410: "Gone",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The status line and headers of a response, `Connection: close` included. */
export function head(status: number, headers: Record<string, string | number> = {}): string {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`];
  for (const [name, value] of Object.entries({ connection: "close", ...headers })) lines.push(`${name}: ${value}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Writes a complete response with a Content-Length and closes the connection. */
export function answer(
  socket: Socket,
  status: number,
  body: string | Uint8Array = "",
  headers: Record<string, string | number> = {},
): void {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  socket.write(head(status, { "content-length": bytes.byteLength, ...headers }));
  finish(socket, bytes);
}

/**
 * Writes `data`, if any, and closes the connection. Deno's node:tls leaves the connection open
 * on `end("")` with an empty chunk, so an empty reply ends with a bare `end()`.
 */
export function finish(socket: Socket, data: string | Uint8Array = ""): void {
  if (data.length > 0) socket.end(data);
  else socket.end();
}

/** Writes a JSON response and closes the connection. */
export function answerJson(
  socket: Socket,
  status: number,
  value: unknown,
  headers: Record<string, string | number> = {},
): void {
  answer(socket, status, JSON.stringify(value), { "content-type": "application/json", ...headers });
}

function indexOfBlankLine(buffer: Uint8Array): number {
  for (let i = 0; i + 3 < buffer.length; i++) {
    if (buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10) return i;
  }
  return -1;
}

/**
 * Starts a fault server on 127.0.0.1 with a random port: plain TCP, or TLS with `tls`'s
 * certificate. One request per connection (every answer says `Connection: close`).
 */
export async function faultServer(
  handle: FaultHandler,
  tls?: { readonly cert: string; readonly key: string },
): Promise<FaultServer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // A client that gives up (timeout, size cap, abort) resets the connection: not a failure here.
    socket.on("error", () => {});
    let buffer = new Uint8Array(0);
    let dispatched = false;
    socket.on("data", (chunk: Uint8Array) => {
      if (dispatched) return;
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer);
      joined.set(chunk, buffer.length);
      buffer = joined;
      const end = indexOfBlankLine(buffer);
      if (end < 0) return;
      const [requestLine = "", ...lines] = new TextDecoder().decode(buffer.subarray(0, end)).split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (buffer.length < end + 4 + length) return;
      dispatched = true;
      const [method = "", path = ""] = requestLine.split(" ");
      const request = {
        method,
        path,
        headers,
        body: new TextDecoder().decode(buffer.subarray(end + 4, end + 4 + length)),
      };
      requests.push(request);
      handle(request, socket, requests.length - 1);
    });
  };
  const server: Server = tls
    ? createTlsServer({ cert: tls.cert, key: tls.key }, onConnection) as unknown as Server
    : createNetServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    origin: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** A fake clock whose `sleep` records each delay and advances the clock at once. */
export interface FakeTime {
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Every delay asked for, in order. */
  readonly sleeps: number[];
  /** Moves the clock forward. */
  advance(ms: number): void;
  /** Milliseconds since the clock was created. */
  elapsed(): number;
}

/** A fake clock starting at `start`. */
export function fakeTime(start = 1_700_000_000_000): FakeTime {
  let time = start;
  const sleeps: number[] = [];
  return {
    now: () => time,
    sleeps,
    sleep: (ms, signal) => {
      if (signal?.aborted) return Promise.reject(signal.reason);
      sleeps.push(ms);
      time += ms;
      return Promise.resolve();
    },
    advance: (ms) => {
      time += ms;
    },
    elapsed: () => time - start,
  };
}

/**
 * A `sleep` that never resolves on its own: it only rejects, with the reason, when the signal
 * aborts. `started` resolves when the first wait begins.
 */
export function stuckSleep(): {
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  started: Promise<number>;
  sleeps: number[];
} {
  let begin!: (ms: number) => void;
  const started = new Promise<number>((resolve) => (begin = resolve));
  const sleeps: number[] = [];
  return {
    started,
    sleeps,
    sleep: (ms, signal) =>
      new Promise<void>((_resolve, reject) => {
        sleeps.push(ms);
        begin(ms);
        if (signal?.aborted) return reject(signal.reason);
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
  };
}

/** Settles like `promise`, or rejects when it has not settled within `ms` of real time. */
export async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`The call did not settle within ${ms} ms: it hangs`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}
