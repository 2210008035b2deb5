/**
 * A `fetch` that pins the server's TLS certificate by its SHA-1 thumbprint, for Service Fabric
 * (docs/security.md). Plain `fetch` cannot pin a certificate, so this opens the TLS
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

// A response head larger than this is refused (the body's own cap is the transport's).
const MAX_HEAD_BYTES = 64 * 1024;

/** The bytes of `chunks`, one after the other, in a new array (also the emulator's DER writer's). */
export function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function indexOfCrlf(bytes: Uint8Array, from: number, double: boolean): number {
  for (let i = from; i + (double ? 3 : 1) < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && (!double || (bytes[i + 2] === 13 && bytes[i + 3] === 10))) return i;
  }
  return -1;
}

/** A response head: status and headers. */
interface Head {
  readonly status: number;
  readonly headers: Headers;
}

/**
 * An `invalid_response` error. Like every error made here from the server's bytes, its message
 * never quotes them: a hostile server can echo the request's Secret header in its answer.
 */
function invalid(problem: string, endpoint?: string): ManagedIdentityError {
  return new ManagedIdentityError("invalid_response", `Cannot use the response of "ServiceFabric": ${problem}`, {
    source: "ServiceFabric",
    endpoint,
  });
}

/** Parses one head; an error about it never quotes its bytes. */
function parseHead(bytes: Uint8Array, endpoint?: string): Head {
  // One character per byte, as fetch reads header bytes.
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!match) throw new Error("The server did not answer with HTTP/1.x");
  const status = Number(match[1]);
  if (status < 100 || status > 599) throw invalid(`the status ${match[1]} is not an HTTP status`, endpoint);
  if (status === 101) throw invalid("the server switched protocols (101), which was not asked for", endpoint);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      // The runtime's message quotes the header, whose name or value may echo the Secret: not kept.
      throw invalid("a header has characters HTTP refuses", endpoint);
    }
  }
  return { status, headers };
}

/**
 * Takes heads off the start of `bytes`, skipping interim (1xx) ones as HTTP/1.1 clients must
 * (RFC 9110 section 15.2): the final head, if complete, and the bytes not yet used.
 */
function takeHead(bytes: Uint8Array, endpoint?: string): { head?: Head; rest: Uint8Array } {
  for (;;) {
    const end = indexOfCrlf(bytes, 0, true);
    if (end < 0) return { rest: bytes };
    const head = parseHead(bytes.subarray(0, end), endpoint);
    bytes = bytes.subarray(end + 4);
    if (head.status >= 200) return { head, rest: bytes };
  }
}

/**
 * Decodes a body as it arrives, by the head's framing: `Content-Length`, chunked, or until the
 * connection closes. `push` returns the decoded pieces; `done` tells when the body is complete.
 */
class BodyDecoder {
  done = false;
  #remaining: number;
  readonly #chunked: boolean;
  #pending: Uint8Array = new Uint8Array();
  // Chunked states: reading a size line, chunk data, or the CRLF after the data.
  #state: "size" | "data" | "crlf" = "size";

  constructor(headers: Headers) {
    this.#chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
    const length = headers.get("content-length");
    this.#remaining = this.#chunked || length === null ? Infinity : Number(length);
    if (!(this.#remaining >= 0)) throw new Error("The server sent an invalid Content-Length");
    if (this.#remaining === 0) this.done = true;
  }

  /** Whether the body ends only when the connection closes. */
  get closeDelimited(): boolean {
    return !this.#chunked && this.#remaining === Infinity;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    if (this.done) return [];
    if (!this.#chunked) {
      const piece = bytes.subarray(0, Math.min(bytes.length, this.#remaining));
      if (this.#remaining !== Infinity) this.#remaining -= piece.length;
      if (this.#remaining === 0) this.done = true;
      return piece.length > 0 ? [piece] : [];
    }
    const out: Uint8Array[] = [];
    let buffer = this.#pending.length > 0 ? concat([this.#pending, bytes]) : bytes;
    while (!this.done) {
      if (this.#state === "size") {
        const end = indexOfCrlf(buffer, 0, false);
        if (end < 0) break;
        const size = parseInt(new TextDecoder().decode(buffer.subarray(0, end)).split(";")[0]!.trim(), 16);
        if (!(size >= 0)) throw new Error("The server sent a malformed chunked body");
        buffer = buffer.subarray(end + 2);
        if (size === 0) this.done = true;
        else [this.#remaining, this.#state] = [size, "data"];
      } else if (this.#state === "data") {
        if (buffer.length === 0) break;
        const piece = buffer.subarray(0, Math.min(buffer.length, this.#remaining));
        out.push(piece);
        buffer = buffer.subarray(piece.length);
        this.#remaining -= piece.length;
        if (this.#remaining === 0) this.#state = "crlf";
      } else {
        if (buffer.length < 2) break;
        buffer = buffer.subarray(2);
        this.#state = "size";
      }
    }
    this.#pending = buffer.slice();
    return out;
  }
}

const NULL_BODY = (status: number) => status === 204 || status === 304;

/** Parses a complete HTTP/1.x response (as read until the server closed the connection). */
export function parseHttpResponse(bytes: Uint8Array): Response {
  const { head, rest } = takeHead(bytes);
  if (!head) throw new Error("The connection closed before a complete HTTP response");
  const { status, headers } = head;
  const decoder = new BodyDecoder(headers);
  const body = concat(decoder.push(rest));
  if (!decoder.done && !decoder.closeDelimited) throw new Error("The connection closed before the whole body arrived");
  return new Response(NULL_BODY(status) ? null : body, { status, headers });
}

/**
 * A `fetch` that talks only to a server whose leaf certificate has the SHA-1 thumbprint `pin`.
 * Supports what the Service Fabric request needs: HTTPS, any method, `Connection: close`. The
 * response is returned as soon as its head has arrived, with a streamed body, so that the
 * transport's size cap and its handling of a connection broken mid-body apply here too.
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
    const endpoint = `${url.origin}${url.pathname}`;
    return await new Promise<Response>((resolve, reject) => {
      const socket = tls().connect({
        host,
        port: Number(url.port || 443),
        ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }),
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      });
      let headBytes: Uint8Array = new Uint8Array();
      let headSize = 0;
      let decoder: BodyDecoder | undefined;
      let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
      let finished = false;
      // Before the head: the fetch rejects. After it: the body stream errors.
      const fail = (error: Error) => {
        if (finished) return;
        finished = true;
        socket.destroy();
        request.signal.removeEventListener("abort", onAbort);
        if (stream) stream.error(error);
        else reject(error);
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        request.signal.removeEventListener("abort", onAbort);
        stream?.close();
        socket.destroy();
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
              { source: "ServiceFabric", endpoint },
            ),
          );
        }
        socket.write(message);
      });
      const deliver = (bytes: Uint8Array) => {
        for (const piece of decoder!.push(bytes)) stream!.enqueue(piece.slice());
        if (decoder!.done) finish();
      };
      socket.on("data", (chunk) => {
        if (finished) return;
        try {
          if (decoder) return deliver(chunk);
          headSize += chunk.length;
          const { head: parsed, rest } = takeHead(concat([headBytes, chunk]), endpoint);
          if (!parsed) {
            // Interim heads already read are dropped, but count towards the limit.
            headBytes = rest;
            if (headSize > MAX_HEAD_BYTES) fail(new Error("The response head is larger than 64 KiB"));
            return;
          }
          decoder = new BodyDecoder(parsed.headers);
          if (NULL_BODY(parsed.status)) {
            resolve(new Response(null, parsed));
            return finish();
          }
          let controller!: ReadableStreamDefaultController<Uint8Array>;
          const response = new Response(
            new ReadableStream<Uint8Array>({
              start: (c) => {
                controller = c;
              },
              cancel: () => {
                finished = true;
                socket.destroy();
              },
            }),
            parsed,
          );
          // Only once the Response exists (an odd status makes the constructor throw, which
          // must reject the fetch) do failures go to the body stream.
          stream = controller;
          resolve(response);
          deliver(rest);
        } catch (error) {
          fail(error as Error);
        }
      });
      socket.on("close", () => {
        if (decoder?.closeDelimited) return finish();
        fail(
          new Error(
            decoder
              ? "The connection closed before the whole body arrived"
              : "The connection closed before a complete HTTP response",
          ),
        );
      });
    });
  };
}
