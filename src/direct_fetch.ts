/**
 * The `fetch` of every local endpoint (IMDS, App Service, Azure Arc, Cloud Shell, Azure ML):
 * HTTP/1.1 on a connection of the client's own (src/http1.ts), straight to the endpoint's host,
 * so that no proxy ever sees the request. Microsoft's IMDS documentation says IMDS must not be
 * reached through a proxy; the other local endpoints carry a secret header (the identity header,
 * Arc's key, Azure ML's secret) that a proxy would read in clear and could answer with a token of
 * its choosing. Deno's and Bun's `fetch` honour `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` (Node's
 * with `NODE_USE_ENV_PROXY=1`), and not one of them has a per-request way to turn that off, so
 * the client does not use it for these (docs/security.md, "No proxy for local endpoints").
 * Loaded on the first request of a local source. A runtime without `node:net` (Deno, Bun and
 * Node all have it) gets the runtime's `fetch`.
 * @module
 */

import { type Socket, socketFetch, socketHost, type TlsModule } from "./http1.ts";
import { loadBuiltin } from "./runtime.ts";
import type { FetchLike, Source } from "./types.ts";

interface NetModule {
  connect(options: { host: string; port: number; autoSelectFamily?: boolean }): Socket;
}

/**
 * A `fetch` for `source`'s local endpoint that never goes through a proxy: `http:` over
 * `node:net`, `https:` over `node:tls` with the certificate checked as `fetch` would check it.
 */
export function directFetch(source: Source): FetchLike {
  let net: NetModule;
  let tls: TlsModule;
  try {
    net = loadBuiltin<NetModule>("node:net");
    tls = loadBuiltin<TlsModule>("node:tls");
  } catch {
    return (request) => globalThis.fetch(request);
  }
  return socketFetch(source, {
    open: (url) => {
      const { host, servername } = socketHost(url);
      if (url.protocol === "http:") {
        // `localhost` may be ::1 or 127.0.0.1: try both, as fetch does.
        return {
          socket: net.connect({ host, port: Number(url.port || 80), autoSelectFamily: true }),
          ready: "connect",
        };
      }
      const options = { host, port: Number(url.port || 443), rejectUnauthorized: true, ALPNProtocols: ["http/1.1"] };
      return { socket: tls.connect(servername ? { ...options, servername } : options), ready: "secureConnect" };
    },
  });
}
