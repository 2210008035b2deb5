/**
 * "No managed identity here" in about a second (src/first_contact.ts): until IMDS has answered
 * once, a probe goes first; a refused connection or no answer within 1 s ends the call with
 * `unavailable` (a CredentialUnavailableError), remembered for 10 s; once IMDS has answered,
 * the full retry and timeout rules apply. Real loopback sockets where only sockets show it.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CredentialUnavailableError, type EnvRecord, ManagedIdentityError, type ManagedIdentityEvent } from "../mod.ts";
import { recorder, type Seen, testClient } from "./helpers/fake.ts";
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

  test("acquireToken() takes any HTTP answer to the probe as IMDS being there", async () => {
    for (const status of [400, 403, 404, 500, 503]) {
      const fake = imds(undefined, () => new Response("no", { status }));
      const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
      assert.equal((await client.acquireToken(VAULT)).accessToken, "t", `probe answered ${status}`);
    }
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

  test("acquireToken() looks for unreachable in the first 16 KiB of the probe's 403 only", async () => {
    // A body that says so only after 1 MiB of filler is some other 403: IMDS answered.
    const fake = imds(undefined, () => new Response(`${"x ".repeat(512 * 1024 - 64)} unreachable`, { status: 403 }));
    const client = testClient({ env: {}, fetch: fake.fetch, imdsProbe: true });
    assert.equal((await client.acquireToken(VAULT)).accessToken, "t");
    assert.equal(probes(fake.seen).length, 1);
  });

  test("acquireToken() retries a refused connection with the full rules once IMDS has answered", async () => {
    let calls = 0;
    const sleeps: number[] = [];
    const client = testClient({
      env: {},
      imdsProbe: true,
      fetch: (request) => {
        calls++;
        if (request.headers.get("metadata") !== "true") return new Response(null, { status: 400 });
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
    answer(new Response(null, { status: 400 }));
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
