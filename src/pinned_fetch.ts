/**
 * A `fetch` that pins the server's TLS certificate by its SHA-1 thumbprint, for Service Fabric
 * (docs/security.md). Plain `fetch` cannot pin a certificate, so this opens the TLS
 * connection itself with `node:tls` (present on Deno, Bun and Node), compares the leaf
 * certificate's fingerprint with the pin in constant time once the handshake has completed, and
 * only then writes an HTTP/1.1 request on that socket (src/http1.ts). A mismatch destroys the
 * socket before a single HTTP byte, and so before the `Secret` header, is sent. Chain and host
 * name are not checked: the pin is the trust (the cluster's certificate is self-signed).
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import { socketFetch, socketHost, type TlsModule, type TlsSocket } from "./http1.ts";
import { loadBuiltin } from "./runtime.ts";
import type { FetchLike } from "./types.ts";

/** Upper case hex without separators: `AB:cd 12` becomes `ABCD12`. */
export function normalizeThumbprint(value: string): string {
  return value.replace(/[:\s]/g, "").toUpperCase();
}

/** Compares two equal-length strings without an early exit. */
export function constantTimeEqual(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    difference |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  }
  return difference === 0;
}

/**
 * A `fetch` that talks only to a server whose leaf certificate has the SHA-1 thumbprint `pin`,
 * over `https:` only.
 */
export function pinnedFetch(pin: string, tls: () => TlsModule = () => loadBuiltin<TlsModule>("node:tls")): FetchLike {
  const expected = normalizeThumbprint(pin);
  const send = socketFetch("ServiceFabric", {
    open: (url) => ({
      socket: tls().connect({
        ...socketHost(url),
        port: Number(url.port || 443),
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      }),
      ready: "secureConnect",
    }),
    check: (socket, endpoint) => {
      const fingerprint = normalizeThumbprint((socket as TlsSocket).getPeerCertificate()?.fingerprint ?? "");
      if (constantTimeEqual(fingerprint, expected)) return undefined;
      return new ManagedIdentityError(
        "certificate_mismatch",
        `The server's certificate does not match IDENTITY_SERVER_THUMBPRINT: expected ${expected}, found ${
          fingerprint || "none"
        }`,
        { source: "ServiceFabric", endpoint },
      );
    },
  });
  return (request) => {
    if (new URL(request.url).protocol !== "https:") {
      return Promise.reject(new TypeError(`A pinned request must use https: got "${new URL(request.url).protocol}"`));
    }
    return send(request);
  };
}
