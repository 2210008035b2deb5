/**
 * The HTTP/1.1 reader both socket transports share (src/http1.ts): Service Fabric's pinned TLS
 * and every local endpoint's direct connection. A hostile server must not make it buffer without
 * limit, rescan what it already searched, or hang: a chunk-size line without a line end, heads
 * sent a byte at a time, endless chunk framing.
 */

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { ManagedIdentityError } from "../mod.ts";
import { directFetch } from "../src/direct_fetch.ts";
import { MAX_CHUNK_LINE_BYTES, parseHttpResponse } from "../src/http1.ts";
import { pinnedFetch } from "../src/pinned_fetch.ts";
import type { FetchLike } from "../src/types.ts";
import { faultServer, within } from "./helpers/faults.ts";
import type { Socket } from "node:net";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), "utf8");
const CERT = fixture("test_only_sf_cert.pem");
const KEY = fixture("test_only_sf_key.pem");
const PIN = new X509Certificate(CERT).fingerprint;

const encode = (text: string) => new TextEncoder().encode(text);
const CHUNKED_HEAD = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

/** Writes `piece` every few milliseconds until the client goes away or `count` pieces are sent. */
function flood(socket: Socket, piece: string, count = 100_000): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || sent++ >= count) return clearInterval(timer);
    socket.write(piece);
  }, 1);
  socket.on("close", () => clearInterval(timer));
}

/** Each transport over a server of its kind: plain TCP for the direct one, TLS for the pinned one. */
const TRANSPORTS: [string, boolean, () => FetchLike][] = [
  ["directFetch()", false, () => directFetch("AppService")],
  ["pinnedFetch()", true, () => pinnedFetch(PIN)],
];

for (const [name, secure, transport] of TRANSPORTS) {
  describe(`${name} on a hostile server`, () => {
    const serve = (handle: (socket: Socket) => void) =>
      faultServer((_request, socket) => handle(socket as Socket), secure ? { cert: CERT, key: KEY } : undefined);
    const url = (origin: string) => `${secure ? origin.replace("http:", "https:") : origin}/token`;

    test(`${name} refuses a chunk-size line that never ends, at once and without buffering it`, async () => {
      const server = await serve((socket) => {
        socket.write(CHUNKED_HEAD);
        flood(socket, "1".repeat(16 * 1024));
      });
      try {
        const response = await within(2000, Promise.resolve(transport()(new Request(url(server.origin)))));
        const error = await within(2000, response.text().then(() => undefined, (e: unknown) => e));
        assert.ok(error instanceof ManagedIdentityError, String(error));
        assert.equal(error.code, "invalid_response");
        assert.match(error.message, new RegExp(`chunk-size line is longer than ${MAX_CHUNK_LINE_BYTES} bytes`));
      } finally {
        await server.close();
      }
    });

    test(`${name} reads a head and a chunked body sent a byte at a time`, async () => {
      const reply = `HTTP/1.1 200 OK\r\nX-Pad: ${"p".repeat(8000)}\r\nTransfer-Encoding: chunked\r\n\r\n` +
        "2\r\nok\r\n3;ext=1\r\n!!!\r\n0\r\n\r\n";
      const server = await serve((socket) => {
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed) return clearInterval(timer);
          // Many bytes per tick, each its own write: the reader sees tiny packets.
          for (let n = 0; n < 400 && i < reply.length; n++) socket.write(reply[i++]!);
          if (i >= reply.length) clearInterval(timer);
        }, 1);
      });
      try {
        const response = await within(10_000, Promise.resolve(transport()(new Request(url(server.origin)))));
        assert.equal(await within(10_000, response.text()), "ok!!!");
      } finally {
        await server.close();
      }
    });

    test(`${name} refuses chunk framing that never ends, past the wire cap`, async () => {
      // One-byte chunks, each with a long extension: little body, endless framing.
      const server = await serve((socket) => {
        socket.write(CHUNKED_HEAD);
        flood(socket, `1;${"e".repeat(200)}\r\nx\r\n`.repeat(200));
      });
      try {
        const response = await within(5000, Promise.resolve(transport()(new Request(url(server.origin)))));
        const error = await within(20_000, response.text().then(() => undefined, (e: unknown) => e));
        assert.ok(error instanceof ManagedIdentityError, String(error));
        assert.match(error.message, /the body takes more than \d+ bytes/);
      } finally {
        await server.close();
      }
    });

    test(`${name} refuses a Content-Length that is not a number`, async () => {
      const server = await serve((socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok"));
      try {
        await assert.rejects(
          within(2000, Promise.resolve(transport()(new Request(url(server.origin))))),
          /Content-Length is not a number/,
        );
      } finally {
        await server.close();
      }
    });
  });
}

describe("parseHttpResponse()", () => {
  test("parseHttpResponse() refuses a malformed chunk and a chunk without its CRLF", () => {
    assert.throws(() => parseHttpResponse(encode(`${CHUNKED_HEAD}zz\r\nok\r\n0\r\n\r\n`)), /malformed/);
    assert.throws(() => parseHttpResponse(encode(`${CHUNKED_HEAD}2\r\nokXY0\r\n\r\n`)), /malformed/);
  });
});
