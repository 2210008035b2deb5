/**
 * "No managed identity here" in about a second (src/first_contact.ts): until IMDS has answered
 * once, a probe goes first; a refused connection or no answer within 1 s ends the call with
 * `unavailable` (a CredentialUnavailableError), remembered for 10 s; once IMDS has answered,
 * the full retry and timeout rules apply. Real loopback sockets where only sockets show it.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CredentialUnavailableError,
  type EnvRecord,
  ManagedIdentityError,
  type ManagedIdentityEvent,
  TokenCache,
} from "../mod.ts";
import { loopback, recorder, type Seen, testClient } from "./helpers/fake.ts";
import { closedPort, silentServer } from "./helpers/sockets.ts";

const VAULT = "https://vault.azure.net";
const NOW = 1_700_000_000_000;

async function unavailable(promise: Promise<unknown>): Promise<CredentialUnavailableError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  assert.ok(error instanceof CredentialUnavailableError, `expected a CredentialUnavailableError, got ${String(error)}`);
  assert.ok(error instanceof ManagedIdentityError);
  assert.equal(error.code, "unavailable");
  assert.equal(error.name, "CredentialUnavailableError");
  return error;
}

/** A fake IMDS: the probe (no Metadata header) gets `probe`, token requests `token`. */
function imds(
  token: (request: Request) => Response | Promise<Response> = () =>
    Response.json({ access_token: "t", expires_in: 3600 }),
  probe: () => Response | Promise<Response> = () =>
    Response.json({ error: "invalid_request", error_description: "Required metadata header not specified" }, {
      status: 400,
    }),
) {
  return recorder((request) => request.headers.get("metadata") === "true" ? token(request) : probe());
}

const probes = (seen: readonly Seen[]) => seen.filter((s) => s.headers.get("metadata") !== "true");
const tokenRequests = (seen: readonly Seen[]) => seen.filter((s) => s.headers.get("metadata") === "true");

describe("first contact with IMDS, on real sockets", () => {
  test("acquireToken() ends with unavailable within 1.5 s when the connection is refused, and says it", async () => {
    const env = { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${await closedPort()}` };
    const events: ManagedIdentityEvent[] = [];
    const client = testClient({ env, imdsProbe: true, onEvent: (event) => events.push(event) });
    const started = performance.now();
    const error = await unavailable(client.acquireToken(VAULT));
    assert.ok(performance.now() - started < 1500, `took ${performance.now() - started} ms`);
    assert.match(error.message, /^No managed identity endpoint here: IMDS at http:\/\/127\.0\.0\.1:\d+\/metadata/);
    assert.match(error.message, /cannot be reached/);
    assert.deepEqual(events, [], "no retry ladder");
  });

  test("acquireToken() ends with unavailable within 1.5 s when IMDS accepts and never answers (default options)", async () => {
    const server = await silentServer();
    try {
      const client = testClient({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: server.origin }, imdsProbe: true });
      const started = performance.now();
      const error = await unavailable(client.acquireToken(VAULT));
      const took = performance.now() - started;
      assert.ok(took >= 900 && took < 1500, `took ${took} ms`);
      assert.match(error.message, /did not answer within 1000 ms/);
      assert.equal(server.connections(), 1, "one probe, no retries");
    } finally {
      await server.close();
    }
  });

  test("acquireToken() fails in under 10 ms while the absence is remembered, and says so; probes again after 10 s", async () => {
    const server = await silentServer();
    let now = NOW;
    try {
      const client = testClient(
        { env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: server.origin }, imdsProbe: true, timeoutMs: 100 },
        { now: () => now },
      );
      await unavailable(client.acquireToken(VAULT));
      now += 9_999;
      const started = performance.now();
      const again = await unavailable(client.acquireToken("https://storage.azure.com"));
      assert.ok(performance.now() - started < 10, `took ${performance.now() - started} ms`);
      assert.match(again.message, /did not answer within 100 ms \(found 10 s ago; asked again 10 s after that\)/);
      assert.equal(server.connections(), 1);
      now += 1;
      await unavailable(client.acquireToken(VAULT));
      assert.equal(server.connections(), 2, "a new probe once the 10 s have passed");
    } finally {
      await server.close();
    }
  });
});

describe("first contact with IMDS", () => {
  test("acquireToken() probes without Metadata first, then asks for the token, and probes no more", async () => {
    const fake = imds();
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "t");
    assert.equal((await client.acquireToken("https://storage.azure.com")).accessToken, "t");
    assert.deepEqual(fake.seen.map((s) => s.headers.get("metadata")), [null, "true", "true"]);
    const probe = fake.seen[0]!;
    assert.equal(probe.method, "GET");
    assert.equal(`${probe.url.origin}${probe.url.pathname}`, "http://169.254.169.254/metadata/identity/oauth2/token");
  });

  test("acquireToken() shares one probe between concurrent first calls", async () => {
    const fake = imds();
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    const resources = ["https://a.example", "https://b.example", "https://c.example", "https://d.example"];
    await Promise.all(resources.map((resource) => client.acquireToken(resource)));
    assert.equal(probes(fake.seen).length, 1);
    assert.equal(tokenRequests(fake.seen).length, 4);
  });

  test("acquireToken() takes IMDS's answer to the probe as IMDS being there: a JSON error, or its Server header", async () => {
    const answers: [string, () => Response][] = [
      // Real IMDS's answer to the probe (azure-sdk-for-go's live recording TestDefaultAzureCredential_IMDSLive).
      [
        "the recorded answer",
        () =>
          Response.json({ error: "invalid_request", error_description: "Required metadata header not specified" }, {
            status: 400,
            headers: { Server: "IMDS/150.870.65.1854" },
          }),
      ],
      ...[400, 404, 429, 500, 503].map((status): [string, () => Response] => [
        `a JSON error with ${status}`,
        () => Response.json({ error: "some_error" }, { status }),
      ]),
      [
        "a Server header naming IMDS, with a body that is not JSON",
        () => new Response("Bad request", { status: 400, headers: { server: "imds/1.2" } }),
      ],
    ];
    for (const [name, answer] of answers) {
      const fake = imds(undefined, answer);
      const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
      assert.equal((await client.acquireToken(VAULT)).accessToken, "t", name);
      assert.equal(tokenRequests(fake.seen).length, 1, name);
    }
  });

  // What answers at 169.254.169.254 where it is not Azure's IMDS, as users of the Azure SDKs met it.
  const IMPOSTORS: [string, number, string, Record<string, string>?][] = [
    ["AWS EC2's metadata service", 401, '<?xml version="1.0"?><html><body><h1>401 - Unauthorized</h1></body></html>', {
      "content-type": "text/html",
      server: "EC2ws",
    }],
    ["Google Cloud's metadata server", 403, "Missing Metadata-Flavor:Google header.", { server: "Metadata Server" }],
    [
      "Google Cloud's metadata server (404)",
      404,
      "<!DOCTYPE html><html><title>Error 404 (Not Found)!!1</title></html>",
    ],
    [
      "Docker Desktop",
      403,
      "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: " +
      "A socket operation was attempted to an unreachable network.",
    ],
    [
      "a corporate proxy's error page",
      502,
      "<html><head><title>502 Bad Gateway</title></head><body>Proxy</body></html>",
    ],
    ["a device that answers 200 with a page", 200, "<html><body>Welcome</body></html>"],
    ["an empty 200", 200, ""],
    ["a JSON array", 400, '["error"]'],
    ["a JSON object without an error", 400, '{"message":"Bad request"}'],
    ["a JSON object whose error is not a string", 400, '{"error":{"code":"x"}}'],
  ];
  for (const [name, status, body, headers] of IMPOSTORS) {
    test(`acquireToken() calls ${name} at the IMDS address "no managed identity here", with what it said`, async () => {
      const fake = imds(undefined, () => new Response(body, { status, headers }));
      let now = NOW;
      const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true }, { now: () => now });
      const error = await unavailable(client.acquireToken(VAULT));
      assert.equal(error.status, status);
      assert.match(error.message, new RegExp(`^No managed identity endpoint here: IMDS at \\S+ answered ${status}, `));
      assert.match(error.message, /which is not Azure IMDS's answer/);
      assert.equal(tokenRequests(fake.seen).length, 0, "no token request, no retry");
      // Remembered like a failed connection: the next call fails at once, without a request.
      now += 5000;
      const again = await unavailable(client.acquireToken("https://storage.azure.com"));
      assert.match(again.message, /found 5 s ago/);
      assert.equal(fake.seen.length, 1);
    });
  }

  test("acquireToken() shows a short, redacted excerpt of what answered the probe", async () => {
    const body = `<html><body>Access denied eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl ${
      "x ".repeat(500)
    }</body></html>`;
    const fake = imds(undefined, () => new Response(body, { status: 403 }));
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    const error = await unavailable(client.acquireToken(VAULT));
    assert.match(error.message, /\("Access denied \[redacted\] x x/);
    assert.ok(!error.message.includes("eyJ"), error.message);
    assert.ok(error.message.length < 300, `${error.message.length} characters`);
  });

  test("acquireToken() calls a redirect in answer to the probe no IMDS", async () => {
    const fake = imds(
      undefined,
      () => new Response(null, { status: 302, headers: { location: "http://portal.example/" } }),
    );
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    const error = await unavailable(client.acquireToken(VAULT));
    assert.equal(error.status, 302);
    assert.equal(tokenRequests(fake.seen).length, 0);
  });

  test("acquireToken() takes Docker Desktop's 403 unreachable answer to the probe as no IMDS", async () => {
    const fake = imds(
      undefined,
      () => new Response("connecting to 169.254.169.254:80: unreachable network", { status: 403 }),
    );
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    const error = await unavailable(client.acquireToken(VAULT));
    assert.match(error.message, /unreachable/);
    assert.equal(tokenRequests(fake.seen).length, 0);
  });

  test("acquireToken() judges a 1 MiB answer to the probe at once, and shows a short excerpt of it", async () => {
    // Hostile bodies at the read cap: a page of `<`, and an IMDS-shaped JSON error padded to 1 MiB.
    const page = `<${"<".repeat(1024 * 1024 - 64)}`;
    const fake = imds(undefined, () => new Response(page, { status: 403 }));
    const started = performance.now();
    const error = await unavailable(testClient({ env: {}, fetch: fake.fetch, imdsProbe: true }).acquireToken(VAULT));
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
    assert.ok(error.message.length < 300, `${error.message.length} characters`);
    const padded = JSON.stringify({ error: "invalid_request", error_description: "x".repeat(1024 * 1024 - 128) });
    const imdsLike = imds(undefined, () => new Response(padded, { status: 400 }));
    const client = testClient({ env: {}, fetch: imdsLike.fetch, imdsProbe: true });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "t");
  });

  test("acquireToken() retries a refused connection with the full rules once IMDS has answered", async () => {
    let calls = 0;
    const sleeps: number[] = [];
    const client = testClient({
      env: {},
      imdsProbe: true,
      fetch: (request) => {
        calls++;
        if (request.headers.get("metadata") !== "true") {
          return Response.json({ error: "invalid_request" }, { status: 400 });
        }
        return Promise.reject(new TypeError("connection refused"));
      },
    }, {
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      random: () => 0,
    });
    const error = await unavailable(client.acquireToken(VAULT));
    assert.match(error.message, /Cannot reach "DefaultToIMDS"/);
    assert.equal(calls, 5, "one probe, then the first attempt and 3 retries");
    assert.deepEqual(sleeps, [1000, 2000, 4000]);
  });

  test("acquireToken() gives a slow token request its full timeout once the probe was answered", async () => {
    const fake = imds(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1200));
      return Response.json({ access_token: "slow", expires_in: 3600 });
    });
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "slow");
  });

  test("acquireToken() with imdsProbe: false sends no probe and follows the retry rules from the first request", async () => {
    let calls = 0;
    const sleeps: number[] = [];
    const client = testClient({
      env: {},
      imdsProbe: false,
      fetch: () => {
        calls++;
        return Promise.reject(new TypeError("connection refused"));
      },
    }, {
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      random: () => 0,
    });
    await unavailable(client.acquireToken(VAULT));
    assert.equal(calls, 4);
    assert.deepEqual(sleeps, [1000, 2000, 4000]);
  });

  test("acquireToken() keeps what a failing custom fetch found to the clients that use it", async () => {
    const cache = new TokenCache();
    const failing = testClient({
      env: {},
      cache,
      imdsProbe: true,
      fetch: () => Promise.reject(new TypeError("connection refused")),
    });
    await unavailable(failing.acquireToken(VAULT));
    const fake = imds();
    const working = testClient({ env: {}, cache, fetch: fake.fetch, imdsProbe: true });
    assert.equal((await working.acquireToken(VAULT)).accessToken, "t");
    assert.equal(probes(fake.seen).length, 1);
    // And the failing one still remembers its own verdict (for a resource the cache holds no token of).
    assert.match((await unavailable(failing.acquireToken("https://storage.azure.com"))).message, /found 0 s ago/);
  });

  test("acquireToken() applies an absence found within a short probe budget only to clients of no larger one", async () => {
    // IMDS on loopback, answering the probe in 300 ms: a 100 ms client finds it absent, a default one does not.
    const server = await loopback((request, response) => {
      const json = (status: number, body: unknown) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify(body));
      };
      if (request.headers.metadata === "true") return json(200, { access_token: "t", expires_in: 3600 });
      setTimeout(() => json(400, { error: "invalid_request" }), 300);
    });
    try {
      const cache = new TokenCache();
      const env = { AZURE_POD_IDENTITY_AUTHORITY_HOST: server.url };
      const hasty = testClient({ env, cache, imdsProbe: true, timeoutMs: 100 });
      assert.match((await unavailable(hasty.acquireToken(VAULT))).message, /did not answer within 100 ms/);
      const patient = testClient({ env, cache, imdsProbe: true });
      assert.equal((await patient.acquireToken(VAULT)).accessToken, "t");
      // IMDS has answered through this fetch: from now on every client of the cache goes straight to it.
      const another = testClient({ env, cache, imdsProbe: true, timeoutMs: 100 });
      assert.equal((await another.acquireToken("https://storage.azure.com")).accessToken, "t");
    } finally {
      await server.close();
    }
  });

  test("acquireToken() probes each IMDS endpoint on its own", async () => {
    const fake = imds();
    const a: EnvRecord = { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:41001" };
    const b: EnvRecord = { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:41002" };
    await testClient({ env: a, fetch: fake.fetch, imdsProbe: true }).acquireToken(VAULT);
    await testClient({ env: b, fetch: fake.fetch, imdsProbe: true }).acquireToken(VAULT);
    assert.deepEqual(probes(fake.seen).map((s) => s.url.port), ["41001", "41002"]);
  });

  test("acquireToken() ends only the aborting caller's wait for a shared probe", async () => {
    let answer!: (response: Response) => void;
    const fake = imds(undefined, () => new Promise<Response>((resolve) => answer = resolve));
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    const controller = new AbortController();
    const leaving = client.acquireToken(VAULT, { signal: controller.signal, forceRefresh: true });
    const staying = client.acquireToken("https://storage.azure.com");
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    const error = await leaving.then(() => undefined, (caught: unknown) => caught);
    assert.ok(error instanceof ManagedIdentityError);
    assert.equal(error.code, "aborted");
    answer(Response.json({ error: "invalid_request" }, { status: 400 }));
    assert.equal((await staying).accessToken, "t");
    assert.equal(probes(fake.seen).length, 1);
  });

  test("acquireToken() never probes the other sources", async () => {
    const fake = recorder();
    const client = testClient({
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" },
      fetch: fake.fetch,
      imdsProbe: true,
    });
    await client.acquireToken(VAULT);
    assert.equal(fake.seen.length, 1);
  });
});

describe("unavailable means try another credential", () => {
  test("acquireToken() calls IMDS's 400 Identity not found unavailable: no such identity here", async () => {
    const fake = imds(() =>
      Response.json({ error: "invalid_request", error_description: "Identity not found" }, { status: 400 })
    );
    const client = testClient({
      env: {},
      fetch: fake.fetch,
      imdsProbe: true,
      clientId: "00000000-0000-0000-0000-0000000000aa",
    });
    const error = await unavailable(client.acquireToken(VAULT));
    assert.equal(error.status, 400);
    assert.equal(error.errorDescription, "Identity not found");
  });

  test("acquireToken() keeps other IMDS 400s, and other sources' 400s, as request_failed", async () => {
    const imdsFake = imds(() =>
      Response.json({ error: "invalid_resource", error_description: "AADSTS500011: resource not found" }, {
        status: 400,
      })
    );
    const imdsError = await testClient({ env: {}, fetch: imdsFake.fetch, retry: false }).acquireToken(VAULT).catch((
      e,
    ) => e);
    assert.equal(imdsError.code, "request_failed");
    assert.equal(imdsError.name, "ManagedIdentityError");
    assert.ok(!(imdsError instanceof CredentialUnavailableError));
    const app = recorder(() => Response.json({ statusCode: 400, message: "Identity not found" }, { status: 400 }));
    const appError = await testClient({
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" },
      fetch: app.fetch,
    }).acquireToken(VAULT).catch((e) => e);
    assert.equal(appError.code, "request_failed");
  });

  const EVERY_SOURCE: [string, EnvRecord][] = [
    ["DefaultToIMDS", {}],
    ["AppService", { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" }],
    ["AzureML", { MSI_ENDPOINT: "http://127.0.0.1:41742/msi/auth", MSI_SECRET: "s" }],
    ["CloudShell", { MSI_ENDPOINT: "http://127.0.0.1:41743/oauth2/token" }],
    ["AzureArc", {
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
    }],
    ["ServiceFabric", {
      IDENTITY_ENDPOINT: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
      IDENTITY_HEADER: "h",
      IDENTITY_SERVER_THUMBPRINT: "AB".repeat(20),
    }],
  ];
  for (const [source, env] of EVERY_SOURCE) {
    test(`acquireToken() on ${source}: a refused connection is a CredentialUnavailableError, a 500 is not`, async () => {
      const refused = testClient({ env, retry: false, fetch: () => Promise.reject(new TypeError("refused")) });
      assert.equal(refused.source, source);
      await unavailable(refused.acquireToken(VAULT));
      const failing = testClient({ env, retry: false, fetch: () => new Response("down", { status: 500 }) });
      const error = await failing.acquireToken(VAULT).catch((e) => e);
      assert.ok(error instanceof ManagedIdentityError);
      assert.notEqual(error.code, "unavailable");
      assert.equal(error.name, "ManagedIdentityError");
    });
  }
});
