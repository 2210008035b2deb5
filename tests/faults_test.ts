/**
 * The fault matrix: every source against real loopback servers that refuse, reset, hang,
 * trickle, throttle, flood or answer garbage (docs/sources.md, docs/retries.md). Each test asserts
 * the outcome, the exact number of requests the server saw, and that the call ended in time.
 * Which statuses are retried depends on the source's rules ("imds", "standard", "servicefabric",
 * or "entra" for workload identity's Microsoft Entra ID): RETRIED below states them, independently
 * of src/.
 * Backoff never costs real time: `sleep` and `now` are a fake clock (tests/helpers/faults.ts).
 *
 * Every call goes through `settle()`, which bounds it at HANG_MS of real time, and every
 * rejection through `failure()` (or the garbage sweep), which fails the test unless it is a
 * ManagedIdentityError: together, the property that no fault on any source ends in anything
 * else, or hangs.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type EnvRecord,
  type ManagedIdentityClient,
  type ManagedIdentityClientOptions,
  ManagedIdentityError,
  type ManagedIdentityEvent,
  type Source,
} from "../mod.ts";
import type { InternalOptions } from "../src/internal.ts";
import { testClient } from "./helpers/fake.ts";
import {
  answer,
  answerJson,
  type FakeTime,
  fakeTime,
  type FaultHandler,
  type FaultServer,
  faultServer,
  finish,
  head,
  type RawRequest,
  stuckSleep,
  within,
} from "./helpers/faults.ts";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), "utf8");
const SF_CERT = fixture("test_only_sf_cert.pem");
const SF_KEY = fixture("test_only_sf_key.pem");
const SF_PIN = new X509Certificate(SF_CERT).fingerprint;

const VAULT = "https://vault.azure.net";
const ARC_KEY = "arc-key-file-contents-0123456789";
const FEDERATED_TOKEN = "federated-service-account-token-0123456789";
const TOKEN = { access_token: "fault-token", expires_in: 3600 };
const MiB = 1024 * 1024;
/** No call may take longer than this in real time: beyond it, it hangs. */
const HANG_MS = 5000;
/** What a call that only talks to loopback (with a fake backoff) may take in real time. */
const QUICK_MS = 1500;

type Rules = "imds" | "standard" | "servicefabric" | "entra";

/**
 * The statuses each source's rules retry (docs/retries.md); 400, 401 and 403 are
 * never retried. IMDS: 404 while an identity propagates, 410 while it is updated, every 5xx;
 * Service Fabric: 429 and every 5xx, never a 404 (the application's setup is wrong) nor another
 * 4xx, as Microsoft's page says
 * (https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling);
 * Entra ID: throttling and every 5xx, never a 404 or 408.
 */
const RETRIED: Readonly<Record<Rules, readonly number[]>> = {
  imds: [404, 408, 410, 429, 500, 501, 502, 503, 504],
  standard: [404, 408, 429, 500, 502, 503, 504],
  servicefabric: [429, 500, 501, 502, 503, 504],
  entra: [429, 500, 501, 502, 503, 504],
};

interface SourceCase {
  readonly source: Source;
  readonly label: string;
  readonly rules: Rules;
  readonly tls?: boolean;
  /** Workload identity: the rig writes a federated token file into a temporary directory. */
  readonly tokenFile?: boolean;
  /** The environment for a server at `origin` (and, on workload identity, the token file at `tokenFile`). */
  env(origin: string, tokenFile: string): EnvRecord;
  /** A 400 body in this source's shape (docs/sources.md, error bodies) and what the error must carry. */
  readonly errorBody: unknown;
  readonly errorFields: { error?: string; errorDescription?: string; correlationId?: string };
}

const SOURCES: readonly SourceCase[] = [
  {
    source: "DefaultToIMDS",
    label: "IMDS",
    rules: "imds",
    env: (origin) => ({ AZURE_POD_IDENTITY_AUTHORITY_HOST: origin }),
    // Not "Identity not found", which is unavailable on IMDS (tests/first_contact_test.ts).
    errorBody: { error: "invalid_resource", error_description: "The resource principal was not found" },
    errorFields: { error: "invalid_resource", errorDescription: "The resource principal was not found" },
  },
  {
    source: "AppService",
    label: "App Service",
    rules: "standard",
    env: (origin) => ({ IDENTITY_ENDPOINT: `${origin}/msi/token`, IDENTITY_HEADER: "app-service-header" }),
    errorBody: {
      statusCode: 400,
      message: "No user-assigned identity with the given client ID",
      correlationId: "7f3c2a5e-0000-4000-8000-000000000001",
    },
    errorFields: {
      errorDescription: "No user-assigned identity with the given client ID",
      correlationId: "7f3c2a5e-0000-4000-8000-000000000001",
    },
  },
  {
    source: "CloudShell",
    label: "Cloud Shell",
    rules: "standard",
    env: (origin) => ({ MSI_ENDPOINT: `${origin}/oauth2/token` }),
    errorBody: { error: { code: "BadRequest", message: "The resource is not valid" } },
    errorFields: { error: "BadRequest", errorDescription: "The resource is not valid" },
  },
  {
    source: "AzureML",
    label: "Azure ML",
    rules: "standard",
    env: (origin) => ({ MSI_ENDPOINT: `${origin}/msi/token`, MSI_SECRET: "azure-ml-secret" }),
    errorBody: { statusCode: 400, message: "Bad client ID", correlationId: "9a1b2c3d-0000-4000-8000-000000000002" },
    errorFields: { errorDescription: "Bad client ID", correlationId: "9a1b2c3d-0000-4000-8000-000000000002" },
  },
  {
    source: "AzureArc",
    label: "Azure Arc",
    rules: "standard",
    env: (origin) => ({ IDENTITY_ENDPOINT: `${origin}/metadata/identity/oauth2/token`, IMDS_ENDPOINT: origin }),
    errorBody: { error: "invalid_request", error_description: "Identity not found" },
    errorFields: { error: "invalid_request", errorDescription: "Identity not found" },
  },
  {
    source: "ServiceFabric",
    label: "Service Fabric",
    rules: "servicefabric",
    tls: true,
    env: (origin) => ({
      IDENTITY_ENDPOINT: `${origin}/metadata/identity/oauth2/token`,
      IDENTITY_HEADER: "service-fabric-secret",
      IDENTITY_SERVER_THUMBPRINT: SF_PIN,
    }),
    // The correlation ID is nested in the error (Microsoft's page, error handling).
    errorBody: {
      error: {
        correlationId: "aaaa0000-bb11-2222-33cc-444444dddddd",
        code: "ManagedIdentityNotFound",
        message: "No managed identity for this application",
      },
    },
    errorFields: {
      error: "ManagedIdentityNotFound",
      errorDescription: "No managed identity for this application",
      correlationId: "aaaa0000-bb11-2222-33cc-444444dddddd",
    },
  },
  {
    source: "WorkloadIdentity",
    label: "Workload Identity",
    rules: "entra",
    tokenFile: true,
    env: (origin, tokenFile) => ({
      AZURE_AUTHORITY_HOST: `${origin}/`,
      AZURE_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
      AZURE_CLIENT_ID: "11111111-2222-3333-4444-555555555555",
      AZURE_FEDERATED_TOKEN_FILE: tokenFile,
    }),
    errorBody: {
      error: "invalid_request",
      error_description: "AADSTS70021: No matching federated identity record found for presented assertion.",
      error_codes: [70021],
      timestamp: "2026-01-01 00:00:00Z",
      trace_id: "0b5a8f43-0000-4000-8000-00000000aa01",
      correlation_id: "5e1f0d2c-0000-4000-8000-000000000003",
    },
    errorFields: {
      error: "invalid_request",
      errorDescription: "AADSTS70021: No matching federated identity record found for presented assertion.",
      correlationId: "5e1f0d2c-0000-4000-8000-000000000003",
    },
  },
];

/** A source's client, its fault server and what they recorded. */
interface Rig {
  readonly server: FaultServer;
  readonly time: FakeTime;
  readonly events: ManagedIdentityEvent[];
  readonly client: ManagedIdentityClient;
  /** The requests the fault answered: all of them, or on Arc those after the 401 challenge. */
  tokenRequests(): RawRequest[];
  /** Arc's challenge requests (none on the other sources). */
  challenges(): RawRequest[];
  /** The `reason` of every retry event, in order. */
  retries(): string[];
}

interface RigSetup {
  readonly client?: Partial<ManagedIdentityClientOptions>;
  readonly internal?: InternalOptions;
  /** Close the server before the call (on Arc: after its challenge), so every connection is refused. */
  readonly refuse?: boolean;
  /** Arc: the fault answers the challenge as well. */
  readonly faultOnChallenge?: boolean;
}

/**
 * Runs `body` with a client of `kase` pointed at a fault server answering with `fault`. On Arc
 * the server answers each request without Authorization with the 401 challenge for a real key
 * file in a temporary token directory; on workload identity the client reads a real federated
 * token file from a temporary directory. Closes the server and removes the directory afterwards.
 */
async function withRig(
  kase: SourceCase,
  fault: FaultHandler,
  body: (rig: Rig) => Promise<void>,
  setup: RigSetup = {},
): Promise<void> {
  const arc = kase.source === "AzureArc";
  const dir = arc || kase.tokenFile ? await fsp.mkdtemp(join(tmpdir(), "azmi-faults-")) : undefined;
  let server: FaultServer | undefined;
  try {
    const keyPath = arc ? join(dir!, "x.key") : undefined;
    if (keyPath) await fsp.writeFile(keyPath, ARC_KEY);
    const tokenFile = kase.tokenFile ? join(dir!, "azure-identity-token") : "";
    if (tokenFile) await fsp.writeFile(tokenFile, `${FEDERATED_TOKEN}\n`);
    const isChallenge = (request: RawRequest) => keyPath !== undefined && request.headers.authorization === undefined;
    let faulted = 0;
    server = await faultServer((request, socket) => {
      if (isChallenge(request) && !setup.faultOnChallenge) {
        return answer(socket, 401, "", { "www-authenticate": `Basic realm=${keyPath}` });
      }
      fault(request, socket, faulted++);
    }, kase.tls ? { cert: SF_CERT, key: SF_KEY } : undefined);
    const open = server;
    const time = fakeTime();
    const events: ManagedIdentityEvent[] = [];
    const internal: InternalOptions = {
      now: time.now,
      sleep: time.sleep,
      random: () => 0,
      ...(arc ? { arcTokenDirectory: dir } : {}),
      // Arc refused: the server goes away between the challenge and the request with the key.
      ...(arc && setup.refuse
        ? {
          arcFileSystem: {
            lstat: (path: string) => fsp.lstat(path),
            open: async (path: string, flags: number) => {
              await open.close();
              return await fsp.open(path, flags);
            },
          },
        }
        : {}),
      ...setup.internal,
    };
    const client = testClient({
      env: kase.env(server.origin, tokenFile),
      retry: { maxRetries: 3 },
      timeoutMs: 3000,
      onEvent: (event) => events.push(event),
      ...setup.client,
    }, internal);
    assert.equal(client.source, kase.source);
    if (setup.refuse && !arc) await server.close();
    await body({
      server,
      time,
      events,
      client,
      tokenRequests: () => open.requests.filter((request) => !isChallenge(request)),
      challenges: () => open.requests.filter(isChallenge),
      retries: () => events.flatMap((event) => event.type === "retry" ? [event.reason] : []),
    });
  } finally {
    await server?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  }
}

interface Settled<T> {
  readonly value?: T;
  readonly error?: unknown;
  readonly elapsed: number;
}

/** Awaits a call, bounded at HANG_MS of real time (a hang becomes a plain Error). */
async function settle<T>(call: Promise<T>): Promise<Settled<T>> {
  const started = performance.now();
  try {
    const value = await within(HANG_MS, call);
    return { value, elapsed: performance.now() - started };
  } catch (error) {
    return { error, elapsed: performance.now() - started };
  }
}

/** Asserts a rejection with a ManagedIdentityError of `code` and `status` (`undefined`: none) within `boundMs`. */
function failure(
  settled: Settled<unknown>,
  code: string,
  status: number | undefined,
  boundMs = QUICK_MS,
): ManagedIdentityError {
  const { error, elapsed } = settled;
  assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.status, status, error.message);
  assert.ok(elapsed < boundMs, `the call took ${Math.round(elapsed)} ms, more than ${boundMs} ms`);
  return error;
}

/** Awaits a rejection with a ManagedIdentityError of `code` and `status` within `boundMs`. */
async function fails(
  call: Promise<unknown>,
  code: string,
  status: number | undefined,
  boundMs = QUICK_MS,
): Promise<ManagedIdentityError> {
  return failure(await settle(call), code, status, boundMs);
}

/** Awaits a token within `boundMs`. */
async function succeeds(call: Promise<{ accessToken: string }>, boundMs = QUICK_MS): Promise<void> {
  const { value, error, elapsed } = await settle(call);
  assert.equal(error, undefined, String(error));
  assert.equal(value?.accessToken, TOKEN.access_token);
  assert.ok(elapsed < boundMs, `the call took ${Math.round(elapsed)} ms, more than ${boundMs} ms`);
}

/** Whether the source's rules retry `status`. */
function retried(kase: SourceCase, status: number): boolean {
  return RETRIED[kase.rules].includes(status);
}

/** The delays of the first `count` retries under the source's rules, without jitter. */
function delays(kase: SourceCase, count: number): number[] {
  const doubling = kase.rules === "imds" || kase.rules === "servicefabric";
  return Array.from({ length: count }, (_, i) => doubling ? 1000 * 2 ** i : 1000);
}

const ok: FaultHandler = (_request, socket) => answerJson(socket, 200, TOKEN);

/** Status line, headers promising 1000 bytes, part of the body, then the connection is destroyed. */
const resetMidBody: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "content-length": 1000 }));
  socket.write('{"access_token":"fault-tok', () => socket.destroy());
};

/** Reads the request and never answers. */
const silent: FaultHandler = () => {};

/** Headers at once, then one byte of a valid token body every 50 ms (5 s in all). */
const trickle: FaultHandler = (_request, socket) => {
  const body = JSON.stringify(TOKEN).padEnd(100, " ");
  socket.write(head(200, { "content-type": "application/json", "content-length": body.length }));
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < body.length) socket.write(body[sent++]!);
    else clearInterval(timer);
  }, 50);
  socket.on("close", () => clearInterval(timer));
};

/** A 5 MiB body with a Content-Length. */
const hugeSized: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "content-length": 5 * MiB }));
  socket.end(new Uint8Array(5 * MiB).fill(0x61));
};

function chunks(total: number): Uint8Array {
  const size = 64 * 1024;
  const chunk = new TextEncoder().encode(`${size.toString(16)}\r\n${"a".repeat(size)}\r\n`);
  const out = new Uint8Array(chunk.length * (total / size));
  for (let at = 0; at < out.length; at += chunk.length) out.set(chunk, at);
  return out;
}

/** A 5 MiB chunked body, no Content-Length. */
const hugeChunked: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "transfer-encoding": "chunked" }));
  socket.write(chunks(5 * MiB));
  socket.end("0\r\n\r\n");
};

/** 2 MiB of chunks, no Content-Length, and the rest never comes: only a client that stops reading ends. */
const hugeChunkedStalled: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "transfer-encoding": "chunked" }));
  socket.write(chunks(2 * MiB));
};

/** `first` on the first `count` requests, then a token. */
const thenToken = (first: FaultHandler, count = 1): FaultHandler => (request, socket, index) =>
  index < count ? first(request, socket, index) : ok(request, socket, index);

const status =
  (code: number, body: unknown = { error: `status_${code}` }, headers = {}): FaultHandler => (_request, socket) =>
    answerJson(socket, code, body, headers);

/** What one call through a rig saw, kept after the rig is gone. */
interface Observed extends Settled<unknown> {
  readonly tokenRequests: number;
  readonly challenges: number;
  readonly retries: readonly string[];
}

async function observe(kase: SourceCase, fault: FaultHandler, setup: RigSetup): Promise<Observed> {
  let observed: Observed | undefined;
  await withRig(kase, fault, async (rig) => {
    const settled = await settle(rig.client.acquireToken(VAULT));
    observed = {
      ...settled,
      tokenRequests: rig.tokenRequests().length,
      challenges: rig.challenges().length,
      retries: rig.retries(),
    };
  }, setup);
  return observed!;
}

let timed: Map<string, Promise<Observed>> | undefined;

/**
 * The faults that cost real time (every attempt waits out its timeout) run for all sources at
 * once, started by the first test that needs one: the suite pays about 300 ms for all of them.
 */
function timedFault(name: "silent" | "trickle", kase: SourceCase): Promise<Observed> {
  timed ??= new Map(SOURCES.flatMap((each) => {
    const runs: [string, Promise<Observed>][] = [
      [`silent ${each.source}`, observe(each, silent, { client: { timeoutMs: 100, retry: { maxRetries: 2 } } })],
      [`trickle ${each.source}`, observe(each, trickle, { client: { timeoutMs: 150, retry: { maxRetries: 1 } } })],
    ];
    // Each is awaited by its own test; none may reject unhandled before then.
    for (const [, run] of runs) run.catch(() => {});
    return runs;
  }));
  return timed.get(`${name} ${kase.source}`)!;
}

/** Answers no endpoint should give: broken HTTP, odd statuses, bodies that are not tokens, noise. */
function garbage(): (string | Uint8Array)[] {
  const close = "Connection: close\r\n";
  const sized = (statusLine: string, body: string) =>
    `${statusLine}\r\nContent-Length: ${new TextEncoder().encode(body).length}\r\n${close}\r\n${body}`;
  const replies: (string | Uint8Array)[] = [
    "",
    "garbage\r\n\r\n",
    "HTTP/1.1 200 OK\r\n",
    sized("HTTP/1.1 999 Odd", "ok"),
    sized("HTTP/1.1 200 OK", "null"),
    sized("HTTP/1.1 200 OK", "[]"),
    sized("HTTP/1.1 200 OK", '{"access_token":42,"expires_in":"soon"}'),
    sized("HTTP/1.1 200 OK", '{"access_token":"fault-token","expires_on":"nope"}'),
    `HTTP/1.1 200 OK\r\nContent-Length: abc\r\n${close}\r\n{}`,
    `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n${close}\r\n{}`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${close}\r\nzz\r\n`,
    `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n${close}\r\n`,
    `HTTP/1.1 204 No Content\r\n${close}\r\n`,
    // A valid token that lives too briefly to be cached: the sweep also sees a success.
    sized("HTTP/1.1 200 OK", '{"access_token":"fault-token","expires_in":60}'),
  ];
  // Seeded noise, half of it behind a plausible status line.
  let seed = 0x2545f491;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 6; i++) {
    const noise = Uint8Array.from({ length: 48 }, next);
    const prefix = new TextEncoder().encode(i % 2 ? "HTTP/1.1 200 OK\r\n" : "");
    const reply = new Uint8Array(prefix.length + noise.length);
    reply.set(prefix);
    reply.set(noise, prefix.length);
    replies.push(reply);
  }
  return replies;
}

const DOCKER_DESKTOP = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp " +
  "169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";

for (const kase of SOURCES) {
  const { label } = kase;
  const arc = kase.source === "AzureArc";

  describe(`faults on ${label}`, () => {
    test(`acquireToken() retries a refused connection 3 times, then fails "unavailable" on ${label}`, async () => {
      await withRig(kase, ok, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "unavailable", undefined);
        assert.equal(error.source, kase.source);
        // Nobody listens, so the server counts nothing: the waits count the attempts.
        assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        assert.deepEqual(rig.retries(), ["unavailable", "unavailable", "unavailable"]);
        assert.equal(rig.tokenRequests().length, 0);
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      }, { refuse: true });
    });

    test(`acquireToken() retries a connection reset mid-body, then fails "request_failed" 200 on ${label}`, async () => {
      await withRig(kase, resetMidBody, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 200);
        assert.equal(error.source, kase.source);
        assert.equal(rig.tokenRequests().length, 4);
        assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      });
    });

    test(`acquireToken() gets the token when the retry after a reset mid-body succeeds on ${label}`, async () => {
      await withRig(kase, thenToken(resetMidBody), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.time.sleeps, delays(kase, 1));
      });
    });

    test(`acquireToken() times out on a server that never answers, retried 2 times, on ${label}`, async () => {
      // timeoutMs 100, retry { maxRetries: 2 }: three attempts of 100 ms, well within 2 s.
      const seen = await timedFault("silent", kase);
      const error = failure(seen, "timeout", undefined, 2000);
      assert.match(error.message, /timed out after 100 ms/);
      assert.equal(seen.tokenRequests, 3);
      assert.deepEqual(seen.retries, ["timeout", "timeout"]);
      assert.equal(seen.challenges, arc ? 1 : 0);
    });

    test(`acquireToken() times out on a body that trickles slower than timeoutMs on ${label}`, async () => {
      // timeoutMs 150, retry { maxRetries: 1 }; the whole body would take 5 s.
      const seen = await timedFault("trickle", kase);
      const error = failure(seen, "timeout", undefined, 2000);
      assert.match(error.message, /timed out after 150 ms/);
      assert.equal(seen.tokenRequests, 2);
      assert.deepEqual(seen.retries, ["timeout"]);
    });

    test(`acquireToken() retries a 500 once and gets the token on ${label}`, async () => {
      await withRig(kase, thenToken(status(500)), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.events, [
          { type: "retry", source: kase.source, attempt: 1, delayMs: 1000, reason: "status 500" },
        ]);
        assert.deepEqual(rig.time.sleeps, [1000]);
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      });
    });

    for (const code of [429, 500, 502, 503, 504]) {
      test(`acquireToken() retries a ${code} 3 times, then fails "request_failed" ${code}, on ${label}`, async () => {
        assert.ok(retried(kase, code));
        await withRig(kase, status(code, { error: `status_${code}` }), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", code);
          assert.equal(rig.tokenRequests().length, 4);
          assert.deepEqual(rig.retries(), [`status ${code}`, `status ${code}`, `status ${code}`]);
          assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        });
      });
    }

    if (kase.rules === "imds") {
      test(`acquireToken() keeps retrying a 410 for 70 s of the clock on ${label}`, async () => {
        await withRig(kase, status(410), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", 410);
          const requests = rig.tokenRequests().length;
          const { sleeps } = rig.time;
          assert.ok(requests > 4, `only ${requests} requests: a 410 must outlast the 3 retries`);
          assert.equal(sleeps.length, requests - 1);
          assert.ok(rig.time.elapsed() >= 70_000, `gave up after ${rig.time.elapsed()} ms of the clock`);
          // It stops at the first answer after the 70 s, and no wait grew past 10 * delayMs.
          assert.ok(sleeps.slice(0, -1).reduce((sum, ms) => sum + ms, 0) < 70_000, `${sleeps}`);
          assert.ok(sleeps.at(-1)! <= 10_000, `the last wait was ${sleeps.at(-1)} ms`);
          assert.ok(sleeps.every((ms) => ms <= 10_000), `${sleeps}`);
        });
      });
    } else {
      test(`acquireToken() does not retry a 410 on ${label}`, async () => {
        await withRig(kase, status(410), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", 410);
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    test(`acquireToken() waits the 2 s of a 429's Retry-After, then gets the token on ${label}`, async () => {
      await withRig(kase, thenToken(status(429, { error: "throttled" }, { "retry-after": "2" })), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.deepEqual(rig.time.sleeps, [2000]);
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.retries(), ["status 429"]);
      });
    });

    test(`acquireToken() fails at once while a 429's Retry-After runs, then asks again on ${label}`, async () => {
      let throttling = true;
      const throttle: FaultHandler = (request, socket, index) =>
        throttling
          ? answerJson(socket, 429, { error: "throttled" }, { "retry-after": "30" })
          : ok(request, socket, index);
      await withRig(kase, throttle, async (rig) => {
        await fails(rig.client.acquireToken(VAULT), "request_failed", 429);
        assert.equal(rig.tokenRequests().length, 4);
        assert.deepEqual(rig.time.sleeps, [30_000, 30_000, 30_000]);
        const seen = rig.server.requests.length;

        rig.time.advance(10_000);
        const early = await fails(rig.client.acquireToken(VAULT), "request_failed", 429, 500);
        assert.match(early.message, /429/);
        assert.equal(rig.server.requests.length, seen, "a throttled endpoint must see no request");
        assert.equal(rig.time.sleeps.length, 3);

        rig.time.advance(21_000);
        throttling = false;
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 5);
        assert.equal(rig.challenges().length, arc ? 2 : 0);
      });
    });

    test(`acquireToken() does not retry an HTML 200 and fails "invalid_response" on ${label}`, async () => {
      const html: FaultHandler = (_request, socket) =>
        answer(socket, 200, "<html><body><h1>Gateway</h1></body></html>", { "content-type": "text/html" });
      await withRig(kase, html, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", undefined);
        assert.match(error.message, /not a JSON object/);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    test(`acquireToken() does not retry a truncated JSON 200 and fails "invalid_response" on ${label}`, async () => {
      const truncated: FaultHandler = (_request, socket) =>
        answer(socket, 200, '{"access_token":"fault-tok', { "content-type": "application/json" });
      await withRig(kase, truncated, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", undefined);
        assert.match(error.message, /not a JSON object/);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    for (
      const [name, handler] of [
        ["a 5 MiB body with a Content-Length", hugeSized],
        ["a 5 MiB chunked body", hugeChunked],
        ["a chunked body that stalls after 2 MiB", hugeChunkedStalled],
      ] as const
    ) {
      test(`acquireToken() refuses ${name} at the 1048576-byte limit, without retry, on ${label}`, async () => {
        await withRig(kase, handler, async (rig) => {
          const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", 200);
          assert.match(error.message, /1048576 bytes/);
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    test(`acquireToken() fails "request_failed" on a 400 with ${label}'s error body, without retry`, async () => {
      await withRig(kase, status(400, kase.errorBody), async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 400);
        assert.equal(error.error, kase.errorFields.error);
        assert.equal(error.errorDescription, kase.errorFields.errorDescription);
        assert.equal(error.correlationId, kase.errorFields.correlationId);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    for (const code of [401, 403]) {
      test(`acquireToken() does not retry a ${code} on ${label}`, async () => {
        await withRig(kase, status(code, { error: "access_denied" }), async (rig) => {
          const error = await fails(rig.client.acquireToken(VAULT), "request_failed", code);
          assert.equal(error.error, "access_denied");
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    // The statuses on which the rules differ: 404 and 408 (retried except by Service Fabric's and
    // Entra ID's rules) and 501 (a 5xx that the standard rules leave alone).
    for (const code of [404, 408, 501]) {
      if (retried(kase, code)) {
        test(`acquireToken() retries a ${code} 3 times on ${label} (${kase.rules} rules)`, async () => {
          await withRig(kase, status(code, { error: "not_found" }), async (rig) => {
            await fails(rig.client.acquireToken(VAULT), "request_failed", code);
            assert.equal(rig.tokenRequests().length, 4);
            assert.deepEqual(rig.retries(), [`status ${code}`, `status ${code}`, `status ${code}`]);
          });
        });
      } else {
        test(`acquireToken() does not retry a ${code} on ${label} (${kase.rules} rules)`, async () => {
          await withRig(kase, status(code, { error: "not_found" }), async (rig) => {
            await fails(rig.client.acquireToken(VAULT), "request_failed", code);
            assert.equal(rig.tokenRequests().length, 1);
            assert.deepEqual(rig.retries(), []);
            assert.deepEqual(rig.time.sleeps, []);
          });
        });
      }
    }

    test(`acquireToken() ends with "aborted" when the caller aborts during the wait between attempts on ${label}`, async () => {
      const stuck = stuckSleep();
      await withRig(kase, status(500), async (rig) => {
        const controller = new AbortController();
        const call = rig.client.acquireToken(VAULT, { signal: controller.signal });
        assert.equal(await within(HANG_MS, stuck.started), 1000);
        const reason = new Error("the caller left");
        controller.abort(reason);
        const error = await fails(call, "aborted", undefined, 500);
        assert.equal(error.cause, reason);
        // Give a wrongly continuing loop the time to send another request.
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(stuck.sleeps, [1000]);
      }, { internal: { sleep: stuck.sleep } });
    });

    test(`acquireToken() gives a token or a ManagedIdentityError, and never hangs, on any garbage on ${label}`, async () => {
      const replies = garbage();
      let current = 0;
      await withRig(kase, (_request, socket) => {
        finish(socket, replies[current]);
      }, async (rig) => {
        for (; current < replies.length; current++) {
          const before = rig.tokenRequests().length;
          const { value, error, elapsed } = await settle(rig.client.acquireToken(VAULT, { forceRefresh: true }));
          const shown = JSON.stringify(String(replies[current]).slice(0, 60));
          assert.ok(elapsed < QUICK_MS, `${shown} took ${Math.round(elapsed)} ms`);
          if (error !== undefined) {
            assert.ok(error instanceof ManagedIdentityError, `${shown} gave ${String(error)}`);
            assert.equal(error.source, kase.source);
            // Every garbage answer ends the connection: no call has to wait out its timeout.
            assert.notEqual(error.code, "timeout", `${shown}: ${error.message}`);
          } else {
            assert.equal((value as { accessToken?: string } | undefined)?.accessToken, TOKEN.access_token, shown);
          }
          const attempts = rig.tokenRequests().length - before;
          assert.ok(attempts === 1 || attempts === 2, `${shown} made ${attempts} requests`);
        }
      }, { client: { retry: { maxRetries: 1 }, timeoutMs: 500 } });
    });
  });
}

describe("faults only some sources have", () => {
  const imds = SOURCES.find((kase) => kase.source === "DefaultToIMDS")!;
  const arc = SOURCES.find((kase) => kase.source === "AzureArc")!;
  const cloudShell = SOURCES.find((kase) => kase.source === "CloudShell")!;
  const workload = SOURCES.find((kase) => kase.source === "WorkloadIdentity")!;

  test('acquireToken() reads Docker Desktop\'s 403 "unreachable network" as "unavailable" on IMDS', async () => {
    const docker: FaultHandler = (_request, socket) =>
      answer(socket, 403, DOCKER_DESKTOP, { "content-type": "text/plain; charset=utf-8" });
    await withRig(imds, docker, async (rig) => {
      const error = await fails(rig.client.acquireToken(VAULT), "unavailable", 403);
      assert.equal(error.source, "DefaultToIMDS");
      assert.equal(rig.tokenRequests().length, 1);
      assert.deepEqual(rig.time.sleeps, []);
    });
  });

  test("acquireToken() never retries Azure Arc's challenge request: a 500 on it fails after 1 request", async () => {
    await withRig(arc, status(500), async (rig) => {
      const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 500);
      assert.match(error.message, /401 challenge/);
      assert.equal(rig.server.requests.length, 1);
      assert.equal(rig.server.requests[0]!.headers.authorization, undefined);
      assert.deepEqual(rig.time.sleeps, []);
    }, { faultOnChallenge: true });
  });

  test("acquireToken() sends the Azure Arc key on every retry of the second request", async () => {
    await withRig(arc, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      assert.equal(rig.challenges().length, 1);
      assert.deepEqual(rig.tokenRequests().map((request) => request.headers.authorization), [
        `Basic ${ARC_KEY}`,
        `Basic ${ARC_KEY}`,
        `Basic ${ARC_KEY}`,
      ]);
    });
  });

  test("acquireToken() sends the same resource= body on every Cloud Shell retry", async () => {
    await withRig(cloudShell, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      const requests = rig.server.requests;
      assert.equal(requests.length, 3);
      for (const request of requests) {
        assert.equal(request.method, "POST");
        assert.equal(request.headers["content-type"], "application/x-www-form-urlencoded");
        assert.equal(request.body, "resource=https%3A%2F%2Fvault.azure.net");
      }
    });
  });

  test("acquireToken() sends the same token request, assertion included, on every Workload Identity retry", async () => {
    await withRig(workload, thenToken(status(503), 2), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      const requests = rig.server.requests;
      assert.equal(requests.length, 3);
      for (const request of requests) {
        assert.equal(request.method, "POST");
        assert.equal(request.path, "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
        assert.equal(request.headers["content-type"], "application/x-www-form-urlencoded");
        assert.deepEqual([...new URLSearchParams(request.body)], [
          ["client_id", "11111111-2222-3333-4444-555555555555"],
          ["scope", "https://vault.azure.net/.default"],
          ["grant_type", "client_credentials"],
          ["client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
          ["client_assertion", FEDERATED_TOKEN],
        ]);
      }
    });
  });

  test("acquireToken() reads the Workload Identity token file once for all the retries of a request", async () => {
    const opened: string[] = [];
    const tokenFileSystem = {
      open: (path: string, flags: number) => {
        opened.push(path);
        return fsp.open(path, flags);
      },
    };
    await withRig(workload, thenToken(status(500), 3), async (rig) => {
      await succeeds(rig.client.acquireToken(VAULT));
      assert.equal(rig.tokenRequests().length, 4);
      assert.equal(opened.length, 1);
    }, { internal: { tokenFileSystem } });
  });
});
