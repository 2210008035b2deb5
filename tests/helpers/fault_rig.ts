/**
 * The rig of the fault matrix (tests/faults_test.ts, tests/faults_some_sources_test.ts): every
 * source as a row (its environment for a server's origin, its retry rules, a 400 body in its shape),
 * `withRig()`, which points a source's client at a fault server (tests/helpers/faults.ts) with a
 * fake clock, and the checks every call goes through.
 *
 * Every call goes through `settle()`, which bounds it at HANG_MS of real time, and every
 * rejection through `failure()`, which fails the test unless it is a ManagedIdentityError.
 */

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
} from "../../mod.ts";
import type { InternalOptions } from "../../src/internal.ts";
import { testClient } from "./fake.ts";
import {
  answer,
  answerJson,
  type FakeTime,
  fakeTime,
  type FaultHandler,
  type FaultServer,
  faultServer,
  type RawRequest,
  within,
} from "./faults.ts";

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)), "utf8");
const SF_CERT = fixture("test_only_sf_cert.pem");
const SF_KEY = fixture("test_only_sf_key.pem");
const SF_PIN = new X509Certificate(SF_CERT).fingerprint;

export const VAULT = "https://vault.azure.net";
export const ARC_KEY = "arc-key-file-contents-0123456789";
export const FEDERATED_TOKEN = "federated-service-account-token-0123456789";
export const TOKEN = { access_token: "fault-token", expires_in: 3600 };
/** No call may take longer than this in real time: beyond it, it hangs. */
export const HANG_MS = 5000;
/** What a call that only talks to loopback (with a fake backoff) may take in real time. */
export const QUICK_MS = 1500;

export type Rules = "imds" | "standard" | "servicefabric" | "entra";

export interface SourceCase {
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

export const SOURCES: readonly SourceCase[] = [
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
export interface Rig {
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

export interface RigSetup {
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
export async function withRig(
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

export interface Settled<T> {
  readonly value?: T;
  readonly error?: unknown;
  readonly elapsed: number;
}

/** Awaits a call, bounded at HANG_MS of real time (a hang becomes a plain Error). */
export async function settle<T>(call: Promise<T>): Promise<Settled<T>> {
  const started = performance.now();
  try {
    const value = await within(HANG_MS, call);
    return { value, elapsed: performance.now() - started };
  } catch (error) {
    return { error, elapsed: performance.now() - started };
  }
}

/** Asserts a rejection with a ManagedIdentityError of `code` and `status` (`undefined`: none) within `boundMs`. */
export function failure(
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
export async function fails(
  call: Promise<unknown>,
  code: string,
  status: number | undefined,
  boundMs = QUICK_MS,
): Promise<ManagedIdentityError> {
  return failure(await settle(call), code, status, boundMs);
}

/** Awaits a token within `boundMs`. */
export async function succeeds(call: Promise<{ accessToken: string }>, boundMs = QUICK_MS): Promise<void> {
  const { value, error, elapsed } = await settle(call);
  assert.equal(error, undefined, String(error));
  assert.equal(value?.accessToken, TOKEN.access_token);
  assert.ok(elapsed < boundMs, `the call took ${Math.round(elapsed)} ms, more than ${boundMs} ms`);
}

export const ok: FaultHandler = (_request, socket) => answerJson(socket, 200, TOKEN);

/** `first` on the first `count` requests, then a token. */
export const thenToken = (first: FaultHandler, count = 1): FaultHandler => (request, socket, index) =>
  index < count ? first(request, socket, index) : ok(request, socket, index);

export const status =
  (code: number, body: unknown = { error: `status_${code}` }, headers = {}): FaultHandler => (_request, socket) =>
    answerJson(socket, code, body, headers);
