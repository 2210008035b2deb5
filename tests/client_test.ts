import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EnvRecord, TokenCache } from "../mod.ts";
import { loopback, recorder, sendJson, testClient } from "./helpers/fake.ts";
import { assertNotShown, rejectsWith } from "./helpers/checks.ts";

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;
const VAULT = "https://vault.azure.net";

const APP_SERVICE: EnvRecord = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };
const AZURE_ML: EnvRecord = { MSI_ENDPOINT: "http://127.0.0.1:41742/msi/token", MSI_SECRET: "s" };
const CLOUD_SHELL: EnvRecord = { MSI_ENDPOINT: "http://127.0.0.1:41743/oauth2/token" };
const IMDS: EnvRecord = {};

// A JWT-shaped access token, as an endpoint might echo it in an error body.
const JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLXZhbHVl";

/** Answers each request with a distinct token, `token-0`, `token-1`, ... */
const numbered = (expiresIn = 3600) => (_request: Request, index: number) =>
  Response.json({ access_token: `token-${index}`, expires_in: expiresIn });

describe("ManagedIdentityClient caching", () => {
  test("acquireToken() serves the second call from the cache", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    const first = await client.acquireToken(VAULT);
    const second = await client.acquireToken(VAULT);
    assert.equal(fake.seen.length, 1);
    assert.equal(first.fromCache, false);
    assert.equal(second.fromCache, true);
    assert.equal(second.accessToken, "token-0");
    assert.equal(second.accessToken, first.accessToken);
    assert.equal(second.expiresOn.getTime(), first.expiresOn.getTime());
    assert.equal(second.source, "AppService");
    assert.equal(second.resource, VAULT);
  });

  test("acquireToken() with forceRefresh makes a request", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    const forced = await client.acquireToken(VAULT, { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assert.equal(forced.fromCache, false);
    assert.equal(forced.accessToken, "token-1");
    // The new token replaces the cached one.
    const after = await client.acquireToken(VAULT);
    assert.equal(after.fromCache, true);
    assert.equal(after.accessToken, "token-1");
  });

  test("acquireToken() with non-empty claims skips the cache", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    const withClaims = await client.acquireToken(VAULT, { claims: '{"access_token":{"nbf":{"essential":true}}}' });
    assert.equal(fake.seen.length, 2);
    assert.equal(withClaims.fromCache, false);
    assert.equal(withClaims.accessToken, "token-1");
  });

  test("acquireToken() with whitespace-only claims uses the cache", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    const blank = await client.acquireToken(VAULT, { claims: " \t\n" });
    const empty = await client.acquireToken(VAULT, { claims: "" });
    assert.equal(fake.seen.length, 1);
    assert.equal(blank.fromCache, true);
    assert.equal(empty.fromCache, true);
  });

  test("acquireToken() shares one cache entry between a scope with /.default and the plain resource", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    const scoped = await client.acquireToken(`${VAULT}/.default`);
    const plain = await client.acquireToken(VAULT);
    assert.equal(fake.seen.length, 1);
    assert.equal(fake.seen[0]?.url.searchParams.get("resource"), VAULT);
    assert.equal(scoped.resource, VAULT);
    assert.equal(plain.fromCache, true);
    assert.equal(plain.accessToken, scoped.accessToken);
  });

  test("acquireToken() shares tokens between clients of the same identity on one cache", async () => {
    const cache = new TokenCache();
    const firstFake = recorder(numbered());
    const secondFake = recorder(numbered());
    const first = testClient({ env: APP_SERVICE, fetch: firstFake.fetch, cache });
    const second = testClient({ env: APP_SERVICE, fetch: secondFake.fetch, cache });
    const issued = await first.acquireToken(VAULT);
    const shared = await second.acquireToken(VAULT);
    assert.equal(firstFake.seen.length, 1);
    assert.equal(secondFake.seen.length, 0);
    assert.equal(shared.fromCache, true);
    assert.equal(shared.accessToken, issued.accessToken);
    assert.equal(cache.size, 1);
  });

  test("acquireToken() shares tokens between client IDs that differ only in case", async () => {
    const cache = new TokenCache();
    const fake = recorder(numbered());
    const upper = testClient({
      env: APP_SERVICE,
      fetch: fake.fetch,
      cache,
      clientId: "ABCDEF00-0000-0000-0000-00000000000A",
    });
    const lower = testClient({
      env: APP_SERVICE,
      fetch: fake.fetch,
      cache,
      clientId: "abcdef00-0000-0000-0000-00000000000a",
    });
    await upper.acquireToken(VAULT);
    const shared = await lower.acquireToken(VAULT);
    assert.equal(fake.seen.length, 1);
    assert.equal(shared.fromCache, true);
  });

  test("acquireToken() isolates clients given different caches", async () => {
    const fake = recorder(numbered());
    const first = testClient({ env: APP_SERVICE, fetch: fake.fetch, cache: new TokenCache() });
    const second = testClient({ env: APP_SERVICE, fetch: fake.fetch, cache: new TokenCache() });
    const a = await first.acquireToken(VAULT);
    const b = await second.acquireToken(VAULT);
    assert.equal(fake.seen.length, 2);
    assert.equal(b.fromCache, false);
    assert.notEqual(a.accessToken, b.accessToken);
  });

  test("acquireToken() does not share tokens between different identities", async () => {
    const cache = new TokenCache();
    const fake = recorder(numbered());
    const clients = [
      testClient({ env: APP_SERVICE, fetch: fake.fetch, cache }),
      testClient({ env: APP_SERVICE, fetch: fake.fetch, cache, clientId: "00000000-0000-0000-0000-00000000000a" }),
      testClient({ env: APP_SERVICE, fetch: fake.fetch, cache, clientId: "00000000-0000-0000-0000-00000000000b" }),
      testClient({ env: APP_SERVICE, fetch: fake.fetch, cache, objectId: "00000000-0000-0000-0000-00000000000a" }),
    ];
    for (const client of clients) {
      const result = await client.acquireToken(VAULT);
      assert.equal(result.fromCache, false);
    }
    assert.equal(fake.seen.length, 4);
    assert.equal(cache.size, 4);
  });

  test("acquireToken() does not share tokens between resources", async () => {
    const fake = recorder(numbered());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    const storage = await client.acquireToken("https://storage.azure.com");
    assert.equal(fake.seen.length, 2);
    assert.equal(storage.fromCache, false);
  });

  test("acquireToken() returns a token expiring within 5 minutes but requests again on the next call", async () => {
    const fake = recorder(numbered(240));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    const first = await client.acquireToken(VAULT);
    assert.equal(first.accessToken, "token-0");
    assert.equal(first.fromCache, false);
    const second = await client.acquireToken(VAULT);
    assert.equal(fake.seen.length, 2);
    assert.equal(second.fromCache, false);
    assert.equal(second.accessToken, "token-1");
  });

  test("acquireToken() requests again once the cached token is within 5 minutes of expiry", async () => {
    let now = NOW;
    const fake = recorder(numbered(3600));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch }, { now: () => now });
    const first = await client.acquireToken(VAULT);
    assert.equal(first.expiresOn.getTime(), NOW + 60 * MINUTE);
    now = NOW + 55 * MINUTE - 1;
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    now = NOW + 55 * MINUTE;
    const renewed = await client.acquireToken(VAULT);
    assert.equal(renewed.fromCache, false);
    assert.equal(renewed.accessToken, "token-1");
    assert.equal(fake.seen.length, 2);
  });

  test("acquireToken() does not cache a failed request", async () => {
    const fake = recorder((_request, index) =>
      index === 0
        ? Response.json({ statusCode: 400, message: "not yet" }, { status: 400 })
        : Response.json({ access_token: "token-value", expires_in: 3600 })
    );
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
    await rejectsWith(client.acquireToken(VAULT), "request_failed");
    const result = await client.acquireToken(VAULT);
    assert.equal(result.fromCache, false);
    assert.equal(result.accessToken, "token-value");
  });
});

describe("ManagedIdentityClient.getToken()", () => {
  test("getToken() returns the Azure SDK AccessToken shape", async () => {
    const fake = recorder(() => Response.json({ access_token: "token-value", expires_in: 3600, token_type: "Bearer" }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch }, { now: () => NOW });
    const token = await client.getToken(`${VAULT}/.default`);
    assert.deepEqual(token, { token: "token-value", expiresOnTimestamp: NOW + 60 * MINUTE, tokenType: "Bearer" });
    assert.equal(fake.seen[0]?.url.searchParams.get("resource"), VAULT);
  });

  test("getToken() sets refreshAfterTimestamp for a long-lived token", async () => {
    const fake = recorder(() => Response.json({ access_token: "token-value", expires_in: 86400 }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch }, { now: () => NOW });
    const token = await client.getToken(`${VAULT}/.default`);
    assert.deepEqual(token, {
      token: "token-value",
      expiresOnTimestamp: NOW + 24 * 60 * MINUTE,
      refreshAfterTimestamp: NOW + 12 * 60 * MINUTE,
      tokenType: "Bearer",
    });
  });

  test("getToken() accepts a one-element array", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    const token = await client.getToken([`${VAULT}/.default`]);
    assert.equal(token.token, "token-value");
    assert.equal(fake.seen[0]?.url.searchParams.get("resource"), VAULT);
  });

  test("getToken() throws a TypeError for zero or two scopes", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await assert.rejects(client.getToken([]), TypeError);
    await assert.rejects(client.getToken([`${VAULT}/.default`, "https://storage.azure.com/.default"]), TypeError);
    assert.equal(fake.seen.length, 0);
  });

  test("getToken() with an aborted abortSignal rejects with aborted", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await rejectsWith(client.getToken(VAULT, { abortSignal: AbortSignal.abort() }), "aborted");
    assert.equal(fake.seen.length, 0);
  });
});

describe("ManagedIdentityClient arguments", () => {
  test("acquireToken() throws a TypeError for an empty or whitespace resource", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    for (const resource of ["", "   ", "/.default", " /.default "]) {
      await assert.rejects(client.acquireToken(resource), TypeError, JSON.stringify(resource));
    }
    assert.equal(fake.seen.length, 0);
  });

  test("ManagedIdentityClient throws a RangeError naming timeoutMs for 0, -1 and NaN", () => {
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => testClient({ env: APP_SERVICE, fetch: recorder().fetch, timeoutMs }),
        (error: unknown) => error instanceof RangeError && /timeoutMs/.test(error.message),
        `timeoutMs ${timeoutMs}`,
      );
    }
  });

  test("acquireToken() with an already-aborted signal rejects with aborted and makes no request", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    const reason = new Error("caller gave up");
    const error = await rejectsWith(client.acquireToken(VAULT, { signal: AbortSignal.abort(reason) }), "aborted");
    assert.equal(fake.seen.length, 0);
    assert.equal(error.source, "AppService");
    assert.equal(error.cause, reason);
  });

  test("acquireToken() with an already-aborted signal does not answer from the cache either", async () => {
    const fake = recorder();
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    await rejectsWith(client.acquireToken(VAULT, { signal: AbortSignal.abort() }), "aborted");
    assert.equal(fake.seen.length, 1);
  });
});

describe("ManagedIdentityClient transport", () => {
  test("acquireToken() times out with timeout against an endpoint that never answers", async () => {
    const server = await loopback(() => {
      // Never answers.
    });
    try {
      const client = testClient({
        env: { IDENTITY_ENDPOINT: `${server.url}/token`, IDENTITY_HEADER: "h" },
        timeoutMs: 200,
        retry: false,
      });
      const started = Date.now();
      const error = await rejectsWith(client.acquireToken(VAULT), "timeout");
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 2000, `took ${elapsed} ms`);
      assert.equal(error.source, "AppService");
      assert.match(error.message, /200 ms/);
    } finally {
      await server.close();
    }
  });

  test("acquireToken() reports unavailable when the connection is refused", async () => {
    const server = await loopback((_request, response) => sendJson(response, 200, {}));
    const url = server.url;
    await server.close();
    const client = testClient({
      env: { IDENTITY_ENDPOINT: `${url}/token`, IDENTITY_HEADER: "h" },
      timeoutMs: 5000,
      retry: false,
    });
    const error = await rejectsWith(client.acquireToken(VAULT), "unavailable");
    assert.equal(error.source, "AppService");
    assert.equal(error.endpoint, `${url}/token`);
    assert.ok(error.cause !== undefined);
  });

  test("acquireToken() refuses an HTTP redirect without following it", async () => {
    const target = await loopback((_request, response) =>
      sendJson(response, 200, { access_token: "token-value", expires_in: 3600 })
    );
    const redirector = await loopback((_request, response) => {
      response.writeHead(302, { location: `${target.url}/token?api-version=2019-08-01&resource=x` });
      response.end();
    });
    try {
      const client = testClient({
        env: { IDENTITY_ENDPOINT: `${redirector.url}/token`, IDENTITY_HEADER: "secret-header-value" },
        retry: false,
      });
      const error = await rejectsWith(client.acquireToken(VAULT), "request_failed");
      assert.equal(error.status, 302);
      assert.equal(redirector.requests.length, 1);
      assert.equal(target.requests.length, 0);
    } finally {
      await redirector.close();
      await target.close();
    }
  });

  test("acquireToken() refuses a redirect from a custom fetch", async () => {
    const fake = recorder(() => new Response(null, { status: 307, headers: { location: "http://127.0.0.1:1/x" } }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "request_failed");
    assert.equal(error.status, 307);
    assert.equal(fake.seen[0]?.headers.get("x-identity-header"), "h");
  });

  test("acquireToken() refuses a streamed body over 1 MiB with invalid_response", async () => {
    // A valid token body, padded past the cap: only the size makes it invalid.
    const body = JSON.stringify({ access_token: "token-value", expires_in: 3600, pad: "x".repeat(1024 * 1024) });
    const fake = recorder(() => new Response(body, { headers: { "content-type": "application/json" } }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "invalid_response");
    assert.match(error.message, /larger than/);
  });

  test("acquireToken() refuses a declared body over 1 MiB from a loopback server", async () => {
    const server = await loopback((_request, response) =>
      sendJson(response, 200, { access_token: "token-value", expires_in: 3600, pad: "x".repeat(1024 * 1024) })
    );
    try {
      const client = testClient({
        env: { IDENTITY_ENDPOINT: `${server.url}/token`, IDENTITY_HEADER: "h" },
        retry: false,
      });
      const error = await rejectsWith(client.acquireToken(VAULT), "invalid_response");
      assert.equal(error.status, 200);
    } finally {
      await server.close();
    }
  });

  test("acquireToken() accepts a body of exactly 1 MiB", async () => {
    const prefix = JSON.stringify({ access_token: "token-value", expires_in: 3600, pad: "" });
    const body = prefix.replace('"pad":""', `"pad":"${"x".repeat(1024 * 1024 - prefix.length)}"`);
    assert.equal(new TextEncoder().encode(body).byteLength, 1024 * 1024);
    const fake = recorder(() => new Response(body));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-value");
  });
});

describe("ManagedIdentityClient HTTP errors", () => {
  const cases: {
    name: string;
    env: EnvRecord;
    source: string;
    endpoint: string;
    body: unknown;
    headers?: Record<string, string>;
    expected: { error?: string; errorDescription?: string; correlationId?: string };
  }[] = [
    {
      name: "IMDS",
      env: IMDS,
      source: "DefaultToIMDS",
      endpoint: "http://169.254.169.254/metadata/identity/oauth2/token",
      // Not "Identity not found", which is unavailable on IMDS (tests/first_contact_test.ts).
      body: { error: "invalid_resource", error_description: "The resource principal was not found" },
      headers: { "x-ms-request-id": "imds-request-1" },
      expected: {
        error: "invalid_resource",
        errorDescription: "The resource principal was not found",
        correlationId: "imds-request-1",
      },
    },
    {
      name: "App Service",
      env: APP_SERVICE,
      source: "AppService",
      endpoint: "http://127.0.0.1:41741/token",
      body: { statusCode: 400, message: "Unable to load the proper Managed Identity.", correlationId: "app-1" },
      expected: { errorDescription: "Unable to load the proper Managed Identity.", correlationId: "app-1" },
    },
    {
      name: "Azure ML",
      env: AZURE_ML,
      source: "AzureML",
      endpoint: "http://127.0.0.1:41742/msi/token",
      body: { statusCode: 400, message: "No identity for this compute.", correlationId: "ml-1" },
      expected: { errorDescription: "No identity for this compute.", correlationId: "ml-1" },
    },
    {
      name: "Cloud Shell",
      env: CLOUD_SHELL,
      source: "CloudShell",
      endpoint: "http://127.0.0.1:41743/oauth2/token",
      body: { error: { code: "BadRequest", message: "Resource is not allowed." } },
      expected: { error: "BadRequest", errorDescription: "Resource is not allowed." },
    },
  ];

  for (const c of cases) {
    test(`acquireToken() fills status, error, errorDescription and correlationId for a ${c.name} error body`, async () => {
      const fake = recorder(() => Response.json(c.body, { status: 400, ...(c.headers ? { headers: c.headers } : {}) }));
      const client = testClient({ env: c.env, fetch: fake.fetch, retry: false });
      assert.equal(client.source, c.source);
      const error = await rejectsWith(client.acquireToken(VAULT), "request_failed");
      assert.equal(fake.seen.length, 1);
      assert.equal(error.status, 400);
      assert.equal(error.source, c.source);
      assert.equal(error.endpoint, c.endpoint);
      assert.equal(error.error, c.expected.error);
      assert.equal(error.errorDescription, c.expected.errorDescription);
      assert.equal(error.correlationId, c.expected.correlationId);
      assert.match(error.message, /400/);
    });
  }

  test("acquireToken() keeps a plain-text error body as errorDescription", async () => {
    const fake = recorder(() => new Response("<html><body><h1>403 Forbidden</h1></body></html>", { status: 403 }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "request_failed");
    assert.equal(error.status, 403);
    assert.equal(error.errorDescription, "403 Forbidden");
    assert.equal(error.error, undefined);
  });

  test("acquireToken() reports unavailable for Docker Desktop's IMDS 403 unreachable answer", async () => {
    const fake = recorder(() =>
      new Response(
        "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: " +
          "connectex: A socket operation was attempted to an unreachable network.",
        { status: 403 },
      )
    );
    const client = testClient({ env: IMDS, fetch: fake.fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "unavailable");
    assert.equal(error.status, 403);
    assert.equal(error.source, "DefaultToIMDS");
  });

  test("acquireToken() looks for Docker Desktop's unreachable in the first 16 KiB of a 403 body only", async () => {
    // The body may run to the read cap; the rule reads where an excerpt is read, not all of it.
    const filler = "x ".repeat(512 * 1024 - 64);
    for (
      const [body, code] of [[`unreachable network ${filler}`, "unavailable"], [
        `${filler} unreachable`,
        "request_failed",
      ]]
    ) {
      const fake = recorder(() => new Response(body, { status: 403 }));
      const client = testClient({ env: IMDS, fetch: fake.fetch, retry: false });
      const error = await rejectsWith(client.acquireToken(VAULT), code!);
      assert.equal(error.status, 403);
    }
  });

  test("acquireToken() reports request_failed for an IMDS 403 without unreachable", async () => {
    const fake = recorder(() => Response.json({ error: "forbidden", error_description: "Denied" }, { status: 403 }));
    const client = testClient({ env: IMDS, fetch: fake.fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "request_failed");
    assert.equal(error.status, 403);
  });
});

describe("ManagedIdentityClient secrets", () => {
  test("acquireToken() reports invalid_configuration for an IDENTITY_HEADER with a newline and never shows it", async () => {
    const fake = recorder();
    const client = testClient({
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "secret-part-one\nsecret-part-two" },
      fetch: fake.fetch,
      retry: false,
    });
    const error = await rejectsWith(client.acquireToken(VAULT), "invalid_configuration");
    assert.equal(fake.seen.length, 0);
    for (const text of [error.message, JSON.stringify(error), String(error.cause)]) {
      assert.ok(!text.includes("secret-part-one"), text);
      assert.ok(!text.includes("secret-part-two"), text);
    }
    for (const secret of ["secret-part-one", "secret-part-two"]) assertNotShown(error, secret);
  });

  const secretCases = [
    {
      name: "App Service",
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "secret-header-value" },
      header: "x-identity-header",
      secret: "secret-header-value",
    },
    {
      name: "Azure ML",
      env: { MSI_ENDPOINT: "http://127.0.0.1:41742/msi/token", MSI_SECRET: "ml-secret-value" },
      header: "secret",
      secret: "ml-secret-value",
    },
  ];
  const opaqueToken = "opaque-token-1234";
  const failingBodies: { name: string; status: number; body: string; code: string }[] = [
    {
      name: "a JSON error body",
      status: 400,
      body: JSON.stringify({
        statusCode: 400,
        message: `Token ${JWT} was rejected`,
        correlationId: "c-1",
        access_token: opaqueToken,
      }),
      code: "request_failed",
    },
    {
      name: "an IMDS-style error body",
      status: 401,
      body: JSON.stringify({ error: "invalid_token", error_description: `Bearer ${JWT}`, access_token: JWT }),
      code: "request_failed",
    },
    {
      name: "a plain-text error body",
      status: 403,
      body: `Unauthorized: access_token=${JWT}`,
      code: "request_failed",
    },
    {
      name: "a truncated success body",
      status: 200,
      body: `{"access_token":"${opaqueToken}","token":"${JWT}`,
      code: "invalid_response",
    },
    {
      name: "a success body without expiry",
      status: 200,
      body: JSON.stringify({ access_token: opaqueToken, expires_on: "soon" }),
      code: "invalid_response",
    },
  ];

  for (const s of secretCases) {
    for (const b of failingBodies) {
      test(`acquireToken() on ${s.name} never shows the secret or the token of ${b.name}`, async () => {
        const fake = recorder(() => new Response(b.body, { status: b.status }));
        const client = testClient({ env: s.env, fetch: fake.fetch, retry: false });
        const error = await rejectsWith(client.acquireToken(VAULT), b.code);
        // The secret was really sent, so it was there to leak.
        assert.equal(fake.seen[0]?.headers.get(s.header), s.secret);
        for (const secret of [s.secret, opaqueToken, JWT.slice(0, 20), JWT.split(".")[2] ?? JWT]) {
          assertNotShown(error, secret);
        }
      });
    }
  }
});

describe("ManagedIdentityClient hostile answers", () => {
  const ARC_ENV: EnvRecord = {
    IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
    IMDS_ENDPOINT: "http://127.0.0.1:40342",
  };
  const SF_ENV: EnvRecord = {
    IDENTITY_ENDPOINT: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
    IDENTITY_HEADER: "h",
    IDENTITY_SERVER_THUMBPRINT: "AB".repeat(20),
  };
  const EVERY_SOURCE: [string, EnvRecord][] = [
    ["DefaultToIMDS", IMDS],
    ["AppService", APP_SERVICE],
    ["AzureML", AZURE_ML],
    ["CloudShell", CLOUD_SHELL],
    ["ServiceFabric", SF_ENV],
  ];

  for (const expiry of [{ expires_on: 1e20 }, { expires_on: "17000000000000" }, { expires_in: 1e20 }]) {
    test(`acquireToken() and getToken() refuse ${JSON.stringify(expiry)}, cache nothing and never give NaN`, async () => {
      const fake = recorder(() => Response.json({ access_token: "t", ...expiry }));
      const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false });
      const error = await rejectsWith(client.acquireToken(VAULT), "invalid_response");
      assert.match(error.message, /more than a year ahead/);
      await rejectsWith(client.getToken(`${VAULT}/.default`), "invalid_response");
      assert.equal(fake.seen.length, 2, "nothing was cached: the second call asked again");
    });
  }

  for (const [name, env] of EVERY_SOURCE) {
    test(`acquireToken() with retry: false makes exactly one request on ${name}, whatever the status`, async () => {
      for (const status of [404, 408, 410, 429, 500, 503, 504]) {
        const fake = recorder(() =>
          Response.json({ error: "busy" }, { status, headers: status === 429 ? { "retry-after": "1" } : {} })
        );
        // The clock moves by each wait, so that a wrongly retried IMDS 410 ends after 70 s of it.
        let clock = NOW;
        const sleeps: number[] = [];
        const client = testClient({ env, fetch: fake.fetch, retry: false }, {
          now: () => clock,
          sleep: (ms) => {
            clock += ms;
            sleeps.push(ms);
            return Promise.resolve();
          },
        });
        await rejectsWith(client.acquireToken(VAULT), "request_failed");
        assert.equal(fake.seen.length, 1, `${name} ${status}`);
        assert.deepEqual(sleeps, []);
      }
    });
  }

  test("acquireToken() with retry: false makes exactly one request on AzureArc after its challenge", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-retry-"));
    try {
      await writeFile(join(dir, "a.key"), "arc-key");
      const fake = recorder((request) =>
        request.headers.has("authorization")
          ? Response.json({ error: "updating" }, { status: 503 })
          : new Response(null, { status: 401, headers: { "www-authenticate": `Basic realm=${join(dir, "a.key")}` } })
      );
      const client = testClient({ env: ARC_ENV, fetch: fake.fetch, retry: false }, { arcTokenDirectory: dir });
      await rejectsWith(client.acquireToken(VAULT), "request_failed");
      assert.deepEqual(fake.seen.map((seen) => seen.headers.has("authorization")), [false, true]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("acquireToken() with retry: false makes one request when the connection fails", async () => {
    let calls = 0;
    const client = testClient({
      env: APP_SERVICE,
      fetch: () => {
        calls++;
        return Promise.reject(new TypeError("fetch failed"));
      },
      retry: false,
    });
    await rejectsWith(client.acquireToken(VAULT), "unavailable");
    assert.equal(calls, 1);
  });

  for (
    const [name, value] of [["undefined", undefined], ["null", null], ["a plain object", { status: 200 }], [
      "a string",
      "ok",
    ]] as const
  ) {
    test(`acquireToken() reports invalid_configuration when a custom fetch returns ${name}, not a raw TypeError`, async () => {
      const client = testClient({ env: APP_SERVICE, fetch: (() => value) as never, retry: false });
      const error = await rejectsWith(client.acquireToken(VAULT), "invalid_configuration");
      assert.match(error.message, /The fetch option must return a Response/);
    });
  }
});

describe("ManagedIdentityClient millisecond options", () => {
  const LIMIT = 2_147_483_647;
  for (
    const [name, options] of [
      ["timeoutMs", { timeoutMs: 3e9 }],
      ["retry.delayMs", { retry: { delayMs: 3e9 } }],
      ["retry.maxRetryAfterMs", { retry: { maxRetryAfterMs: 3e9 } }],
      ["retry.imdsUpdateMs", { retry: { imdsUpdateMs: 3e9 } }],
    ] as const
  ) {
    test(`new ManagedIdentityClient() refuses ${name} 3e9 (past what a timer can hold) with a RangeError that says the limit`, () => {
      assert.throws(() => testClient({ env: APP_SERVICE, ...options }), (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.ok(error.message.includes(`"${name}"`), error.message);
        assert.ok(error.message.includes(String(LIMIT)), error.message);
        return true;
      });
    });
  }

  test("new ManagedIdentityClient() takes the longest timer, and a request under it does not time out at once", async () => {
    const client = testClient({
      env: APP_SERVICE,
      timeoutMs: LIMIT,
      retry: { delayMs: LIMIT, maxRetryAfterMs: LIMIT, imdsUpdateMs: LIMIT },
      fetch: () =>
        new Promise<Response>((resolve) =>
          setTimeout(() => resolve(Response.json({ access_token: "t", expires_in: 3600 })), 20)
        ),
    });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "t");
  });
});
