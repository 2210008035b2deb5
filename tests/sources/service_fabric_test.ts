import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { ManagedIdentityError } from "../../mod.ts";
import { parseHttpResponse } from "../../src/http1.ts";
import { constantTimeEqual, normalizeThumbprint, pinnedFetch } from "../../src/pinned_fetch.ts";
import { assertNotShown, rejectsWith } from "../helpers/checks.ts";
import { loopback, onlyRequest, recorder, sendJson, testClient } from "../helpers/fake.ts";
import { type FaultServer, faultServer, finish, within } from "../helpers/faults.ts";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)), "utf8");
const CERT = fixture("test_only_sf_cert.pem");
const KEY = fixture("test_only_sf_key.pem");
const OTHER_CERT = fixture("test_only_other_cert.pem");
const OTHER_KEY = fixture("test_only_other_key.pem");
const PIN = new X509Certificate(CERT).fingerprint; // "AB:CD:..." (SHA-1)
const OTHER_PIN = new X509Certificate(OTHER_CERT).fingerprint;

const ENDPOINT = "https://127.0.0.1:2377/metadata/identity/oauth2/token";
const SECRET = "sf-identity-header-secret";
const env = (overrides: Record<string, string> = {}) => ({
  IDENTITY_ENDPOINT: ENDPOINT,
  IDENTITY_HEADER: SECRET,
  IDENTITY_SERVER_THUMBPRINT: PIN,
  ...overrides,
});

interface HttpsServer {
  url: string;
  requests: { url: string; secret: string | undefined }[];
  close(): Promise<void>;
}

/** A real HTTPS server on loopback with a committed test-only certificate. */
async function httpsServer(
  answer: (url: string) => { status: number; headers?: Record<string, string>; body?: unknown },
  cert = CERT,
  key = KEY,
): Promise<HttpsServer> {
  const requests: HttpsServer["requests"] = [];
  const server = createHttpsServer({ cert, key }, (request, response) => {
    requests.push({ url: request.url ?? "", secret: request.headers["secret"] as string | undefined });
    const { status, headers = {}, body } = answer(request.url ?? "");
    const text = body === undefined ? "" : JSON.stringify(body);
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(text);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/metadata/identity/oauth2/token`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

const tokenBody = { access_token: "sf-token", expires_on: String(Math.floor(Date.now() / 1000) + 7200) };

describe("Service Fabric requests", () => {
  test("acquireToken() sends client capabilities as xms_cc on Service Fabric", async () => {
    const fake = recorder();
    const client = testClient({ env: env(), fetch: fake.fetch, clientCapabilities: [" cp1 ", "", "llt"] });
    await client.acquireToken("https://vault.azure.net");
    assert.equal(onlyRequest(fake.seen).url.searchParams.get("xms_cc"), "cp1,llt");
  });

  test("acquireToken() with claims sends the SHA-256 of the cached token as token_sha256_to_refresh", async () => {
    const fake = recorder(() => Response.json({ access_token: "test_token", expires_in: 3600 }));
    const client = testClient({ env: env(), fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    assert.equal(fake.seen[0]!.url.searchParams.has("token_sha256_to_refresh"), false);
    await client.acquireToken("https://vault.azure.net", { claims: '{"access_token":{"nbf":{"essential":true}}}' });
    assert.equal(fake.seen.length, 2);
    // The test vector in docs/sources.md (Service Fabric): SHA-256 of "test_token".
    assert.equal(
      fake.seen[1]!.url.searchParams.get("token_sha256_to_refresh"),
      "cc0af97287543b65da2c7e1476426021826cab166f1e063ed012b855ff819656",
    );
  });

  test("acquireToken() with claims but no cached token sends no token_sha256_to_refresh", async () => {
    const fake = recorder();
    const client = testClient({ env: env(), fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net", { claims: "{}" });
    assert.equal(onlyRequest(fake.seen).url.searchParams.has("token_sha256_to_refresh"), false);
  });

  test("acquireToken() without claims sends no token_sha256_to_refresh even with forceRefresh", async () => {
    const fake = recorder();
    const client = testClient({ env: env(), fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assert.equal(fake.seen[1]!.url.searchParams.has("token_sha256_to_refresh"), false);
  });

  test("other sources never send token_sha256_to_refresh or xms_cc", async () => {
    const fake = recorder();
    const client = testClient({
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
      fetch: fake.fetch,
      clientCapabilities: ["cp1"],
    });
    await client.acquireToken("https://vault.azure.net");
    await client.acquireToken("https://vault.azure.net", { claims: "{}" });
    assert.equal(fake.seen.length, 2);
    for (const seen of fake.seen) {
      assert.equal(seen.url.searchParams.has("xms_cc"), false);
      assert.equal(seen.url.searchParams.has("token_sha256_to_refresh"), false);
    }
  });
});

describe("Service Fabric configuration", () => {
  // The identities it accepts and refuses, and its request, are in tests/sources/table_test.ts.
  test("new ManagedIdentityClient() accepts an objectId on Service Fabric", () => {
    assert.equal(testClient({ env: env(), objectId: "o" }).source, "ServiceFabric");
  });

  test("new ManagedIdentityClient() refuses an http: endpoint on Service Fabric", () => {
    assert.throws(() => testClient({ env: env({ IDENTITY_ENDPOINT: "http://127.0.0.1:2377/token" }) }), (error) => {
      assert.ok(error instanceof ManagedIdentityError);
      assert.equal(error.code, "invalid_configuration");
      assert.match(error.message, /https:/);
      return true;
    });
  });

  test("new ManagedIdentityClient() refuses an endpoint that is not a URL on Service Fabric", () => {
    assert.throws(
      () => testClient({ env: env({ IDENTITY_ENDPOINT: "not a url" }) }),
      (error) => error instanceof ManagedIdentityError && error.code === "invalid_configuration",
    );
  });

  for (const thumbprint of ["abc", "G".repeat(40), "A".repeat(64), "A".repeat(39)]) {
    test(`new ManagedIdentityClient() refuses the thumbprint "${thumbprint}" on Service Fabric`, () => {
      assert.throws(() => testClient({ env: env({ IDENTITY_SERVER_THUMBPRINT: thumbprint }) }), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "invalid_configuration");
        assert.match(error.message, /40 hex/);
        return true;
      });
    });
  }

  test("new ManagedIdentityClient() accepts a thumbprint with colons, spaces and lower case", () => {
    const spaced = PIN.toLowerCase().replace(/:/g, " ");
    assert.equal(testClient({ env: env({ IDENTITY_SERVER_THUMBPRINT: spaced }) }).source, "ServiceFabric");
    assert.equal(normalizeThumbprint(spaced), PIN.replace(/:/g, ""));
  });

  test("the endpoint is captured at construction on Service Fabric", async () => {
    const fake = recorder();
    const variables: Record<string, string> = env();
    const client = testClient({ env: variables, fetch: fake.fetch });
    variables.IDENTITY_ENDPOINT = "https://127.0.0.1:9999/other";
    await client.acquireToken("https://vault.azure.net");
    assert.equal(`${onlyRequest(fake.seen).url.origin}${onlyRequest(fake.seen).url.pathname}`, ENDPOINT);
  });
});

/**
 * A client over a fake Service Fabric endpoint whose waits are recorded, not slept: `answers`
 * are given in turn (the last one again once they run out).
 */
function retryRig(answers: (() => Response)[], options: { retry?: { maxRetries?: number } } = {}) {
  const sleeps: number[] = [];
  const fake = recorder((_request, index) => answers[Math.min(index, answers.length - 1)]!());
  const client = testClient({ env: env(), fetch: fake.fetch, ...options }, {
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    random: () => 0,
  });
  return { client, seen: fake.seen, sleeps };
}

const sfError = (status: number, code: string, headers: Record<string, string> = {}) => () =>
  Response.json({ error: { correlationId: "aaaa0000-bb11-2222-33cc-444444dddddd", code, message: code } }, {
    status,
    headers,
  });

// https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling
describe("Service Fabric retries, as Microsoft's Service Fabric page says", () => {
  for (const status of [404, 400, 401, 403, 408, 410]) {
    test(`acquireToken() does not retry a ${status} on Service Fabric: one request`, async () => {
      const rig = retryRig([sfError(status, "ManagedIdentityNotFound")]);
      const error = await rejectsWith(rig.client.acquireToken("https://vault.azure.net"), "request_failed");
      assert.equal(error.status, status);
      assert.equal(rig.seen.length, 1);
      assert.deepEqual(rig.sleeps, []);
    });
  }

  test("acquireToken() retries a 429 after its Retry-After, then gets the token on Service Fabric", async () => {
    const rig = retryRig([sfError(429, "TooManyRequests", { "retry-after": "3" }), () => Response.json(tokenBody)]);
    assert.equal((await rig.client.acquireToken("https://vault.azure.net")).accessToken, "sf-token");
    assert.equal(rig.seen.length, 2);
    assert.deepEqual(rig.sleeps, [3000]);
  });

  test("acquireToken() backs off 1 s, 2 s, 4 s on a 429 without Retry-After on Service Fabric", async () => {
    const rig = retryRig([sfError(429, "TooManyRequests")]);
    const error = await rejectsWith(rig.client.acquireToken("https://vault.azure.net"), "request_failed");
    assert.equal(error.status, 429);
    assert.equal(rig.seen.length, 4);
    assert.deepEqual(rig.sleeps, [1000, 2000, 4000]);
  });

  for (const status of [500, 501, 502, 503, 504]) {
    test(`acquireToken() retries a ${status} after a short while on Service Fabric`, async () => {
      const rig = retryRig([sfError(status, "InternalServerError"), () => Response.json(tokenBody)]);
      assert.equal((await rig.client.acquireToken("https://vault.azure.net")).accessToken, "sf-token");
      assert.equal(rig.seen.length, 2);
      assert.deepEqual(rig.sleeps, [1000]);
    });
  }

  test("acquireToken() retries a failed connection on Service Fabric", async () => {
    let calls = 0;
    const sleeps: number[] = [];
    const client = testClient({
      env: env(),
      fetch: () => {
        if (calls++ === 0) throw new TypeError("connection refused");
        return Response.json(tokenBody);
      },
    }, { sleep: (ms) => Promise.resolve(void sleeps.push(ms)), random: () => 0 });
    assert.equal((await client.acquireToken("https://vault.azure.net")).accessToken, "sf-token");
    assert.equal(calls, 2);
    assert.deepEqual(sleeps, [1000]);
  });
});

describe("Service Fabric error bodies", () => {
  test("acquireToken() keeps the correlation ID nested in Service Fabric's error body", async () => {
    // The sample error of Microsoft's page, as it is.
    const body =
      '{"error":{"correlationId":"aaaa0000-bb11-2222-33cc-444444dddddd","code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}';
    const client = testClient({ env: env(), fetch: () => new Response(body, { status: 401 }), retry: false });
    const error = await rejectsWith(client.acquireToken("https://vault.azure.net"), "request_failed", "ServiceFabric");
    assert.equal(error.status, 401);
    assert.equal(error.error, "SecretHeaderNotFound");
    assert.equal(error.errorDescription, "Secret is not found in the request headers.");
    assert.equal(error.correlationId, "aaaa0000-bb11-2222-33cc-444444dddddd");
  });

  test("acquireToken() redacts a nested correlation ID that echoes the Secret on Service Fabric", async () => {
    const client = testClient({
      env: env(),
      fetch: (request) =>
        Response.json({
          error: { correlationId: `corr-${request.headers.get("secret")}`, code: "Bad", message: "bad" },
        }, { status: 400 }),
      retry: false,
    });
    const error = await rejectsWith(client.acquireToken("https://vault.azure.net"), "request_failed", "ServiceFabric");
    assert.equal(error.correlationId, "corr-[redacted]");
    assertNotShown(error, SECRET);
  });
});

describe("Service Fabric certificate pinning", () => {
  test("acquireToken() gets a token from a real HTTPS server whose certificate matches the pin", async () => {
    const server = await httpsServer(() => ({ status: 200, body: tokenBody }));
    try {
      const client = testClient({ env: env({ IDENTITY_ENDPOINT: server.url }) });
      const result = await client.acquireToken("https://vault.azure.net");
      assert.equal(result.accessToken, "sf-token");
      assert.equal(result.source, "ServiceFabric");
      assert.equal(server.requests.length, 1);
      assert.equal(server.requests[0]!.secret, SECRET);
      assert.equal(
        server.requests[0]!.url,
        "/metadata/identity/oauth2/token?api-version=2020-05-01&resource=https%3A%2F%2Fvault.azure.net",
      );
    } finally {
      await server.close();
    }
  });

  test("acquireToken() drops the connection before any request when the certificate does not match", async () => {
    const server = await httpsServer(() => ({ status: 200, body: tokenBody }), OTHER_CERT, OTHER_KEY);
    try {
      const client = testClient({ env: env({ IDENTITY_ENDPOINT: server.url }), retry: false });
      await assert.rejects(client.acquireToken("https://vault.azure.net"), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "certificate_mismatch");
        assert.equal(error.source, "ServiceFabric");
        assert.match(error.message, new RegExp(OTHER_PIN.replace(/:/g, "")));
        assert.equal(JSON.stringify(error).includes(SECRET), false);
        return true;
      });
      assert.equal(server.requests.length, 0, "the server must not see a request, and so no Secret header");
    } finally {
      await server.close();
    }
  });

  test("acquireToken() refuses a redirect to a plain HTTP server, which sees no request", async () => {
    const plain = await loopback((_request, response) => sendJson(response, 200, tokenBody));
    const server = await httpsServer(() => ({ status: 302, headers: { location: `${plain.url}/steal` } }));
    try {
      const client = testClient({ env: env({ IDENTITY_ENDPOINT: server.url }), retry: false });
      await assert.rejects(client.acquireToken("https://vault.azure.net"), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "request_failed");
        assert.equal(error.status, 302);
        return true;
      });
      assert.equal(server.requests.length, 1);
      assert.equal(plain.requests.length, 0);
    } finally {
      await server.close();
      await plain.close();
    }
  });

  test("acquireToken() surfaces a Service Fabric error body", async () => {
    const server = await httpsServer(() => ({
      status: 401,
      body: { error: { code: "SecretHeaderNotFound", message: "Secret is not found in the request headers." } },
    }));
    try {
      const client = testClient({ env: env({ IDENTITY_ENDPOINT: server.url }), retry: false });
      await assert.rejects(client.acquireToken("https://vault.azure.net"), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "request_failed");
        assert.equal(error.status, 401);
        assert.equal(error.error, "SecretHeaderNotFound");
        assert.equal(error.errorDescription, "Secret is not found in the request headers.");
        return true;
      });
    } finally {
      await server.close();
    }
  });

  test("a custom fetch replaces pinning on Service Fabric (the caller's responsibility)", async () => {
    const fake = recorder();
    const client = testClient({ env: env({ IDENTITY_SERVER_THUMBPRINT: OTHER_PIN }), fetch: fake.fetch });
    assert.equal((await client.acquireToken("https://vault.azure.net")).accessToken, "token-value");
    assert.equal(fake.seen.length, 1);
  });
});

describe("pinnedFetch()", () => {
  test("pinnedFetch() refuses a non-https URL without connecting", async () => {
    let connects = 0;
    const fetch = pinnedFetch(PIN, () => {
      connects++;
      throw new Error("must not connect");
    });
    await assert.rejects(Promise.resolve(fetch(new Request("http://127.0.0.1:1/x"))), TypeError);
    assert.equal(connects, 0);
  });

  test("constantTimeEqual() compares whole strings", () => {
    assert.equal(constantTimeEqual("ABCD", "ABCD"), true);
    assert.equal(constantTimeEqual("ABCD", "ABCE"), false);
    assert.equal(constantTimeEqual("ABCD", "ABC"), false);
    assert.equal(constantTimeEqual("", ""), true);
  });

  test("parseHttpResponse() reads content-length, chunked and close-delimited bodies", async () => {
    const encode = (text: string) => new TextEncoder().encode(text);
    const sized = parseHttpResponse(encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nokEXTRA"));
    assert.equal(sized.status, 200);
    assert.equal(sized.headers.get("x-a"), "b");
    // Header bytes are read one character per byte, as fetch reads them: UTF-8 is not refused.
    const utf8 = parseHttpResponse(
      new Uint8Array([...encode("HTTP/1.1 204 No\r\nX-B: caf"), 0xc3, 0xa9, 13, 10, 13, 10]),
    );
    assert.equal(utf8.headers.get("x-b"), "caf\u00c3\u00a9");
    assert.equal(await sized.text(), "ok");
    const chunked = parseHttpResponse(
      encode("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"),
    );
    assert.equal(chunked.status, 500);
    assert.equal(await chunked.text(), "abcde");
    const closed = parseHttpResponse(encode("HTTP/1.0 404 Not Found\r\n\r\nbody"));
    assert.equal(await closed.text(), "body");
    assert.throws(() => parseHttpResponse(encode("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort")));
    assert.throws(() => parseHttpResponse(encode("SSH-2.0-OpenSSH\r\n\r\n")));
    assert.throws(() => parseHttpResponse(encode("HTTP/1.1 200 OK\r\nContent-")));
  });
});

/**
 * A raw TLS server with the pinned certificate that answers each request with `reply`'s parts,
 * written one by one a few milliseconds apart (so that they arrive as separate chunks), then
 * closes. `reply` gets the request's Secret header, for the servers that echo it.
 */
async function rawTlsServer(reply: (secret: string) => readonly string[]): Promise<FaultServer> {
  return await faultServer((request, socket) => {
    const parts = [...reply(request.headers["secret"] ?? "")];
    const next = () => {
      const part = parts.shift() ?? "";
      if (parts.length === 0) return finish(socket, part);
      socket.write(part);
      setTimeout(next, 15);
    };
    next();
  }, { cert: CERT, key: KEY });
}

const rawEnv = (server: FaultServer) => env({ IDENTITY_ENDPOINT: `${server.origin}/metadata/identity/oauth2/token` });
const TOKEN_TEXT = JSON.stringify(tokenBody);
const OK =
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${TOKEN_TEXT.length}\r\n\r\n${TOKEN_TEXT}`;
const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";
const EARLY_HINTS = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n";

describe("pinnedFetch() interim and malformed responses", () => {
  const interim: [string, readonly string[]][] = [
    ["a 100 Continue", [CONTINUE + OK]],
    ["a 103 Early Hints with a Link header", [EARLY_HINTS + OK]],
    ["two interim heads in the same write", [CONTINUE + EARLY_HINTS + OK]],
    ["two interim heads split across writes", [
      CONTINUE.slice(0, 10),
      CONTINUE.slice(10) + EARLY_HINTS.slice(0, 30),
      EARLY_HINTS.slice(30) + OK.slice(0, 11),
      OK.slice(11),
    ]],
  ];
  for (const [name, parts] of interim) {
    test(`acquireToken() skips ${name} before the 200 on Service Fabric`, async () => {
      const server = await rawTlsServer(() => parts);
      try {
        const client = testClient({ env: rawEnv(server), retry: false });
        assert.equal((await client.acquireToken("https://vault.azure.net")).accessToken, "sf-token");
        assert.equal(server.requests.length, 1);
      } finally {
        await server.close();
      }
    });
  }

  test("pinnedFetch() returns the final response's status and headers, not the interim ones", async () => {
    const server = await rawTlsServer(() => [EARLY_HINTS, OK]);
    try {
      const response = await pinnedFetch(PIN)(new Request(`${server.origin}/x`));
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("link"), null);
      assert.equal(await response.text(), TOKEN_TEXT);
    } finally {
      await server.close();
    }
  });

  test("pinnedFetch() fails, and does not wait, when interim heads pass the 64 KiB head limit", async () => {
    // Endless 100 Continues on a connection that stays open: only the limit ends the call.
    const server = await faultServer((_request, socket) => {
      for (let i = 0; i < 200; i++) socket.write(CONTINUE.repeat(20));
    }, { cert: CERT, key: KEY });
    try {
      await assert.rejects(
        within(2000, Promise.resolve(pinnedFetch(PIN)(new Request(`${server.origin}/x`)))),
        /64 KiB/,
      );
    } finally {
      await server.close();
    }
  });

  const refused: [string, string, RegExp][] = [
    [
      "a 101 Switching Protocols",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
      /101/,
    ],
    ["a 101 after a 100 Continue", `${CONTINUE}HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n`, /101/],
    ["the status 600", "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n", /the status 600 is not an HTTP status/],
    ["the status 099", "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n", /the status 099 is not an HTTP status/],
  ];
  for (const [name, reply, message] of refused) {
    test(`acquireToken() fails "invalid_response" on ${name} on Service Fabric`, async () => {
      const server = await rawTlsServer(() => [reply]);
      try {
        const client = testClient({ env: rawEnv(server) });
        const error = await rejectsWith(
          client.acquireToken("https://vault.azure.net"),
          "invalid_response",
          "ServiceFabric",
        );
        assert.match(error.message, message);
        assert.equal(server.requests.length, 1, "an invalid response is not retried");
      } finally {
        await server.close();
      }
    });
  }

  // Header lines the runtime's Headers refuses, each echoing the Secret: its message quotes them.
  const echoes: [string, (secret: string) => string, RegExp][] = [
    ["a NUL in the value", (secret) => `X-Echo: ${secret}\0`, /a header has characters HTTP refuses/],
    ["a bare CR in the value", (secret) => `X-Echo: a\r${secret}`, /a header has characters HTTP refuses/],
    ["a LF in the value", (secret) => `X-Echo: ${secret}\nb`, /a header has characters HTTP refuses/],
    ["the secret as the name", (secret) => `${secret}: \0`, /a header/],
    ["a name that is not a token", (secret) => `X Echo ${secret}: v`, /a header/],
  ];
  for (const [name, line, shown] of echoes) {
    test(`acquireToken() fails "invalid_response" and never shows the Secret on a header with ${name}`, async () => {
      const server = await rawTlsServer((
        secret,
      ) => [`HTTP/1.1 200 OK\r\n${line(secret)}\r\nContent-Length: 0\r\n\r\n`]);
      try {
        const client = testClient({ env: rawEnv(server), retry: false });
        const error = await rejectsWith(
          client.acquireToken("https://vault.azure.net"),
          "invalid_response",
          "ServiceFabric",
        );
        assert.equal(server.requests[0]?.headers["secret"], SECRET, "the server did receive the Secret to echo");
        assert.match(error.message, shown);
        assertNotShown(error, SECRET);
        for (let current: unknown = error; current !== undefined; current = (current as Error).cause) {
          assert.equal(inspect(current, { depth: Infinity }).includes(SECRET), false);
          if (!(current instanceof Error)) break;
        }
      } finally {
        await server.close();
      }
    });
  }
});
