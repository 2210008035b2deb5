/**
 * The emulator's failure rehearsal (issue 17, section 4): named scenarios (`throttled`,
 * `unknown-resource`, `updating`, `server-error`, `slow`, `silent`, `no-identity`), read by
 * `parseFailures()` and given to `azmi emulate --fail`, make each source answer as its real
 * endpoint does, and the client (`ManagedIdentityClient`) sees exactly the error code, status and
 * retries the real endpoint would cause. The expected outcomes below are written from
 * docs/retries.md's rules and docs/sources.md's recorded bodies, not read back from src/. The
 * permissions each source starts with are in tests/emulator_permissions_test.ts.
 *
 * Handlers are called directly (no sockets) where the protocol is the point; real loopback
 * servers where the runtime is. Backoff never costs real time: the client's `sleep` and `now` are
 * a fake clock.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import {
  CredentialUnavailableError,
  type EnvRecord,
  type ManagedIdentityClientOptions,
  ManagedIdentityError,
  type ManagedIdentityEvent,
  type Source,
} from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import {
  ALL_SOURCES,
  createEmulator,
  DEV_CERTIFICATE_THUMBPRINT,
  type Emulator,
  EMULATOR_TENANT,
  type EmulatorOptions,
  type FailureScenario,
  parseFailures,
  readClaims,
  serve,
} from "../src/emulator/mod.ts";
import { run } from "./helpers/cli.ts";
import { blockOf, startEmulate } from "./helpers/emulate.ts";
import { VAULT, withRealTempDir } from "./helpers/emulator.ts";
import { testClient } from "./helpers/fake.ts";
import { fakeTime } from "./helpers/faults.ts";

// ---------------------------------------------------------------------------------------------
// Failure rehearsal
// ---------------------------------------------------------------------------------------------

const LOCAL = "http://127.0.0.1:41741";

/** Environment variables that make a client detect `source` (its requests go to the handler). */
async function envFor(emulator: Emulator, source: Source): Promise<EnvRecord> {
  switch (source) {
    case "WorkloadIdentity":
      return {
        AZURE_FEDERATED_TOKEN_FILE: await emulator.federatedTokenFile(),
        AZURE_TENANT_ID: EMULATOR_TENANT,
        AZURE_CLIENT_ID: emulator.systemIdentity.clientId,
        AZURE_AUTHORITY_HOST: `${LOCAL}/`,
      };
    case "ServiceFabric":
      return {
        IDENTITY_ENDPOINT: "https://127.0.0.1:41741/msi/token",
        IDENTITY_HEADER: emulator.secret,
        IDENTITY_SERVER_THUMBPRINT: DEV_CERTIFICATE_THUMBPRINT,
      };
    case "AppService":
      return { IDENTITY_ENDPOINT: `${LOCAL}/msi/token`, IDENTITY_HEADER: emulator.secret };
    case "AzureML":
      return { MSI_ENDPOINT: `${LOCAL}/msi/token`, MSI_SECRET: emulator.secret };
    case "CloudShell":
      return { MSI_ENDPOINT: `${LOCAL}/msi/token` };
    case "AzureArc":
      return {
        IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        IMDS_ENDPOINT: "http://127.0.0.1:40342",
      };
    case "DefaultToIMDS":
      return { AZURE_POD_IDENTITY_AUTHORITY_HOST: LOCAL };
  }
}

/** What one call ended with, as a rehearsal test checks it. */
interface Rehearsal {
  readonly error?: ManagedIdentityError;
  readonly token?: string;
  /** The statuses the emulator answered, in order (0: never answered). */
  readonly statuses: number[];
  /** The client's waits between attempts. */
  readonly sleeps: number[];
  readonly retries: ManagedIdentityEvent[];
}

/** Creates an emulator with `options` and lets a client of `source` acquire one token from it. */
async function rehearse(
  source: Source,
  options: EmulatorOptions,
  client: Partial<ManagedIdentityClientOptions> = {},
  dir?: string,
): Promise<Rehearsal> {
  const run = async (directory: string): Promise<Rehearsal> => {
    const emulator = createEmulator({ arcKeyDirectory: directory, federatedTokenDirectory: directory, ...options });
    // The client's clock starts at the emulator's (which issues tokens by the real one).
    const time = fakeTime(Date.now());
    const retries: ManagedIdentityEvent[] = [];
    const mi = testClient(
      {
        env: await envFor(emulator, source),
        fetch: emulator.handler(source),
        onEvent: (event) => retries.push(event),
        ...client,
      },
      { arcTokenDirectory: directory, now: time.now, sleep: time.sleep, random: () => 0 },
    );
    let outcome: { token: string } | { error: ManagedIdentityError };
    try {
      outcome = { token: (await mi.acquireToken(VAULT)).accessToken };
    } catch (error) {
      assert.ok(error instanceof ManagedIdentityError, `${source}: ${error}`);
      outcome = { error };
    }
    // A request left unanswered is logged once its client has given up: let that settle.
    await new Promise((resolve) => setTimeout(resolve, 10));
    await emulator.cleanup();
    return { ...outcome, statuses: emulator.requests.map((r) => r.status), sleeps: time.sleeps, retries };
  };
  return dir ? await run(dir) : await withRealTempDir(run);
}

/** The statuses a source's token requests got: Arc's challenge (401) first, answered as normal. */
const withChallenge = (source: Source, statuses: number[]) => source === "AzureArc" ? [401, ...statuses] : statuses;

/** Every source where a failure applies. */
const SOURCES_BUT = (...except: Source[]) => ALL_SOURCES.filter((source) => !except.includes(source));

// docs/retries.md: which statuses each source's rules retry.
const RETRIED: Readonly<Record<Source, (status: number) => boolean>> = {
  DefaultToIMDS: (s) => [404, 408, 410, 429].includes(s) || (s >= 500 && s < 600),
  AppService: (s) => [404, 408, 429, 500, 502, 503, 504].includes(s),
  AzureArc: (s) => [404, 408, 429, 500, 502, 503, 504].includes(s),
  CloudShell: (s) => [404, 408, 429, 500, 502, 503, 504].includes(s),
  AzureML: (s) => [404, 408, 429, 500, 502, 503, 504].includes(s),
  ServiceFabric: (s) => s === 429 || (s >= 500 && s < 600),
  WorkloadIdentity: (s) => s === 429 || (s >= 500 && s < 600),
};
/** Attempts a client with the default budget (3 retries) makes against a status that never changes. */
const attemptsFor = (source: Source, status: number) => RETRIED[source](status) ? 4 : 1;

describe("parseFailures()", () => {
  test("reads names, values, counts and sources; defaults per kind", () => {
    assert.deepEqual(parseFailures("throttled"), [{ kind: "throttled" }]);
    assert.deepEqual(parseFailures(" throttled=30:2@imds , slow=2000:always@AppService,server-error=503@ml "), [
      { kind: "throttled", retryAfterSeconds: 30, times: 2, source: "DefaultToIMDS" },
      { kind: "slow", delayMs: 2000, times: "always", source: "AppService" },
      { kind: "server-error", status: 503, source: "AzureML" },
    ]);
    assert.deepEqual(parseFailures("no-identity@wi,unknown-resource:3@cloudshell,silent@arc,updating"), [
      { kind: "no-identity", source: "WorkloadIdentity" },
      { kind: "unknown-resource", times: 3, source: "CloudShell" },
      { kind: "silent", source: "AzureArc" },
      { kind: "updating" },
    ]);
  });

  const refused: [string, RegExp][] = [
    ["", /empty/],
    ["throttle", /"throttle".*throttled, unknown-resource, updating, server-error, slow, silent, no-identity/],
    ["throttled:0", /count/],
    ["throttled:-1", /"throttled:-1"/],
    ["throttled=x", /"throttled=x"/],
    ["server-error=404", /500 to 599/],
    ["slow=0", /delay/],
    ["silent=5", /takes no value/],
    ["updating@appservice", /updating.*DefaultToIMDS only/],
    ["no-identity@cloudshell", /Cloud Shell.*signed-in user/],
    ["throttled@mars", /"mars"/],
    ["throttled:always,server-error@imds", /always.*last/],
    ["a".repeat(2000), /too long/],
    // A terminal escape in the item is shown, not sent: ESC and CSI (\x9b) as \xNN.
    ["throttled@\x1b[31mimds\x9b", /unknown source "\\x1b\[31mimds\\x9b"/],
    ["\x1b]0;title\x07", /"\\x1b\]0;title\\x07"/],
  ];
  for (const [text, message] of refused) {
    test(`refuses ${JSON.stringify(text.slice(0, 40))} with a TypeError`, () => {
      assert.throws(() => parseFailures(text), (error: unknown) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, message);
        // deno-lint-ignore no-control-regex
        assert.doesNotMatch(error.message, /[\x00-\x1f\x7f-\x9f]/, "no control character reaches a terminal");
        return true;
      });
    });
  }

  test("reads a long hostile list in linear time", () => {
    const text = `${"throttled:1@imds,".repeat(40)}x`;
    assert.throws(() => parseFailures(text), TypeError);
    const started = performance.now();
    assert.throws(() => parseFailures(`${"=".repeat(900)}`), TypeError);
    assert.throws(() => parseFailures(`throttled${":9".repeat(450)}`), TypeError);
    assert.ok(performance.now() - started < 100);
  });
});

describe("failure rehearsal: throttled (429 with Retry-After)", () => {
  for (const source of ALL_SOURCES) {
    test(`${source}: 429 twice with Retry-After 2, then a token after two retries, each wait at least 2 s`, async () => {
      const result = await rehearse(source, { fail: [{ kind: "throttled", times: 2, retryAfterSeconds: 2 }] });
      assert.ok(result.token, `${source}: ${result.error?.message}`);
      assert.deepEqual(result.statuses, withChallenge(source, [429, 429, 200]));
      assert.equal(result.sleeps.length, 2);
      for (const wait of result.sleeps) assert.ok(wait >= 2000, `${source} waited ${wait} ms`);
      assert.deepEqual(result.retries.map((e) => e.type === "retry" && e.reason), ["status 429", "status 429"]);
    });
  }

  test("always: every source gives up after its retries with status 429 and the body the endpoint sends", async () => {
    const bodies: Partial<Record<Source, [string | undefined, RegExp]>> = {
      // terraform-provider-azurerm #20901: IMDS's own words.
      DefaultToIMDS: ["invalid_request", /^Temporarily throttled, too many requests$/],
      AzureArc: ["invalid_request", /^Temporarily throttled, too many requests$/],
    };
    for (const source of ALL_SOURCES) {
      const result = await rehearse(source, { fail: "throttled:always" });
      assert.equal(result.error?.code, "request_failed", source);
      assert.equal(result.error?.status, 429, source);
      assert.equal(result.statuses.filter((s) => s === 429).length, 4, source);
      const body = bodies[source];
      if (body) {
        assert.equal(result.error?.error, body[0], source);
        assert.match(result.error?.errorDescription ?? "", body[1], source);
      }
    }
  });

  test("Microsoft Entra ID's 429 (workload identity) is its plain-text body; a new call right after fails at once", async () => {
    await withRealTempDir(async (dir) => {
      const emulator = createEmulator({ federatedTokenDirectory: dir, fail: "throttled=60:always@wi" });
      const handler = emulator.handler("WorkloadIdentity");
      const time = fakeTime(Date.now());
      const client = testClient(
        { env: await envFor(emulator, "WorkloadIdentity"), fetch: handler, retry: { maxRetries: 1 } },
        { now: time.now, sleep: time.sleep },
      );
      const first = await client.acquireToken(VAULT).catch((error: ManagedIdentityError) => error);
      assert.ok(first instanceof ManagedIdentityError);
      assert.equal(first.status, 429);
      assert.deepEqual(time.sleeps, [60_000]);
      const raw = await handler(new Request(`${LOCAL}/${EMULATOR_TENANT}/oauth2/v2.0/token`, { method: "POST" }));
      assert.equal(raw.headers.get("retry-after"), "60");
      assert.match(raw.headers.get("content-type") ?? "", /^text\/plain/);
      assert.equal(await raw.text(), "Too Many Requests");
      // The client remembers the Retry-After: the next call does not reach the endpoint.
      const before = emulator.requests.length;
      const second = await client.acquireToken(VAULT).catch((error: ManagedIdentityError) => error);
      assert.ok(second instanceof ManagedIdentityError && second.status === 429);
      assert.equal(emulator.requests.length, before);
      await emulator.cleanup();
    });
  });

  test("IMDS's first-contact probe is answered as normal and does not use up the count", async () => {
    const result = await rehearse("DefaultToIMDS", { fail: "throttled:1" }, { imdsProbe: true });
    assert.ok(result.token, result.error?.message);
    assert.deepEqual(result.statuses, [400, 429, 200], "the probe's 400, then the throttled token request");
  });
});

describe("failure rehearsal: unknown-resource (each source's real error)", () => {
  const expected: Readonly<Record<Source, { status: number; error?: string; description: RegExp }>> = {
    // MSAL .NET #3979: IMDS relays Entra's AADSTS500011 in its own shape.
    DefaultToIMDS: {
      status: 400,
      error: "invalid_resource",
      description:
        /^AADSTS500011: The resource principal named https:\/\/vault\.azure\.net was not found in the tenant/,
    },
    AzureArc: {
      status: 400,
      error: "invalid_resource",
      description: /^AADSTS500011: The resource principal named https:\/\/vault\.azure\.net was not found/,
    },
    // azure-sdk-for-net #44685, azure-functions-host #9884: a generic 500, retried.
    AppService: { status: 500, description: /^An unexpected error occured while fetching the AAD Token\.$/ },
    AzureML: { status: 500, description: /^An unexpected error occured while fetching the AAD Token\.$/ },
    // Azure/CloudShell #477.
    CloudShell: {
      status: 400,
      error: "AudienceNotSupported",
      description: /^Audience https:\/\/vault\.azure\.net is not a supported MSI token audience\.$/,
    },
    ServiceFabric: { status: 400, error: "invalid_resource", description: /^AADSTS500011: / },
    // microsoft-identity-web #2796: Entra's own answer.
    WorkloadIdentity: {
      status: 400,
      error: "invalid_resource",
      description:
        /^AADSTS500011: The resource principal named https:\/\/vault\.azure\.net was not found in the tenant named/,
    },
  };
  for (const source of ALL_SOURCES) {
    const want = expected[source];
    test(`${source}: ${want.status}${want.error ? ` ${want.error}` : ""}, ${attemptsFor(source, want.status)} attempt(s)`, async () => {
      const result = await rehearse(source, { fail: "unknown-resource" });
      assert.equal(result.error?.code, "request_failed", result.error?.message);
      assert.equal(result.error?.status, want.status);
      if (want.error) assert.equal(result.error?.error, want.error);
      assert.match(result.error?.errorDescription ?? "", want.description);
      const attempts = attemptsFor(source, want.status);
      assert.deepEqual(result.statuses, withChallenge(source, Array(attempts).fill(want.status)));
      if (source === "AppService" || source === "AzureML") {
        // The correlation ID comes in the body and in X-CORRELATION-ID.
        assert.match(result.error?.correlationId ?? "", /^[0-9a-f-]{36}$/);
      }
    });
  }
});

describe("failure rehearsal: updating (IMDS's 410)", () => {
  test("once: a token after one retry", async () => {
    const result = await rehearse("DefaultToIMDS", { fail: "updating" });
    assert.ok(result.token, result.error?.message);
    assert.deepEqual(result.statuses, [410, 200]);
  });

  test("always: retried past the retry budget for 70 s of the client's clock, then status 410", async () => {
    const result = await rehearse("DefaultToIMDS", { fail: "updating:always" });
    assert.equal(result.error?.code, "request_failed");
    assert.equal(result.error?.status, 410);
    assert.ok(result.statuses.length > 4, `only ${result.statuses.length} attempts`);
    assert.ok(result.statuses.every((status) => status === 410));
    const waited = result.sleeps.reduce((sum, ms) => sum + ms, 0);
    assert.ok(waited >= 70_000 && waited < 90_000, `waited ${waited} ms`);
    assert.ok(result.sleeps.every((ms) => ms <= 10_000), "each wait is capped at 10 s");
  });

  test("applies to IMDS only: other sources answer as normal", async () => {
    for (const source of SOURCES_BUT("DefaultToIMDS")) {
      const result = await rehearse(source, { fail: "updating:always" });
      assert.ok(result.token, `${source}: ${result.error?.message}`);
    }
  });
});

describe("failure rehearsal: server-error", () => {
  for (const source of ALL_SOURCES) {
    test(`${source}: one 500, then a token after one retry`, async () => {
      const result = await rehearse(source, { fail: "server-error" });
      assert.ok(result.token, result.error?.message);
      assert.deepEqual(result.statuses, withChallenge(source, [500, 200]));
    });
  }

  test("server-error=501:always is retried where the source's rules retry 501, and only there", async () => {
    for (const source of ALL_SOURCES) {
      const result = await rehearse(source, { fail: "server-error=501:always" });
      assert.equal(result.error?.status, 501, source);
      assert.equal(result.statuses.filter((s) => s === 501).length, attemptsFor(source, 501), source);
    }
  });

  test("App Service's 500 is its recorded body, with the correlation ID", async () => {
    const emulator = createEmulator({ fail: "server-error:always" });
    const answer = await emulator.handler("AppService")(
      new Request(`${LOCAL}/msi/token?api-version=2019-08-01&resource=${VAULT}`, {
        headers: { "x-identity-header": emulator.secret },
      }),
    );
    const body = await answer.json() as { statusCode: number; message: string; correlationId: string };
    assert.equal(answer.status, 500);
    assert.equal(body.statusCode, 500);
    assert.equal(body.message, "An unexpected error occured while fetching the AAD Token.");
    assert.equal(answer.headers.get("x-correlation-id"), body.correlationId);
  });
});

describe("failure rehearsal: slow and silent endpoints", () => {
  // One test per source: each takes about a second of real time (Bun's default timeout is 5 s).
  for (const source of ALL_SOURCES) {
    test(`slow, ${source}: the answer comes late but comes; a client whose attempts are shorter times out`, async () => {
      const started = performance.now();
      const patient = await rehearse(source, { fail: "slow=60" }, { timeoutMs: 5000 });
      assert.ok(patient.token, patient.error?.message);
      assert.ok(performance.now() - started >= 55, `answered in ${performance.now() - started} ms`);
      const hasty = await rehearse(source, { fail: "slow=800" }, { timeoutMs: 200 });
      assert.equal(hasty.error?.code, "timeout", hasty.error?.message);
      // Timeouts are retried on every source (docs/retries.md); Arc's challenge is answered at once.
      assert.equal(hasty.retries.length, 3);
    });
  }

  for (const source of ALL_SOURCES) {
    // Arc's challenge is the first request and is never retried.
    const attempts = source === "AzureArc" ? 1 : 4;
    test(`silent, ${source}: no request is answered; ${attempts} attempt(s) time out`, async () => {
      const result = await rehearse(source, { fail: "silent" }, { timeoutMs: 150 });
      assert.equal(result.error?.code, "timeout", result.error?.message);
      assert.deepEqual(result.statuses, Array(attempts).fill(0));
    });
  }

  test("silent IMDS says 'no managed identity here' within the probe's second", async () => {
    const started = performance.now();
    const result = await rehearse("DefaultToIMDS", { fail: "silent" }, { imdsProbe: true });
    assert.ok(result.error instanceof CredentialUnavailableError, result.error?.message);
    assert.deepEqual(result.statuses, [0]);
    assert.ok(performance.now() - started < 3000);
  });

  test("serve(): close() ends at once with a silent request pending, and recover() answers it", async () => {
    const running = await serve({ sources: ["AppService"], fail: "silent" });
    const url = `${running.urls.AppService}?api-version=2019-08-01&resource=${encodeURIComponent(VAULT)}`;
    const headers = { "x-identity-header": running.emulator.secret };
    const pending = fetch(url, { headers });
    await new Promise((resolve) => setTimeout(resolve, 100));
    running.emulator.recover();
    const answered = await pending;
    assert.equal(answered.status, 200, "recovered: the waiting request gets its token");
    await answered.body?.cancel();
    running.emulator.fail("silent:always");
    const stuck = fetch(url, { headers }).then((r) => r.body?.cancel(), () => {});
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await running.close();
    assert.ok(performance.now() - started < 2000, `close() took ${performance.now() - started} ms`);
    await stuck;
  });
});

describe("failure rehearsal: no-identity", () => {
  const expected: Readonly<
    Record<Exclude<Source, "CloudShell">, { status: number; code: string; description: RegExp }>
  > = {
    // azure-sdk-for-net #37278: IMDS's answer; the client calls it unavailable.
    DefaultToIMDS: { status: 400, code: "unavailable", description: /^Identity not found$/ },
    AzureArc: { status: 404, code: "request_failed", description: /has not been assigned/ },
    // azure-sdk-for-net #43691: a system-assigned request where only user-assigned ones are.
    AppService: { status: 400, code: "request_failed", description: /^Unable to load the proper Managed Identity\.$/ },
    AzureML: { status: 400, code: "request_failed", description: /No managed identity found/ },
    ServiceFabric: { status: 404, code: "request_failed", description: /Managed identity not found/ },
    WorkloadIdentity: {
      status: 400,
      code: "request_failed",
      description: /^AADSTS70021: No matching federated identity/,
    },
  };
  for (const [source, want] of Object.entries(expected) as [Source, (typeof expected)["AppService"]][]) {
    test(`${source}: ${want.status}, ${want.code}`, async () => {
      const result = await rehearse(source, { fail: "no-identity" });
      assert.equal(result.error?.code, want.code, result.error?.message);
      assert.equal(result.error?.status, want.status);
      assert.match(result.error?.errorDescription ?? "", want.description);
      const attempts = want.code === "unavailable" ? 1 : attemptsFor(source, want.status);
      assert.deepEqual(result.statuses, withChallenge(source, Array(attempts).fill(want.status)));
    });
  }

  test("App Service, user-assigned: its recorded answer for an identity it does not have", async () => {
    await withRealTempDir(async (dir) => {
      const emulator = createEmulator({ fail: "no-identity" });
      const clientId = emulator.identities[0]!.clientId;
      const result = await rehearse("AppService", { fail: "no-identity", identities: emulator.identities }, {
        clientId,
      }, dir);
      assert.equal(result.error?.status, 400);
      assert.equal(
        result.error?.errorDescription,
        "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.",
      );
    });
  });

  test("App Service's every user-assigned selector gets that answer: client_id, object_id, principal_id, mi_res_id", async () => {
    for (const parameter of ["client_id", "object_id", "principal_id", "mi_res_id"]) {
      const emulator = createEmulator({ fail: "no-identity" });
      const url = `http://127.0.0.1:41741/msi/token?api-version=2019-08-01&resource=${VAULT}&${parameter}=abc`;
      const answer = await emulator.handler("AppService")(
        new Request(url, { headers: { "X-IDENTITY-HEADER": emulator.secret } }),
      );
      assert.equal(answer.status, 400, parameter);
      assert.match(await answer.text(), /No User Assigned or Delegated Managed Identity found/, parameter);
    }
  });

  test("Cloud Shell always answers for the signed-in user: no-identity does not apply there", async () => {
    const result = await rehearse("CloudShell", { fail: "no-identity" });
    assert.ok(result.token, result.error?.message);
  });
});

describe("failure rehearsal: sequences, fail() and recover()", () => {
  test("scenarios follow one another per source, then normal answers", async () => {
    const result = await rehearse("AppService", { fail: "server-error=503,throttled" });
    assert.ok(result.token, result.error?.message);
    assert.deepEqual(result.statuses, [503, 429, 200]);
  });

  test("a scenario for one source leaves the others alone", async () => {
    const throttled = await rehearse("AppService", { fail: "throttled:always@appservice" });
    assert.equal(throttled.error?.status, 429);
    const other = await rehearse("AzureML", { fail: "throttled:always@appservice" });
    assert.ok(other.token, other.error?.message);
  });

  test("fail() adds scenarios at run time, recover() ends them (and the scripted faults)", async () => {
    const emulator = createEmulator({ faults: { AppService: [{ status: 503 }] } });
    const handler = emulator.handler("AppService");
    const ask = async () =>
      (await handler(
        new Request(`${LOCAL}/msi/token?api-version=2019-08-01&resource=${VAULT}`, {
          headers: { "x-identity-header": emulator.secret },
        }),
      )).status;
    emulator.fail([{ kind: "unknown-resource", source: "AppService" }]);
    assert.equal(await ask(), 503, "a scripted fault comes first");
    assert.equal(await ask(), 500);
    assert.equal(await ask(), 500, "unknown-resource lasts");
    emulator.recover();
    assert.equal(await ask(), 200);
    assert.throws(() => emulator.fail("nonsense"), TypeError);
  });

  test("the README's example: a 429 twice, then a token, and what the client does", async () => {
    // docs/emulator.md, "Rehearse failures": the same numbers.
    const result = await rehearse("AppService", { fail: "throttled:2" });
    assert.ok(result.token);
    assert.deepEqual(result.statuses, [429, 429, 200]);
    assert.deepEqual(result.retries.map((e) => e.type === "retry" ? [e.attempt, e.delayMs, e.reason] : []), [
      [1, 1000, "status 429"],
      [2, 1000, "status 429"],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// azmi emulate --fail
// ---------------------------------------------------------------------------------------------

describe("azmi emulate --fail", () => {
  test("--fail throttled:2 on App Service: the output says so, and a client gets its token after two 429s", async () => {
    const emulate = await startEmulate(["--source", "appservice", "--fail", "throttled:2"]);
    try {
      assert.match(
        emulate.out(),
        /^# Failure rehearsal: AppService answers 2 token requests with 429 \(Retry-After: 1 s\), then tokens\.$/m,
      );
      const time = fakeTime(Date.now());
      const client = testClient({ env: blockOf(emulate.out(), "AppService") }, { sleep: time.sleep, now: time.now });
      const token = await client.acquireToken(VAULT);
      assert.equal(readClaims(token.accessToken)?.azmi_source, "AppService");
      assert.equal(time.sleeps.length, 2);
    } finally {
      emulate.stop.abort();
    }
    assert.equal(await emulate.running, EXIT_CODES.ok);
  });

  test("--fail lists each source's scenarios in order", async () => {
    const emulate = await startEmulate(["--source", "imds", "--fail", "throttled=0:2,slow=250:3,unknown-resource"]);
    try {
      const lines = emulate.out().split("\n").filter((line) => line.startsWith("# Failure rehearsal: "));
      assert.deepEqual(lines, [
        "# Failure rehearsal: DefaultToIMDS answers 2 token requests with 429 (no Retry-After), then:",
        "# Failure rehearsal: DefaultToIMDS answers 3 token requests 250 ms late, then:",
        "# Failure rehearsal: DefaultToIMDS answers every token request with its answer for an unknown resource (400).",
      ]);
    } finally {
      emulate.stop.abort();
    }
    assert.equal(await emulate.running, EXIT_CODES.ok);
  });

  test("--fail no-identity on all sources: Cloud Shell is left to answer, the others refuse", async () => {
    await withRealTempDir(async (dir) => {
      const emulate = await startEmulate(["--fail", "no-identity", "--arc-key-dir", dir, "--federated-token-dir", dir]);
      try {
        const out = emulate.out();
        assert.match(
          out,
          /^# Failure rehearsal: DefaultToIMDS answers every token request with its answer for no identity assigned \(400\)\.$/m,
        );
        assert.doesNotMatch(out, /Failure rehearsal: CloudShell/);
        const imds = testClient({ env: blockOf(out, "DefaultToIMDS") });
        await assert.rejects(imds.acquireToken(VAULT), CredentialUnavailableError);
        const shell = testClient({ env: blockOf(out, "CloudShell") });
        assert.ok((await shell.acquireToken(VAULT)).accessToken);
      } finally {
        emulate.stop.abort();
      }
      assert.equal(await emulate.running, EXIT_CODES.ok);
    });
  });

  const usage: [string[], RegExp][] = [
    [["--fail", "throttle"], /Flag "--fail": .*"throttle"/],
    [["--source", "appservice", "--fail", "updating"], /updating.*DefaultToIMDS only/],
    [["--source", "cloudshell", "--fail", "no-identity"], /no-identity.*Cloud Shell/],
    [["--source", "appservice", "--fail", "throttled@imds"], /DefaultToIMDS is not served/],
  ];
  for (const [args, message] of usage) {
    test(`emulate ${args.join(" ")} is a usage error (exit code 2)`, async () => {
      const result = await run(["emulate", ...args]);
      assert.equal(result.code, EXIT_CODES.usage, result.err);
      assert.match(result.err, message);
      assert.equal(result.out, "");
    });
  }

  test("azmi emulate --help lists the scenarios", async () => {
    const result = await run(["emulate", "--help"]);
    for (const name of ["throttled", "unknown-resource", "updating", "server-error", "slow", "silent", "no-identity"]) {
      assert.ok(result.out.includes(name), name);
    }
  });
});

describe("the emulator's files are still removed", () => {
  test("a rehearsal leaves no key or token file behind", async () => {
    await withRealTempDir(async (dir) => {
      const scenarios: FailureScenario[] = [{ kind: "server-error" }];
      await rehearse("AzureArc", { fail: scenarios }, {}, dir);
      await rehearse("WorkloadIdentity", { fail: scenarios }, {}, dir);
      assert.deepEqual(await readdir(dir), []);
    });
  });
});
