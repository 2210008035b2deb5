/**
 * Real loopback sockets for what only sockets show: a port where nothing listens (a refused
 * connection) and a server that accepts and never answers (a firewalled address). Used by the
 * first-contact tests, the chain interop test and bench/absent.ts.
 */

import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** A port on 127.0.0.1 where nothing listens: a server's port, closed again. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A server that accepts connections and never answers. */
export interface SilentServer {
  readonly origin: string;
  /** Connections that sent a request (Node's fetch may open a spare one that sends nothing). */
  connections(): number;
  close(): Promise<void>;
}

/** Starts a {@linkcode SilentServer} on 127.0.0.1; it closes itself after `lifetimeMs` at the latest. */
export async function silentServer(lifetimeMs = 60_000): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once("data", () => connections++);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  const timer = setTimeout(close, lifetimeMs);
  return { origin: `http://127.0.0.1:${port}`, connections: () => connections, close };
}
