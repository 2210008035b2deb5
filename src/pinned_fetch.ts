/**
 * A `fetch` that pins the server's TLS certificate by its SHA-1 thumbprint, for Service Fabric
 * (PROTOCOL.md section 6). Plain `fetch` cannot pin a certificate, so this opens the TLS
 * connection itself with `node:tls` (present on Deno, Bun and Node), compares the leaf
 * certificate's fingerprint with the pin in constant time once the handshake has completed, and
 * only then writes an HTTP/1.1 request on that socket. A mismatch destroys the socket before a
 * single HTTP byte, and so before the `Secret` header, is sent. Chain and host name are not
 * checked: the pin is the trust (the cluster's certificate is self-signed).
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import { loadBuiltin } from "./runtime.ts";
import type { FetchLike } from "./types.ts";

interface TlsSocket {
  once(event: "secureConnect", listener: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "end" | "close", listener: () => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  getPeerCertificate(): { fingerprint?: string } | null;
  write(data: Uint8Array): void;
  destroy(error?: Error): void;
}

interface TlsModule {
  connect(options: {
    host: string;
    port: number;
    servername?: string;
    rejectUnauthorized: boolean;
    ALPNProtocols?: string[];
  }): TlsSocket;
}

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

const MAX_RESPONSE_BYTES = 1024 * 1024 + 64 * 1024;

function concat(chunks: Uint8Array[]): Uint8Array {
  const size = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function indexOfCrlfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}

function dechunk(body: Uint8Array): Uint8Array {
  const decoder = new TextDecoder();
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    let lineEnd = at;
    while (lineEnd + 1 < body.length && !(body[lineEnd] === 13 && body[lineEnd + 1] === 10)) lineEnd++;
    const size = parseInt(decoder.decode(body.subarray(at, lineEnd)).split(";")[0]!.trim(), 16);
    if (!Number.isFinite(size)) throw new Error("Malformed chunked encoding");
    if (size === 0) return concat(parts);
    const start = lineEnd + 2;
    if (start + size > body.length) throw new Error("Truncated chunked body");
    parts.push(body.subarray(start, start + size));
    at = start + size + 2;
  }
}

/** Parses a complete HTTP/1.1 response (read until the server closed the connection). */
export function parseHttpResponse(bytes: Uint8Array): Response {
  const headerEnd = indexOfCrlfCrlf(bytes);
  if (headerEnd < 0) throw new Error("The connection closed before a complete HTTP response");
  const [statusLine = "", ...lines] = new TextDecoder().decode(bytes.subarray(0, headerEnd)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!status) throw new Error("The server did not answer with HTTP/1.x");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  let body = bytes.subarray(headerEnd + 4);
  if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) {
    body = dechunk(body);
  } else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length"));
    if (body.length < length) throw new Error("The connection closed before the whole body arrived");
    body = body.subarray(0, length);
  }
  const code = Number(status[1]);
  const nullBody = code === 204 || code === 304 || (code >= 100 && code < 200);
  return new Response(nullBody ? null : new Uint8Array(body), { status: code, headers });
}

/**
 * A `fetch` that talks only to a server whose leaf certificate has the SHA-1 thumbprint `pin`.
 * Supports what the Service Fabric request needs: HTTPS, any method, `Connection: close`.
 */
export function pinnedFetch(pin: string, tls: () => TlsModule = () => loadBuiltin<TlsModule>("node:tls")): FetchLike {
  const expected = normalizeThumbprint(pin);
  return async (request) => {
    const url = new URL(request.url);
    if (url.protocol !== "https:") throw new TypeError(`A pinned request must use https: got "${url.protocol}"`);
    const body = request.method === "GET" || request.method === "HEAD"
      ? new Uint8Array()
      : new Uint8Array(await request.arrayBuffer());
    const head = [`${request.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    for (const [name, value] of request.headers) head.push(`${name}: ${value}`);
    if (body.length > 0) head.push(`Content-Length: ${body.length}`);
    head.push("Connection: close", "", "");
    const message = concat([new TextEncoder().encode(head.join("\r\n")), body]);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    return await new Promise<Response>((resolve, reject) => {
      const socket = tls().connect({
        host,
        port: Number(url.port || 443),
        ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      });
      const chunks: Uint8Array[] = [];
      let received = 0;
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(error);
      };
      const onAbort = () => fail(request.signal.reason instanceof Error ? request.signal.reason : new Error("aborted"));
      if (request.signal.aborted) return onAbort();
      request.signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", fail);
      socket.once("secureConnect", () => {
        const fingerprint = normalizeThumbprint(socket.getPeerCertificate()?.fingerprint ?? "");
        if (!constantTimeEqual(fingerprint, expected)) {
          // Nothing has been written yet: the Secret header never leaves the process.
          return fail(
            new ManagedIdentityError(
              "certificate_mismatch",
              `The server's certificate does not match IDENTITY_SERVER_THUMBPRINT: expected ${expected}, found ${
                fingerprint || "none"
              }`,
              { source: "ServiceFabric", endpoint: `${url.origin}${url.pathname}` },
            ),
          );
        }
        socket.write(message);
      });
      socket.on("data", (chunk) => {
        received += chunk.byteLength;
        if (received > MAX_RESPONSE_BYTES) return fail(new Error("The response is larger than 1 MiB"));
        chunks.push(chunk);
      });
      socket.on("close", () => {
        request.signal.removeEventListener("abort", onAbort);
        if (settled) return;
        try {
          const response = parseHttpResponse(concat(chunks));
          settled = true;
          resolve(response);
        } catch (error) {
          fail(error as Error);
        }
      });
    });
  };
}
