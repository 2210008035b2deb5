/**
 * The relay (src/emulator/relay.ts, docs/relay.md): real tokens from an origin served over the
 * App Service and IMDS protocols by the emulator's servers. The origins here are plain objects
 * that count their calls, with controllable delays and failures; no tool runs.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { CredentialUnavailableError, ManagedIdentityError } from "../mod.ts";
import {
  createEmulator,
  createRelay,
  OriginError,
  type OriginFailure,
  type OriginToken,
  RELAY_ERROR_STATUS,
  RELAY_MAX_RESOURCES,
  type RelayedIdentity,
  serve,
  type TokenOrigin,
} from "../src/emulator/mod.ts";
import { testClient } from "./helpers/fake.ts";

const VAULT = "https://vault.azure.net";
const HOUR = 3600;
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A JWT-shaped token, distinct per call. */
const jwtLike = (n: number) => `eyJ0eXAiOiJKV1QifQ.eyJ1c2VyIjoiZGV2ZWxvcGVyIn0.c2lnbmF0dXJlLTAwMDAwMDAw${n}`;

interface FakeOrigin extends TokenOrigin {
  /** The resources asked for, one per call. */
  readonly calls: string[];
  /** The signals the calls were given. */
  readonly signals: AbortSignal[];
}

/** An origin that answers each call with `answer` (a token an hour from now by default). */
function fakeOrigin(
  answer: (call: number, resource: string, signal: AbortSignal) => Promise<unknown> | unknown = (call) => ({
    accessToken: jwtLike(call),
    expiresOn: nowSeconds() + HOUR,
  }),
): FakeOrigin {
  const calls: string[] = [];
  const signals: AbortSignal[] = [];
  return {
    name: "fake",
    calls,
    signals,
    token(resource, signal) {
      calls.push(resource);
      signals.push(signal);
      return Promise.resolve(answer(calls.length, resource, signal)) as Promise<OriginToken>;
    },
  };
}

/** Raw control, C1 or bidirectional override characters. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\x00-\x1f\x7f-\x9f\u202e]/;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A request to App Service's handler or URL with the given secret (none when `null`). */
function appServiceRequest(base: string, resource: string, secret: string | null, extra = ""): Request {
  const headers: Record<string, string> = secret === null ? {} : { "X-IDENTITY-HEADER": secret };
  return new Request(`${base}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}${extra}`, { headers });
}

function imdsRequest(base: string, resource: string, extra = ""): Request {
  return new Request(
    `${base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(resource)}${extra}`,
    { headers: { Metadata: "true" } },
  );
}

const APP = "http://127.0.0.1:41741/msi/token";
const IMDS = "http://127.0.0.1:41742";

describe("clients of every kind against serve({ origin })", () => {
  test(
    "ManagedIdentityClient gets the origin's token over App Service and over IMDS",
    { timeout: 20_000 },
    async () => {
      const origin = fakeOrigin();
      const running = await serve({ origin, sources: ["AppService", "DefaultToIMDS"] });
      try {
        assert.deepEqual(Object.keys(running.env).sort(), ["AppService", "DefaultToIMDS"]);
        const app = await testClient({ env: running.env.AppService }).acquireToken(VAULT);
        assert.equal(app.accessToken, jwtLike(1));
        assert.equal(app.source, "AppService");
        // A second client, its own cache: the relay's kept token, no second origin call.
        const imds = await testClient({ env: running.env.DefaultToIMDS }).acquireToken(`${VAULT}/.default`);
        assert.equal(imds.accessToken, jwtLike(1));
        assert.equal(imds.source, "DefaultToIMDS");
        assert.equal(imds.expiresOn.getTime(), app.expiresOn.getTime());
        assert.deepEqual(origin.calls, [VAULT]);
      } finally {
        await running.close();
      }
    },
  );

  test("the bodies: App Service's and IMDS's fields, resource echoed, no client_id, expires_in from now", async () => {
    let clock = 1_800_000_000_000;
    const origin = fakeOrigin(() => ({ accessToken: jwtLike(1), expiresOn: 1_800_000_000 + HOUR }));
    const emulator = createEmulator({ origin, now: () => clock });
    const app = await emulator.handler("AppService")(appServiceRequest(APP, `${VAULT}/`, emulator.secret));
    assert.equal(app.status, 200);
    assert.deepEqual(await app.json(), {
      access_token: jwtLike(1),
      expires_on: String(1_800_000_000 + HOUR),
      resource: `${VAULT}/`,
      token_type: "Bearer",
    });
    clock += 600_000;
    const imds = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
    assert.equal(imds.status, 200);
    assert.deepEqual(await imds.json(), {
      access_token: jwtLike(1),
      expires_in: String(HOUR - 600),
      expires_on: String(1_800_000_000 + HOUR),
      ext_expires_in: String(HOUR - 600),
      resource: VAULT,
      token_type: "Bearer",
    });
    // A trailing slash is another resource: two calls.
    assert.deepEqual(origin.calls, [`${VAULT}/`, VAULT]);
  });
});

describe("caching and single flight", () => {
  test("100 concurrent first requests for one resource make exactly one origin call", { timeout: 20_000 }, async () => {
    const origin = fakeOrigin(async (call) => {
      await delay(200);
      return { accessToken: jwtLike(call), expiresOn: nowSeconds() + HOUR };
    });
    const running = await serve({ origin });
    try {
      const url = running.urls.AppService!;
      const answers = await Promise.all(
        Array.from({ length: 100 }, () => fetch(appServiceRequest(url, VAULT, running.emulator.secret))),
      );
      const bodies = await Promise.all(answers.map((answer) => answer.json()));
      assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([200]));
      assert.deepEqual(new Set(bodies.map((body) => body.access_token)), new Set([jwtLike(1)]));
      assert.equal(origin.calls.length, 1);
    } finally {
      await running.close();
    }
  });

  test("100 concurrent clients of this module, one origin call", { timeout: 20_000 }, async () => {
    const origin = fakeOrigin(async (call) => {
      await delay(100);
      return { accessToken: jwtLike(call), expiresOn: nowSeconds() + HOUR };
    });
    const running = await serve({ origin, sources: ["DefaultToIMDS"] });
    try {
      const tokens = await Promise.all(
        Array.from({ length: 100 }, () => testClient({ env: running.env.DefaultToIMDS }).acquireToken(VAULT)),
      );
      assert.deepEqual(new Set(tokens.map((token) => token.accessToken)), new Set([jwtLike(1)]));
      assert.equal(origin.calls.length, 1);
    } finally {
      await running.close();
    }
  });

  test("a token is kept until 5 minutes before its expiry, then fetched again", async () => {
    let clock = 1_800_000_000_000;
    const origin = fakeOrigin((call) => ({ accessToken: jwtLike(call), expiresOn: Math.floor(clock / 1000) + HOUR }));
    const emulator = createEmulator({ origin, now: () => clock });
    const ask = async () =>
      (await (await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret))).json())
        .access_token;
    assert.equal(await ask(), jwtLike(1));
    clock += (HOUR - 301) * 1000;
    assert.equal(await ask(), jwtLike(1));
    assert.equal(origin.calls.length, 1);
    clock += 1000; // 300 s left: within the margin
    assert.equal(await ask(), jwtLike(2));
    assert.equal(origin.calls.length, 2);
  });

  test("a token the origin gives with less than 5 minutes left is served but not kept", async () => {
    const origin = fakeOrigin((call) => ({ accessToken: jwtLike(call), expiresOn: nowSeconds() + 120 }));
    const relay = createRelay(origin);
    assert.equal((await relay.token(VAULT)).accessToken, jwtLike(1));
    assert.equal((await relay.token(VAULT)).accessToken, jwtLike(2));
  });

  test("a resource is kept as the client normalizes it: /.default cut, a trailing slash kept apart", async () => {
    const origin = fakeOrigin();
    const relay = createRelay(origin);
    await relay.token(VAULT);
    await relay.token(` ${VAULT}/.default `);
    await relay.token(`${VAULT}/`);
    assert.deepEqual(origin.calls, [VAULT, `${VAULT}/`]);
  });

  test("at most RELAY_MAX_RESOURCES resources are kept: the oldest is dropped", async () => {
    const origin = fakeOrigin();
    const relay = createRelay(origin);
    for (let index = 0; index <= RELAY_MAX_RESOURCES; index++) await relay.token(`api://resource-${index}`);
    assert.equal(origin.calls.length, RELAY_MAX_RESOURCES + 1);
    await relay.token(`api://resource-${RELAY_MAX_RESOURCES}`);
    assert.equal(origin.calls.length, RELAY_MAX_RESOURCES + 1);
    await relay.token("api://resource-0");
    assert.equal(origin.calls.length, RELAY_MAX_RESOURCES + 2);
  });
});

describe("failures", () => {
  test("a failed origin call is not kept: the next request tries again", async () => {
    const origin = fakeOrigin((call) => {
      if (call === 1) throw new OriginError("signed_out", "Please run 'az login' to setup account.");
      return { accessToken: jwtLike(call), expiresOn: nowSeconds() + HOUR };
    });
    const emulator = createEmulator({ origin });
    const failed = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
    assert.equal(failed.status, 400);
    const body = await failed.json();
    assert.equal(body.statusCode, 400);
    assert.equal(body.message, "Please run 'az login' to setup account.");
    assert.equal(typeof body.correlationId, "string");
    const ok = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).access_token, jwtLike(2));
    assert.equal(origin.calls.length, 2);
  });

  test("an origin that never answers is cut by the timeout: 504 in each source's shape, its signal aborted", {
    timeout: 20_000,
  }, async () => {
    const origin = fakeOrigin(() => new Promise(() => {})); // ignores its signal, too
    const emulator = createEmulator({ origin, originTimeoutMs: 100 });
    const started = Date.now();
    const app = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
    assert.ok(Date.now() - started < 5_000);
    assert.equal(app.status, 504);
    assert.match((await app.json()).message, /fake gave no token within 1 s/);
    assert.equal(origin.signals[0]!.aborted, true);
    const imds = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
    assert.equal(imds.status, 504);
    assert.deepEqual(await imds.json(), { error: "timeout", error_description: "fake gave no token within 1 s" });
    assert.equal(origin.calls.length, 2);
  });

  test("clear() stops an origin call in flight: its waiters get failed at once, the origin's signal aborted", async () => {
    // One origin that heeds its signal, one that ignores it: neither holds the waiters.
    for (const heeds of [true, false]) {
      const origin = fakeOrigin((_call, _resource, signal) =>
        new Promise((_resolve, reject) => {
          if (heeds) signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        })
      );
      const relay = createRelay(origin, { timeoutMs: 20_000 });
      const waiting = [relay.token(VAULT), relay.token(VAULT)];
      await delay(10);
      const started = Date.now();
      relay.clear();
      for (const each of waiting) {
        await assert.rejects(each, (error) => error instanceof OriginError && error.reason === "failed");
      }
      assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
      assert.equal(origin.calls.length, 1);
      assert.equal(origin.signals[0]!.aborted, true, heeds ? "heeds" : "ignores");
      // A new request starts a new call.
      relay.token(VAULT).catch(() => {});
      await delay(10);
      assert.equal(origin.calls.length, 2);
      relay.clear();
    }
  });

  test(
    "serve().close() and emulator.cleanup() do not wait for an origin call in flight",
    { timeout: 20_000 },
    async () => {
      const origin = fakeOrigin((_call, _resource, signal) =>
        new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))
      );
      const running = await serve({ origin, originTimeoutMs: 15_000 });
      const { IDENTITY_ENDPOINT, IDENTITY_HEADER } = running.env.AppService!;
      const url = `${IDENTITY_ENDPOINT}?resource=${encodeURIComponent(VAULT)}&api-version=2019-08-01`;
      const answer = fetch(url, { headers: { "X-IDENTITY-HEADER": IDENTITY_HEADER! } }).then(
        (response) => response.status,
        () => "no answer",
      );
      while (origin.calls.length === 0) await delay(5);
      const started = Date.now();
      await running.close();
      assert.ok(Date.now() - started < 2_000, `close() took ${Date.now() - started} ms`);
      assert.equal(origin.signals[0]!.aborted, true);
      assert.ok([500, "no answer"].includes(await answer), String(await answer));

      const emulator = createEmulator({ origin, originTimeoutMs: 15_000 });
      const pending = emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
      await delay(10);
      await emulator.cleanup();
      assert.equal((await pending).status, 500);
      assert.equal(origin.signals[1]!.aborted, true);
    },
  );

  test("each reason's status, in App Service's and IMDS's shapes", async () => {
    const reasons: OriginFailure[] = ["missing", "signed_out", "wrong_tenant", "timeout", "invalid_output", "failed"];
    for (const reason of reasons) {
      const origin = fakeOrigin(() => Promise.reject(new OriginError(reason, `the tool said ${reason}`)));
      const emulator = createEmulator({ origin });
      const app = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
      assert.equal(app.status, RELAY_ERROR_STATUS[reason], reason);
      const imds = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
      assert.equal(imds.status, RELAY_ERROR_STATUS[reason], reason);
      assert.deepEqual(await imds.json(), { error: reason, error_description: `the tool said ${reason}` });
    }
    assert.deepEqual(RELAY_ERROR_STATUS, {
      missing: 400,
      signed_out: 400,
      wrong_tenant: 400,
      invalid_output: 500,
      failed: 500,
      timeout: 504,
    });
  });

  test("what this module's client does with each: a person must act is not retried, a failure a few times", {
    timeout: 20_000,
  }, async () => {
    for (const source of ["AppService", "DefaultToIMDS"] as const) {
      for (const [reason, calls] of [["signed_out", 1], ["wrong_tenant", 1], ["failed", 3], ["timeout", 3]] as const) {
        const origin = fakeOrigin(() =>
          Promise.reject(new OriginError(reason, "Please run 'az login' to setup account."))
        );
        const running = await serve({ origin, sources: [source] });
        try {
          const client = testClient({ env: running.env[source], retry: { maxRetries: 2, delayMs: 1 } });
          await assert.rejects(client.acquireToken(VAULT), (error) => {
            assert.ok(error instanceof ManagedIdentityError && !(error instanceof CredentialUnavailableError));
            assert.equal(error.code, "request_failed");
            assert.equal(error.status, RELAY_ERROR_STATUS[reason]);
            assert.match(error.message, /Please run 'az login' to setup account\./);
            return true;
          });
          assert.equal(origin.calls.length, calls, `${source} ${reason}`);
        } finally {
          await running.close();
        }
      }
    }
  });

  test("an origin error's message passes the gate again: no kept token, no control character", async () => {
    let call = 0;
    const origin = fakeOrigin(() => {
      call++;
      if (call === 1) return { accessToken: jwtLike(1), expiresOn: nowSeconds() + 200 };
      throw new OriginError("failed", `boom \x1b[31mred\x1b[0m\r\nforged line; it was ${jwtLike(1)} and \u202eevil`);
    });
    const emulator = createEmulator({ origin });
    assert.equal((await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret))).status, 200);
    const answer = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
    assert.equal(answer.status, 500);
    const { message } = await answer.json();
    assert.ok(!message.includes(jwtLike(1)), message);
    assert.doesNotMatch(message, RAW_CONTROL);
    assert.match(message, /^boom/);
  });

  test("an origin that throws something other than an OriginError is a failure, its text through the gate", async () => {
    const origin = fakeOrigin(() => {
      throw new Error(`secret ${"x".repeat(50)} \x1b]0;title\x07`);
    });
    const emulator = createEmulator({ origin });
    const answer = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
    assert.equal(answer.status, 500);
    const body = await answer.json();
    assert.equal(body.error, "failed");
    assert.ok(!body.error_description.includes("x".repeat(50)));
    assert.doesNotMatch(body.error_description, RAW_CONTROL);
  });

  test("an OriginError with a reason outside the contract is answered as failed, 500", async () => {
    const origin = fakeOrigin(() => Promise.reject(new OriginError("nonsense" as OriginFailure, "odd")));
    const emulator = createEmulator({ origin });
    const answer = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
    assert.equal(answer.status, 500);
    assert.deepEqual(await answer.json(), { error: "failed", error_description: "odd" });
  });

  test("hostile origin output is never served, and not kept", async () => {
    const soon = nowSeconds() + HOUR;
    const hostile: [string, unknown][] = [
      ["escape sequence", { accessToken: "eyJ\x1b[31m.abc", expiresOn: soon }],
      ["space", { accessToken: "Bearer abc", expiresOn: soon }],
      ["line break", { accessToken: "abc\r\nX-Forged: 1", expiresOn: soon }],
      ["non-ASCII", { accessToken: "abc\u202edef", expiresOn: soon }],
      ["empty", { accessToken: "", expiresOn: soon }],
      ["huge", { accessToken: "a".repeat(40_000), expiresOn: soon }],
      ["not a string", { accessToken: 42, expiresOn: soon }],
      ["1e308", { accessToken: "abc", expiresOn: 1e308 }],
      ["Infinity", { accessToken: "abc", expiresOn: Infinity }],
      ["NaN", { accessToken: "abc", expiresOn: NaN }],
      ["negative", { accessToken: "abc", expiresOn: -1 }],
      ["past", { accessToken: "abc", expiresOn: nowSeconds() - 1 }],
      ["two years", { accessToken: "abc", expiresOn: nowSeconds() + 2 * 365 * 86400 }],
      ["a string", { accessToken: "abc", expiresOn: String(soon) }],
      ["null", null],
      ["a string answer", "abc"],
    ];
    for (const [what, answer] of hostile) {
      const origin = fakeOrigin((call) => call === 1 ? answer : { accessToken: jwtLike(call), expiresOn: soon });
      const emulator = createEmulator({ origin });
      // App Service gets the hostile answer, refused; IMDS the next call's good token, which is
      // kept; App Service again the kept one.
      const refused = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
      const text = await refused.text();
      assert.equal(refused.status, 500, what);
      assert.match(JSON.parse(text).message, /^fake's answer /, what);
      assert.ok(!text.includes("\\u001b") && !text.includes("X-Forged") && !text.includes("aaaaaaaa"), what);
      const imds = await emulator.handler("DefaultToIMDS")(imdsRequest(IMDS, VAULT));
      assert.equal(imds.status, 200, what);
      assert.equal((await imds.json()).access_token, jwtLike(2), what);
      const again = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, emulator.secret));
      assert.equal((await again.json()).access_token, jwtLike(2), what);
      assert.equal(origin.calls.length, 2, `${what}: the refused answer was not kept, the good one was`);
    }
  });
});

describe("secrets", () => {
  test("App Service without the secret, or with a wrong one, is refused (400) and the origin is not called", async () => {
    const origin = fakeOrigin();
    const emulator = createEmulator({ origin, secret: "s3cr3t-value-0123456789" });
    const wrongs = [null, "", "s3cr3t-value-012345678", "s3cr3t-value-01234567890", "S3CR3T-VALUE-0123456789", "x"];
    for (const wrong of wrongs) {
      const answer = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, wrong));
      assert.equal(answer.status, 400, String(wrong));
      const body = await answer.json();
      assert.equal(body.statusCode, 400);
      assert.match(body.message, /x-identity-header header is missing or wrong/);
    }
    assert.equal(origin.calls.length, 0);
    const right = await emulator.handler("AppService")(appServiceRequest(APP, VAULT, "s3cr3t-value-0123456789"));
    assert.equal(right.status, 200);
  });

  test("the emulator's other secrets are compared the same way: Azure ML's secret, Service Fabric's Secret", async () => {
    const emulator = createEmulator({ secret: "abcdefgh" });
    for (const [given, status] of [["abcdefgh", 200], ["abcdefg", 400], ["abcdefghi", 400]] as const) {
      const ml = await emulator.handler("AzureML")(
        new Request(`${APP}?api-version=2017-09-01&resource=${VAULT}`, { headers: { secret: given } }),
      );
      assert.equal(ml.status, status);
      const fabric = await emulator.handler("ServiceFabric")(
        new Request(`https://127.0.0.1:2377/msi/token?api-version=2020-05-01&resource=${VAULT}`, {
          headers: { Secret: given },
        }),
      );
      assert.equal(fabric.status, status === 200 ? 200 : 401);
    }
  });

  test("serve() with an origin refuses sources other than AppService and DefaultToIMDS, naming the two", async () => {
    const origin = fakeOrigin();
    await assert.rejects(
      serve({ origin, sources: ["AppService", "AzureArc"] }),
      (error) =>
        error instanceof TypeError && /AppService and DefaultToIMDS/.test(error.message) &&
        /AzureArc/.test(error.message),
    );
    assert.throws(() => createEmulator({ origin }).handler("CloudShell"), TypeError);
    // Without sources: App Service alone.
    const running = await serve({ origin });
    try {
      assert.deepEqual(Object.keys(running.env), ["AppService"]);
    } finally {
      await running.close();
    }
  });

  test("a relay answers no discovery document: its tokens are Entra's, not the emulator's", async () => {
    const emulator = createEmulator({ origin: fakeOrigin() });
    const answer = await emulator.handler("AppService")(
      new Request("http://127.0.0.1:41741/common/discovery/keys"),
    );
    assert.notEqual(answer.status, 200);
  });
});

describe("user-assigned identities", () => {
  test("a request naming a user-assigned ID gets the origin's token; each distinct ID is reported once", {
    timeout: 20_000,
  }, async () => {
    const seen: RelayedIdentity[] = [];
    const origin = fakeOrigin();
    const running = await serve({
      origin,
      sources: ["AppService", "DefaultToIMDS"],
      onIdentity: (identity) => seen.push(identity),
    });
    try {
      const clientId = "11111111-2222-3333-4444-555555555555";
      for (let round = 0; round < 2; round++) {
        const app = await testClient({ env: running.env.AppService, clientId }).acquireToken(VAULT);
        assert.equal(app.accessToken, jwtLike(1));
      }
      await testClient({ env: running.env.DefaultToIMDS, clientId: clientId.toUpperCase() }).acquireToken(VAULT);
      await testClient({ env: running.env.DefaultToIMDS, objectId: "66666666-7777-8888-9999-000000000000" })
        .acquireToken(VAULT);
      const resourceId =
        "/subscriptions/0/resourceGroups/r/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x";
      await testClient({ env: running.env.AppService, resourceId }).acquireToken(VAULT);
      await testClient({ env: running.env.DefaultToIMDS, resourceId }).acquireToken(VAULT);
      assert.deepEqual(seen, [
        { parameter: "client_id", id: clientId },
        { parameter: "object_id", id: "66666666-7777-8888-9999-000000000000" },
        { parameter: "mi_res_id", id: resourceId },
        { parameter: "msi_res_id", id: resourceId },
      ]);
      assert.equal(origin.calls.length, 1);
    } finally {
      await running.close();
    }
  });

  test("a hostile ID is reported escaped and bounded; a listener that throws breaks nothing", async () => {
    const seen: RelayedIdentity[] = [];
    const emulator = createEmulator({
      origin: fakeOrigin(),
      onIdentity: (identity) => {
        seen.push(identity);
        throw new Error("listener failed");
      },
    });
    const id = `\x1b]0;owned\x07\u202e${"z".repeat(1000)}`;
    const answer = await emulator.handler("DefaultToIMDS")(
      imdsRequest(IMDS, VAULT, `&client_id=${encodeURIComponent(id)}`),
    );
    assert.equal(answer.status, 200);
    assert.equal(seen.length, 1);
    assert.doesNotMatch(seen[0]!.id, RAW_CONTROL);
    assert.ok(seen[0]!.id.startsWith("\\x1b]0;owned\\x07\\u202e"));
    assert.ok(seen[0]!.id.length < 300);
  });
});

/** A private (RFC 1918 or ULA) address of this machine, if it has one. */
function privateAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.internal) continue;
      const a = entry.address;
      if (
        entry.family === "IPv4" && (/^10\./.test(a) || /^192\.168\./.test(a) || /^172\.(1[6-9]|2\d|3[01])\./.test(a))
      ) return a;
      if (entry.family === "IPv6" && /^f[cd]/i.test(a) && !a.includes("%")) return a;
    }
  }
  return undefined;
}

describe("listening beyond loopback", () => {
  test("the relay on a private address of this machine (else loopback), a client reaching it there", {
    timeout: 20_000,
  }, async () => {
    const hostname = privateAddress() ?? "127.0.0.1";
    console.log(`# relay listening on ${hostname === "127.0.0.1" ? "loopback (no private address here)" : hostname}`);
    const origin = fakeOrigin();
    const running = await serve({ origin, hostname });
    try {
      const endpoint = new URL(running.env.AppService!.IDENTITY_ENDPOINT!);
      assert.equal(endpoint.hostname.replace(/^\[|\]$/g, ""), hostname);
      const token = await testClient({ env: running.env.AppService }).acquireToken(VAULT);
      assert.equal(token.accessToken, jwtLike(1));
    } finally {
      await running.close();
    }
  });
});
