/**
 * Test seams: fake endpoints as `(Request) => Response` handlers that record what they saw,
 * and real loopback HTTP servers (node:http works on Deno, Bun and Node alike).
 */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { TokenCache } from "../../mod.ts";
import { ManagedIdentityClient, type ManagedIdentityClientOptions } from "../../mod.ts";
import { INTERNAL, type InternalOptions } from "../../src/internal.ts";

/** A request as a fake endpoint saw it. */
export interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}

/** The one request a fake endpoint saw; fails unless there was exactly one. */
export function onlyRequest(seen: readonly Seen[]): Seen {
  assert.equal(seen.length, 1, "expected exactly one request");
  return seen[0]!;
}

/** A seen request's origin and path, without the query string. */
export function endpointOf(seen: Seen): string {
  return `${seen.url.origin}${seen.url.pathname}`;
}

/** A fetch handler that records every request and answers with `answer`. */
export function recorder(
  answer: (request: Request, index: number) => Response | Promise<Response> = () =>
    Response.json({ access_token: "token-value", expires_in: 3600 }),
): { fetch: (request: Request) => Promise<Response>; seen: Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    fetch: async (request) => {
      const body = await request.clone().text();
      seen.push({ method: request.method, url: new URL(request.url), headers: request.headers, body });
      return answer(request, seen.length - 1);
    },
  };
}

/**
 * A client with an isolated cache, no Arc binary on disk, and optional internal overrides. IMDS
 * is not probed first unless `imdsProbe: true` is given: most tests check exact requests and
 * the retry rules that apply once IMDS has answered; tests/first_contact_test.ts tests the probe.
 */
export function testClient(
  options: ManagedIdentityClientOptions,
  internal: InternalOptions = {},
): ManagedIdentityClient {
  return new ManagedIdentityClient({
    cache: new TokenCache(),
    imdsProbe: false,
    ...options,
    [INTERNAL]: { fileExists: () => false, platform: "linux", ...internal },
  } as ManagedIdentityClientOptions);
}

/** A loopback HTTP server; `requests` counts what it received. */
export interface LoopbackServer {
  readonly url: string;
  readonly requests: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

/** Starts a real HTTP server on 127.0.0.1 with a random port. */
export async function loopback(
  handle: (request: IncomingMessage, response: ServerResponse, body: string) => void,
): Promise<LoopbackServer> {
  const requests: LoopbackServer["requests"] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      const body = new TextDecoder().decode(Buffer.concat(chunks));
      requests.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
      handle(request, response, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Writes a JSON response. */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}
