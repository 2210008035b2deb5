/**
 * HTTP/1.1 over a socket the client opens itself (`node:net` or `node:tls`, present on Deno,
 * Bun and Node), for the requests that must not go the way a runtime's `fetch` sends them:
 * Service Fabric's, whose certificate is pinned before a byte is written (src/pinned_fetch.ts),
 * and every local endpoint's, which no proxy may see (src/direct_fetch.ts, docs/security.md).
 * One request per connection (`Connection: close`), the response returned as soon as its head
 * has arrived with a streamed body, so that the transport's size cap, timeout and handling of a
 * connection broken mid-body apply as with `fetch`.
 *
 * The reader is built for a hostile peer: every step is linear in what arrived (no rescanning
 * of what was already searched), the head is capped at 64 KiB (interim 1xx heads included), a
 * chunk-size line at {@linkcode MAX_CHUNK_LINE_BYTES}, and the framing bytes of a body at
 * {@linkcode MAX_WIRE_BODY_BYTES}; no error about the peer's bytes quotes them.
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import type { FetchLike, Source } from "./types.ts";

/** The socket events and calls the client uses: `node:net`'s and `node:tls`'s sockets alike. */
export interface Socket {
  once(event: "connect" | "secureConnect", listener: () => void): void;
  once(event: "error", listener: (error: Error) => void): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "close", listener: () => void): void;
  write(data: Uint8Array): void;
  destroy(error?: Error): void;
}

/** A `node:tls` socket: a {@linkcode Socket} that also shows the peer's certificate. */
export interface TlsSocket extends Socket {
  getPeerCertificate(): { fingerprint?: string } | null;
}

/** The part of `node:tls` the socket transports use (pinned for Service Fabric, verified for local `https:`). */
export interface TlsModule {
  connect(options: {
    host: string;
    port: number;
    servername?: string;
    rejectUnauthorized: boolean;
    ALPNProtocols?: string[];
  }): TlsSocket;
}

/** The host of a URL as a socket takes it (no IPv6 brackets), and whether it is a name that SNI carries. */
export function socketHost(url: URL): { host: string; servername?: string } {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return /^[\d.]+$|:/.test(host) ? { host } : { host, servername: host };
}

/** How a connection is opened and when it may carry the request. */
export interface Connector {
  /** Opens a connection to the URL's host and port; `ready` is the event after which it may be written. */
  open(url: URL): { readonly socket: Socket; readonly ready: "connect" | "secureConnect" };
  /** Runs once the connection is ready: an error ends it before a single byte is written. */
  check?(socket: Socket, endpoint: string): Error | undefined;
}

/** The largest response head accepted, interim heads included. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** The longest chunk-size line accepted (hexadecimal size and extensions; a real one is a few bytes). */
export const MAX_CHUNK_LINE_BYTES = 256;

/**
 * The most bytes a body may take on the wire, framing included. The transport caps the decoded
 * body at 1 MiB; this caps what chunk framing could add around it (a million one-byte chunks).
 */
export const MAX_WIRE_BODY_BYTES = 4 * 1024 * 1024;

/** The bytes of `chunks`, one after the other, in a new array (also the emulator's DER writer's and the sign-in tools' output). */
export function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * An `invalid_response` error. Like every error made here from the server's bytes, its message
 * never quotes them: a hostile server can echo the request's secret header in its answer.
 */
function invalid(source: Source, problem: string, endpoint?: string): ManagedIdentityError {
  return new ManagedIdentityError("invalid_response", `Cannot use the response of "${source}": ${problem}`, {
    source,
    endpoint,
  });
}

/** A response head: status and headers. */
interface Head {
  readonly status: number;
  readonly headers: Headers;
}

/** Parses one head; an error about it never quotes its bytes. */
function parseHead(bytes: Uint8Array, source: Source, endpoint?: string): Head {
  // One character per byte, as fetch reads header bytes.
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  const [statusLine = "", ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!match) throw invalid(source, "the server did not answer with HTTP/1.x", endpoint);
  const status = Number(match[1]);
  if (status < 100 || status > 599) throw invalid(source, `the status ${match[1]} is not an HTTP status`, endpoint);
  if (status === 101) throw invalid(source, "the server switched protocols (101), which was not asked for", endpoint);
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      // The runtime's message quotes the header, whose name or value may echo the secret: not kept.
      throw invalid(source, "a header has characters HTTP refuses", endpoint);
    }
  }
  return { status, headers };
}

/** Bytes gathered across packets, in one buffer that doubles as it fills (linear in what arrives). */
class Gathered {
  #buffer = new Uint8Array(1024);
  size = 0;

  add(bytes: Uint8Array): void {
    if (this.size + bytes.length > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.size + bytes.length));
      grown.set(this.#buffer.subarray(0, this.size));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.size);
    this.size += bytes.length;
  }

  get bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.size);
  }

  /** Drops the first `count` bytes. */
  drop(count: number): void {
    this.#buffer.copyWithin(0, count, this.size);
    this.size -= count;
  }

  /** The index of the first CRLF (or CRLF CRLF) at or after `from`, or -1. */
  find(from: number, double: boolean): number {
    const bytes = this.#buffer;
    const last = this.size - (double ? 4 : 2);
    for (let i = Math.max(0, from); i <= last; i++) {
      if (bytes[i] === 13 && bytes[i + 1] === 10 && (!double || (bytes[i + 2] === 13 && bytes[i + 3] === 10))) {
        return i;
      }
    }
    return -1;
  }
}

/**
 * Reads heads off the start of the stream, skipping interim (1xx) ones as HTTP/1.1 clients must
 * (RFC 9110 section 15.2), until the final head; each byte is searched once.
 */
class HeadReader {
  readonly #gathered = new Gathered();
  #scanned = 0;
  #total = 0;
  readonly #source: Source;
  readonly #endpoint: string | undefined;

  constructor(source: Source, endpoint?: string) {
    this.#source = source;
    this.#endpoint = endpoint;
  }

  /** Adds bytes; returns the final head and the bytes after it once it is complete. */
  push(bytes: Uint8Array): { head: Head; rest: Uint8Array } | undefined {
    this.#total += bytes.length;
    this.#gathered.add(bytes);
    for (;;) {
      const end = this.#gathered.find(this.#scanned - 3, true);
      if (end < 0) {
        this.#scanned = this.#gathered.size;
        if (this.#total > MAX_HEAD_BYTES) {
          throw invalid(this.#source, "the response head is larger than 64 KiB", this.#endpoint);
        }
        return undefined;
      }
      const head = parseHead(this.#gathered.bytes.subarray(0, end), this.#source, this.#endpoint);
      if (head.status >= 200) return { head, rest: this.#gathered.bytes.slice(end + 4) };
      // Interim heads are dropped, but count towards the limit.
      this.#gathered.drop(end + 4);
      this.#scanned = 0;
    }
  }
}

/**
 * Decodes a body as it arrives, by the head's framing: `Content-Length`, chunked, or until the
 * connection closes. `push` returns the decoded pieces; `done` tells when the body is complete.
 */
export class BodyDecoder {
  done = false;
  #remaining: number;
  readonly #chunked: boolean;
  readonly #line = new Gathered();
  #wire = 0;
  // Chunked states: reading a size line, chunk data, or the CRLF after the data.
  #state: "size" | "data" | "crlf" = "size";
  readonly #fail: (problem: string) => Error;

  constructor(headers: Headers, fail: (problem: string) => Error) {
    this.#fail = fail;
    this.#chunked = /\bchunked\b/i.test(headers.get("transfer-encoding") ?? "");
    const length = headers.get("content-length");
    if (!this.#chunked && length !== null && !/^\d{1,15}$/.test(length)) {
      throw fail("the Content-Length is not a number");
    }
    this.#remaining = this.#chunked || length === null ? Infinity : Number(length);
    if (this.#remaining === 0) this.done = true;
  }

  /** Whether the body ends only when the connection closes. */
  get closeDelimited(): boolean {
    return !this.#chunked && this.#remaining === Infinity;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    if (this.done) return [];
    this.#wire += bytes.length;
    if (this.#wire > MAX_WIRE_BODY_BYTES) throw this.#fail(`the body takes more than ${MAX_WIRE_BODY_BYTES} bytes`);
    if (!this.#chunked) {
      const piece = bytes.subarray(0, Math.min(bytes.length, this.#remaining));
      if (this.#remaining !== Infinity) this.#remaining -= piece.length;
      if (this.#remaining === 0) this.done = true;
      return piece.length > 0 ? [piece] : [];
    }
    const out: Uint8Array[] = [];
    let buffer = bytes;
    while (!this.done && buffer.length > 0) {
      if (this.#state === "size") {
        // A size line may arrive a byte at a time: gathered (never longer than the cap) until its CRLF.
        const line = this.#line;
        const before = line.size;
        line.add(buffer.subarray(0, MAX_CHUNK_LINE_BYTES + 2 - before));
        const end = line.find(before - 1, false);
        if (end < 0) {
          if (line.size > MAX_CHUNK_LINE_BYTES) {
            throw this.#fail(`a chunk-size line is longer than ${MAX_CHUNK_LINE_BYTES} bytes`);
          }
          return out;
        }
        buffer = buffer.subarray(end + 2 - before);
        const text = new TextDecoder().decode(line.bytes.subarray(0, end)).split(";")[0]!.trim();
        line.drop(line.size);
        if (!/^[0-9a-f]{1,12}$/i.test(text)) throw this.#fail("the chunked body is malformed");
        const size = parseInt(text, 16);
        if (size === 0) this.done = true;
        else [this.#remaining, this.#state] = [size, "data"];
      } else if (this.#state === "data") {
        const piece = buffer.subarray(0, Math.min(buffer.length, this.#remaining));
        out.push(piece);
        buffer = buffer.subarray(piece.length);
        this.#remaining -= piece.length;
        if (this.#remaining === 0) this.#state = "crlf";
      } else {
        // The CRLF after a chunk's data, a byte at a time (it may arrive split): `#remaining` is 0
        // before the CR and 1 before the LF.
        const cr = this.#remaining === 0;
        if (buffer[0] !== (cr ? 13 : 10)) throw this.#fail("the chunked body is malformed");
        buffer = buffer.subarray(1);
        if (cr) this.#remaining = 1;
        else [this.#remaining, this.#state] = [0, "size"];
      }
    }
    return out;
  }
}

const NULL_BODY = (status: number) => status === 204 || status === 304;

/** Parses a complete HTTP/1.x response (as read until the server closed the connection). */
export function parseHttpResponse(bytes: Uint8Array, source: Source = "ServiceFabric"): Response {
  const parsed = new HeadReader(source).push(bytes);
  if (!parsed) throw new Error("The connection closed before a complete HTTP response");
  const { head: { status, headers }, rest } = parsed;
  const decoder = new BodyDecoder(headers, (problem) => invalid(source, problem));
  const body = concat(decoder.push(rest));
  if (!decoder.done && !decoder.closeDelimited) throw new Error("The connection closed before the whole body arrived");
  return new Response(NULL_BODY(status) ? null : body, { status, headers });
}

/**
 * A `fetch` that sends each request as HTTP/1.1 on a connection `connector` opens, for `source`.
 * Supports what the managed identity requests need: any method, a body, `Connection: close`.
 * Once the request has settled (its body read, cancelled or failed, or its signal aborted) the
 * socket is destroyed and no listener is left on the request's signal, so nothing of the
 * request keeps a process alive.
 */
export function socketFetch(source: Source, connector: Connector): FetchLike {
  return async (request) => {
    const url = new URL(request.url);
    const body = request.method === "GET" || request.method === "HEAD"
      ? new Uint8Array()
      : new Uint8Array(await request.arrayBuffer());
    const head = [`${request.method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
    for (const [name, value] of request.headers) head.push(`${name}: ${value}`);
    if (body.length > 0) head.push(`Content-Length: ${body.length}`);
    head.push("Connection: close", "", "");
    const message = concat([new TextEncoder().encode(head.join("\r\n")), body]);
    const endpoint = `${url.origin}${url.pathname}`;
    const fail = (problem: string) => invalid(source, problem, endpoint);
    return await new Promise<Response>((resolve, reject) => {
      const { signal } = request;
      let finished = false;
      let socket: Socket | undefined;
      let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
      // Ends the connection once: no socket, no listener left behind.
      const end = () => {
        finished = true;
        signal.removeEventListener("abort", onAbort);
        socket?.destroy();
      };
      // Before the head: the fetch rejects. After it: the body stream errors.
      const failWith = (error: Error) => {
        if (finished) return;
        end();
        if (stream) stream.error(error);
        else reject(error);
      };
      const onAbort = () => failWith(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      let ready: "connect" | "secureConnect";
      try {
        ({ socket, ready } = connector.open(url));
      } catch (error) {
        return failWith(error as Error);
      }
      const connection = socket;
      connection.once("error", failWith);
      connection.once(ready, () => {
        if (finished) return;
        const refused = connector.check?.(connection, endpoint);
        // Nothing has been written yet: a refused connection never carries the request's secret.
        if (refused) return failWith(refused);
        connection.write(message);
      });
      const heads = new HeadReader(source, endpoint);
      let decoder: BodyDecoder | undefined;
      const deliver = (bytes: Uint8Array) => {
        for (const piece of decoder!.push(bytes)) stream!.enqueue(piece.slice());
        if (decoder!.done && !finished) {
          end();
          stream!.close();
        }
      };
      connection.on("data", (chunk) => {
        if (finished) return;
        try {
          if (decoder) return deliver(chunk);
          const parsed = heads.push(chunk);
          if (!parsed) return;
          decoder = new BodyDecoder(parsed.head.headers, fail);
          if (NULL_BODY(parsed.head.status)) {
            end();
            return resolve(new Response(null, parsed.head));
          }
          let controller!: ReadableStreamDefaultController<Uint8Array>;
          const response = new Response(
            new ReadableStream<Uint8Array>({
              start: (c) => {
                controller = c;
              },
              cancel: end,
            }),
            parsed.head,
          );
          // Only once the Response exists (an odd status makes the constructor throw, which
          // must reject the fetch) do failures go to the body stream.
          stream = controller;
          resolve(response);
          deliver(parsed.rest);
        } catch (error) {
          failWith(error as Error);
        }
      });
      connection.on("close", () => {
        if (finished) return;
        if (decoder?.closeDelimited) {
          end();
          return stream?.close();
        }
        failWith(
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
