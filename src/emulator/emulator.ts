/**
 * Web-standard handlers that behave like the six managed identity endpoints (docs/sources.md) and
 * like Microsoft Entra ID's token endpoint for workload identity: required headers, secrets,
 * forms and api-versions are checked and refused with each endpoint's real error shape,
 * user-assigned identities are honoured or refused per source, Azure Arc answers with its 401
 * challenge and a key file it writes, workload identity's federated token file is written and
 * rotated, and tokens are RS256-signed v1 access tokens whose claims match the request, which
 * every endpoint's server lets a client validate with Entra's OpenID discovery documents and
 * keys (discovery.ts). Scripted faults and named failure scenarios (faults.ts) come before the
 * normal answer.
 * @module
 */

import type { Source } from "../types.ts";
import { visible } from "../redact.ts";
import { answerDiscovery } from "./discovery.ts";
import {
  droppedResponse,
  errorBody,
  failureAnswer,
  type FailureContext,
  type FailureScenario,
  type Fault,
  isTokenRequest,
  noIdentityAnswer,
  type PendingFailure,
  queueFailures,
  waitFor,
} from "./faults.ts";
import { OriginError, type TokenOrigin } from "./origin.ts";
import { flagFor, permissionError } from "./permission.ts";
import { createRelay, type Relay, RELAY_ERROR_STATUS, type RelayedIdentity, relayResource } from "./relay.ts";
import { createSigningKey, type EmulatorJwks, type EmulatorSigningKey } from "./signing.ts";
import { type EmulatedIdentity, emulatedToken, EMULATOR_ISSUER, EMULATOR_TENANT } from "./token.ts";
import {
  answerTokenRequest,
  createSigner,
  FEDERATED_TOKEN_LIFETIME_SECONDS,
  type FederatedCredential,
  federatedCredential,
  serviceAccountClaims,
} from "./workload.ts";

/** Options of {@linkcode createEmulator}. */
export interface EmulatorOptions {
  /** Token lifetime in seconds. Default 3600. */
  readonly lifetimeSeconds?: number;
  /** When set, tokens carry `refresh_in` with this many seconds. */
  readonly refreshInSeconds?: number;
  /** The user-assigned identities the emulator knows. Default: one, with generated IDs. */
  readonly identities?: readonly EmulatedIdentity[];
  /** The value of `IDENTITY_HEADER` / `MSI_SECRET` the endpoints require. Default: random. */
  readonly secret?: string;
  /** Where the Arc endpoint writes its key files. Default the agent's, `/var/opt/azcmagent/tokens`. */
  readonly arcKeyDirectory?: string;
  /**
   * Where workload identity's federated token file is written: in a new private directory
   * (mode 0700) inside this one, which is created when missing. Default the system's temporary
   * directory. {@linkcode Emulator.cleanup} removes the file and that private directory.
   */
  readonly federatedTokenDirectory?: string;
  /** Scripted answers per source, used one per request before normal behaviour resumes. */
  readonly faults?: Partial<Record<Source, readonly Fault[]>>;
  /**
   * Failures to rehearse: named scenarios in which each source answers as its real endpoint
   * does when that goes wrong ({@linkcode FailureScenario}), as objects or in `azmi emulate
   * --fail`'s words (`"throttled:2,server-error@imds"`, {@linkcode parseFailures}). They apply
   * after the scripted `faults`; each source takes its scenarios in order, then answers as normal.
   *
   * @throws {TypeError} from {@linkcode createEmulator} when a scenario is not understood.
   */
  readonly fail?: string | readonly FailureScenario[];
  /** The clock, in milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Real tokens instead of locally signed ones (docs/relay.md): the App Service and IMDS
   * endpoints answer with this origin's tokens (the developer's az or azd sign-in, a service
   * principal), kept per resource until 5 minutes before expiry and fetched once at a time
   * however many clients ask; a request naming a user-assigned identity gets the same token.
   * The other sources' handlers are then refused: {@linkcode Emulator.handler} throws a
   * `TypeError` for them.
   */
  readonly origin?: TokenOrigin;
  /** With `origin`: how long one origin call may take, in milliseconds. Default 30,000. */
  readonly originTimeoutMs?: number;
  /**
   * With `origin`: called once for each distinct user-assigned ID a request names, which is
   * served the origin's token (the developer's own): say so, since local code then runs as the
   * developer rather than as that identity.
   */
  readonly onIdentity?: (identity: RelayedIdentity) => void;
}

/** A request the emulator received, without secrets. */
export interface EmulatedRequest {
  /** The source whose endpoint received it. */
  readonly source: Source;
  /** The HTTP method. */
  readonly method: string;
  /** Origin, path and query (the query carries no secrets on any source). */
  readonly url: string;
  /** The status the emulator answered; 0 for a request it never answered (a `silent` scenario's). */
  readonly status: number;
}

/** A set of emulated endpoints sharing identities and a secret. */
export interface Emulator {
  /** The secret the endpoints require (`IDENTITY_HEADER`, `MSI_SECRET`, Service Fabric's `Secret`). */
  readonly secret: string;
  /**
   * The system-assigned identity. For workload identity, which has none, the identity of the
   * default client ID (`AZURE_CLIENT_ID`, the service account's annotation on AKS). Its
   * `resourceId` is IMDS's virtual machine; a token's `xms_mirid` for it names the resource that
   * hosts it on each source, {@linkcode EMULATED_HOST_RESOURCE_IDS}.
   */
  readonly systemIdentity: EmulatedIdentity;
  /** The user-assigned identities (for workload identity: the other client IDs it accepts). */
  readonly identities: readonly EmulatedIdentity[];
  /**
   * The federated identity credential every identity has, for workload identity: a federated
   * token is exchanged only when its issuer, subject and audience are these.
   */
  readonly federatedCredential: FederatedCredential;
  /** The issuer of its tokens, Entra's for v1 tokens: `https://sts.windows.net/{tenant}/`. */
  readonly issuer: string;
  /** The key that signs its tokens (made on first use, RSA 2048), whose public half it publishes. */
  readonly signingKey: EmulatorSigningKey;
  /**
   * The token requests so far (the newest 10,000), oldest first. Requests for the discovery
   * documents and keys are not logged.
   */
  readonly requests: readonly EmulatedRequest[];
  /**
   * The handler of one source's endpoint. Whatever the source, it also answers `GET` of the
   * OpenID configuration (`/{tenant}/.well-known/openid-configuration`, and its `v2.0` form) and
   * of the keys (`/common/discovery/keys`, `/{tenant}/discovery/keys`, and their `v2.0` forms),
   * as Entra does, with URLs on the server that answered (faults do not apply to them); with an
   * `origin`, which serves real tokens, it answers none of these.
   *
   * @throws {TypeError} with an `origin`, for a source other than `AppService` and `DefaultToIMDS`.
   */
  handler(source: Source): (request: Request) => Promise<Response>;
  /** With an `origin`: the relay that keeps and shares its tokens. */
  readonly relay?: Relay;
  /** The public key that verifies its tokens, as served at the `discovery/keys` URLs. */
  jwks(): Promise<EmulatorJwks>;
  /** Appends scripted answers for a source. */
  fault(source: Source, ...faults: Fault[]): void;
  /**
   * Appends failure scenarios, as {@linkcode EmulatorOptions.fail} takes them, to the ones each
   * source has left: from now on, the endpoints fail as told.
   *
   * @throws {TypeError} when a scenario is not understood, or follows an `always` one of its
   *   source (nothing is added then).
   */
  fail(scenarios: string | readonly FailureScenario[]): void;
  /**
   * Ends every failure: drops the scenarios and scripted faults every source has left, and
   * stops every wait: a request a `silent` or `slow` scenario holds gets the normal answer at
   * once, one a `hang` or `delayMs` fault holds its scripted answer.
   */
  recover(): void;
  /**
   * Writes workload identity's federated token file (a JWT-shaped Kubernetes service account
   * token the emulator signs, valid for an hour) and returns its path, for
   * `AZURE_FEDERATED_TOKEN_FILE`. Later calls return the same path; like the kubelet, they (and
   * the endpoint's requests) write a new token in its place once the file is 80% of its
   * lifetime old. One file per emulator, whatever the number of calls.
   */
  federatedTokenFile(): Promise<string>;
  /**
   * Removes the Arc key files and the federated token file (with its directory) the emulator
   * wrote, after answering any request a failure or fault still keeps waiting and stopping a
   * relay's origin calls in flight.
   */
  cleanup(): Promise<void>;
}

/**
 * The api-version each endpoint requires (none where empty). Service Fabric's is the stable
 * `2020-05-01` the client sends; it also accepts `2019-07-01-preview`, which msal-node and
 * `@azure/identity` still send.
 */
export const EMULATED_API_VERSIONS: Readonly<Record<Source, string>> = {
  WorkloadIdentity: "",
  DefaultToIMDS: "2018-02-01",
  AppService: "2019-08-01",
  AzureArc: "2020-06-01",
  AzureML: "2017-09-01",
  CloudShell: "",
  ServiceFabric: "2020-05-01",
};

// Service Fabric's managed identity token service takes either version (MSAL .NET issue 5769).
const SERVICE_FABRIC_API_VERSIONS = ["2020-05-01", "2019-07-01-preview"];

const uuid = () => crypto.randomUUID();

const RESOURCES = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azmi-emulator/providers";

/**
 * Per source, the Azure resource that hosts the system-assigned identity: the `xms_mirid` of its
 * tokens, as Entra sets it. For workload identity, which has no system-assigned identity, the
 * user-assigned identity of the default client ID. Cloud Shell's real endpoint hands out the
 * signed-in user's token, which has no `xms_mirid`; the emulator's is an app token like the
 * others, naming the user's Cloud Shell console.
 */
export const EMULATED_HOST_RESOURCE_IDS: Readonly<Record<Source, string>> = {
  WorkloadIdentity: `${RESOURCES}/Microsoft.ManagedIdentity/userAssignedIdentities/azmi-workload-identity`,
  DefaultToIMDS: `${RESOURCES}/Microsoft.Compute/virtualMachines/emulated-vm`,
  AppService: `${RESOURCES}/Microsoft.Web/sites/emulated-app`,
  AzureArc: `${RESOURCES}/Microsoft.HybridCompute/machines/emulated-machine`,
  AzureML: `${RESOURCES}/Microsoft.MachineLearningServices/workspaces/emulated-workspace/computes/emulated-compute`,
  CloudShell: "/providers/Microsoft.Portal/consoles/default",
  ServiceFabric: `${RESOURCES}/Microsoft.ServiceFabric/managedclusters/emulated-cluster/applications/emulated-app`,
};

// Bounds for a long-running emulator (`azmi emulate`): the request log and the Arc key files.
const MAX_LOGGED_REQUESTS = 10_000;
const MAX_ARC_KEYS = 100;

function identity(name: string): EmulatedIdentity {
  return {
    clientId: uuid(),
    objectId: uuid(),
    resourceId: `${RESOURCES}/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
  };
}

interface FsView {
  mkdir(path: string, options: { recursive: boolean }): Promise<unknown>;
  mkdtemp(prefix: string): Promise<string>;
  writeFile(path: string, data: string, options: { mode: number }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { force: boolean; recursive?: boolean }): Promise<void>;
  stat(path: string): Promise<unknown>;
}

function builtin<T>(name: string, why: string): T {
  const load = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process
    ?.getBuiltinModule;
  const module = load?.(name) as T | undefined;
  if (!module) throw new Error(`The emulator needs ${name} to ${why}`);
  return module;
}

const fileSystem = () => builtin<FsView>("node:fs/promises", "write its key and token files");

/** The federated token file's name, as the AKS webhook mounts it. */
const TOKEN_FILE_NAME = "azure-identity-token";
// The kubelet rotates a projected token once it is 80% of its lifetime old.
const ROTATE_AFTER_MS = FEDERATED_TOKEN_LIFETIME_SECONDS * 800;

/** The user-assigned identity a query names: its kind and value, or nothing for system-assigned. */
function named(
  query: URLSearchParams,
  resourceParameter: string,
): [keyof EmulatedIdentity | undefined, string | null] {
  for (
    const [kind, parameter] of [["clientId", "client_id"], ["objectId", "object_id"], [
      "resourceId",
      resourceParameter,
    ]] as const
  ) {
    if (query.has(parameter)) return [kind, query.get(parameter)];
  }
  return [undefined, null];
}

/**
 * Azure Arc's challenge: 401 with `WWW-Authenticate: Basic realm=<key file>` and a small JSON
 * body. What the real agent (himds) sends as the body is not documented: Microsoft's walkthrough
 * (https://learn.microsoft.com/azure/azure-arc/servers/managed-identity-authentication) reads
 * only the header, MSAL's and the Azure SDKs' tests mock the 401 with an empty or made-up body,
 * and the one recorded exchange with a real agent found, an @azure/identity 4.2.1 debug log
 * against `localhost:40342` on Windows (https://github.com/Azure/autorest.typescript/issues/2354),
 * shows `content-type: application/json` but not the body (core-rest-pipeline logs headers
 * only). So the body here is JSON in IMDS's error shape, which the agent mirrors for its other
 * errors (docs/sources.md, error bodies): a client that parses every body as JSON, as msal-node 7.2
 * does, must not fail on the challenge (`Unexpected end of JSON input` on an empty one).
 */
function arcChallenge(path: string): Response {
  return Response.json({
    error: "unauthorized_client",
    error_description: "The request needs the key in the file named by WWW-Authenticate's realm, " +
      "sent back as Authorization: Basic <key>",
  }, { status: 401, headers: { "WWW-Authenticate": `Basic realm=${path}` } });
}

/** The sources a relay serves: the ones every Azure SDK can be pointed at on this machine. */
export const RELAYED_SOURCES: readonly Source[] = ["AppService", "DefaultToIMDS"];

/** The query parameters that name a user-assigned identity on App Service and IMDS. */
const RELAYED_ID_PARAMETERS = ["client_id", "object_id", "principal_id", "mi_res_id", "msi_res_id"];
/** ... and on every source: Azure ML's `clientid`, Service Fabric's `principalId` too. */
const USER_ASSIGNED_PARAMETERS = [...RELAYED_ID_PARAMETERS, "principalId", "clientid"];

const encoder = new TextEncoder();
const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));

/**
 * Whether a request's secret header is the secret, in time that tells nothing of where they
 * differ: the SHA-256 digests of both are compared with a XOR loop over all 32 bytes, no early
 * exit (a `!==` on the strings stops at the first differing character). Linear in the header.
 */
async function sameSecret(given: string | null, expected: Promise<Uint8Array>): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given ?? ""), expected]);
  let difference = given === null ? 1 : 0;
  for (let index = 0; index < b.length; index++) difference |= a[index]! ^ b[index]!;
  return difference === 0;
}

/**
 * Creates emulated endpoints for every source.
 *
 * @example Serve a client through the App Service handler, no sockets
 * ```ts
 * import { createEmulator } from "@azmi/managed-identity/emulator";
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const emulator = createEmulator();
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: emulator.secret },
 *   fetch: emulator.handler("AppService"),
 *   cache: new TokenCache(),
 * });
 * const { accessToken } = await client.acquireToken("https://vault.azure.net");
 * ```
 */
export function createEmulator(options?: EmulatorOptions): Emulator {
  if (options === undefined) options = {};
  const now = options.now ?? Date.now;
  const lifetime = options.lifetimeSeconds ?? 3600;
  const secret = options.secret ?? uuid().replace(/-/g, "");
  const secretDigest = digest(secret);
  const relay = options.origin
    ? createRelay(options.origin, { now, timeoutMs: options.originTimeoutMs, onIdentity: options.onIdentity })
    : undefined;
  const arcDirectory = (options.arcKeyDirectory ?? "/var/opt/azcmagent/tokens").replace(/[\\/]+$/, "");
  const systemIdentity: EmulatedIdentity = {
    clientId: uuid(),
    objectId: uuid(),
    resourceId: EMULATED_HOST_RESOURCE_IDS.DefaultToIMDS,
  };
  const identities = options.identities ?? [identity("azmi-emulated-identity")];
  const scripts = new Map<Source, Fault[]>();
  for (const [source, faults] of Object.entries(options.faults ?? {})) scripts.set(source as Source, [...faults]);
  // Failure scenarios left per source, oldest first; `release` ends every wait they (and the
  // hang and delay faults) hold, and is renewed by each recover().
  const failures = new Map<Source, PendingFailure[]>();
  if (options.fail !== undefined) queueFailures(options.fail, failures);
  let release = new AbortController();
  const requests: EmulatedRequest[] = [];
  // Key contents -> key file path, oldest first; the paths are also what cleanup() removes.
  const arcKeys = new Map<string, string>();
  // Workload identity: the credential every identity trusts, the key that signs federated
  // tokens, and the one token file (its private directory, and when it was last written).
  const credential = federatedCredential();
  const signer = createSigner();
  // The access tokens' key: RSA, made on first use (serve() asks for it at start).
  const signingKey = createSigningKey(now);
  let tokenFile: {
    readonly directory: string;
    readonly path: string;
    writtenAt: number;
    readonly refused: (error: unknown) => unknown;
  } | undefined;
  let tokenWrite: Promise<string> | undefined;

  /**
   * Writes a new federated token into the file (atomically: a temporary file renamed over it).
   * A permission the runtime refuses is one line naming the flags (the directory needs both).
   */
  async function writeTokenFile(): Promise<string> {
    const fs = fileSystem();
    if (!tokenFile) {
      let base = options!.federatedTokenDirectory; // defined: set to {} on entry when not given
      if (base === undefined) {
        try {
          base = builtin<{ tmpdir(): string }>("node:os", "find a temporary directory").tmpdir();
        } catch (error) {
          // Deno's node:os reads TMPDIR, then TMP and TEMP: one flag for all three.
          throw permissionError(
            error,
            "find the temporary directory for workload identity's federated token file (or pass federatedTokenDirectory)",
            (refusal) => refusal.kind === "env" && !refusal.node ? ["--allow-env=TMPDIR,TMP,TEMP"] : undefined,
          ) ?? error;
        }
      }
      base = base.replace(/[\\/]+$/, "") || "/";
      const where = base;
      const refused = (error: unknown) =>
        permissionError(
          error,
          `write workload identity's federated token file in ${where}`,
          (refusal) =>
            refusal.kind === "read" || refusal.kind === "write"
              ? [flagFor("read", where, refusal.node), flagFor("write", where, refusal.node)]
              : undefined,
        ) ?? error;
      try {
        await fs.mkdir(base, { recursive: true });
        const directory = await fs.mkdtemp(`${base}/azmi-workload-identity-`);
        tokenFile = { directory, path: `${directory}/${TOKEN_FILE_NAME}`, writtenAt: 0, refused };
      } catch (error) {
        throw refused(error);
      }
    }
    const { path } = tokenFile;
    const issued = now();
    const token = await signer.sign(serviceAccountClaims(credential, Math.floor(issued / 1000)));
    const temporary = `${path}.${uuid()}.tmp`;
    try {
      await fs.writeFile(temporary, token, { mode: 0o600 });
      await fs.rename(temporary, path);
      // Reading it back needs --allow-read on Deno, as the client and cleanup() do: refused now
      // rather than at stop.
      await fs.stat(path);
    } catch (error) {
      await fs.rm(temporary, { force: true }).catch(() => {});
      throw tokenFile.refused(error);
    }
    tokenFile.writtenAt = issued;
    return path;
  }

  /** The token file's path, written first or rotated when due; one write at a time. */
  function federatedTokenFile(): Promise<string> {
    if (tokenFile?.writtenAt && now() - tokenFile.writtenAt < ROTATE_AFTER_MS) return Promise.resolve(tokenFile.path);
    tokenWrite ??= writeTokenFile().finally(() => tokenWrite = undefined);
    return tokenWrite;
  }

  /** Finds the user-assigned identity a request names, `null` for system-assigned, `undefined` when unknown. */
  const lookup = (kind: keyof EmulatedIdentity | undefined, value: string | null) => {
    if (!kind || value === null) return null;
    return identities.find((id) => id[kind].toLowerCase() === value.toLowerCase());
  };

  /** The success answer: a token for `resource` and identity `who` (`null`: system-assigned). */
  const token = async (
    source: Source,
    resource: string,
    who: EmulatedIdentity | null,
    extra: Record<string, unknown> = {},
  ) => {
    const issued = Math.floor(now() / 1000);
    // Entra counts expires_in from its answer, a second short of the lifetime: 3599 for an hour.
    const seconds = source === "WorkloadIdentity" ? Math.max(1, lifetime - 1) : lifetime;
    const expires = issued + seconds;
    // The system-assigned identity's xms_mirid is the resource that hosts it.
    const identity = who ?? { ...systemIdentity, resourceId: EMULATED_HOST_RESOURCE_IDS[source] };
    const access = await emulatedToken(signingKey, source, resource, identity, issued, expires);
    const refresh = options.refreshInSeconds === undefined ? {} : { refresh_in: options.refreshInSeconds };
    // Each endpoint's real field types: IMDS, Arc and Cloud Shell send numbers as strings,
    // Entra numbers as numbers.
    const body = source === "WorkloadIdentity"
      ? { token_type: "Bearer", expires_in: seconds, ext_expires_in: seconds, access_token: access }
      : source === "ServiceFabric"
      ? { access_token: access, expires_on: expires, resource, token_type: "Bearer" }
      : source === "AppService" || source === "AzureML"
      ? {
        access_token: access,
        expires_on: String(expires),
        resource,
        token_type: "Bearer",
        client_id: identity.clientId,
      }
      : {
        access_token: access,
        client_id: identity.clientId,
        expires_in: String(lifetime),
        expires_on: String(expires),
        ext_expires_in: String(lifetime),
        not_before: String(issued),
        resource,
        token_type: "Bearer",
      };
    return Response.json({ ...body, ...refresh, ...extra });
  };

  /**
   * A relayed answer: the origin's token for `resource` in the source's body, or the origin's
   * failure in the source's error shape with the status for its reason (docs/relay.md).
   */
  async function relayed(origin: Relay, source: Source, resource: string, query: URLSearchParams): Promise<Response> {
    for (const parameter of RELAYED_ID_PARAMETERS) {
      const value = query.get(parameter);
      if (value) origin.named(parameter, value);
    }
    if (relayResource(resource) === "") {
      return errorBody(source, 400, "invalid_request", "The resource parameter is required");
    }
    let token;
    try {
      token = await origin.token(resource);
    } catch (error) {
      const failure = error instanceof OriginError ? error : new OriginError("failed", `${origin.name} failed`);
      return errorBody(source, RELAY_ERROR_STATUS[failure.reason], failure.reason, failure.message);
    }
    const expires = String(token.expiresOn);
    if (source === "AppService") {
      return Response.json({ access_token: token.accessToken, expires_on: expires, resource, token_type: "Bearer" });
    }
    // IMDS sends its numbers as strings; expires_in counts from now, never below 0.
    const seconds = String(Math.max(0, token.expiresOn - Math.floor(now() / 1000)));
    return Response.json({
      access_token: token.accessToken,
      expires_in: seconds,
      expires_on: expires,
      ext_expires_in: seconds,
      resource,
      token_type: "Bearer",
    });
  }

  /** Ends every wait of a failure scenario or fault: each held request is answered now. */
  function releaseWaits(): void {
    release.abort();
    release = new AbortController();
  }

  /** Drops every failure left and releases every request a failure keeps waiting. */
  function recover(): void {
    failures.clear();
    scripts.clear();
    releaseWaits();
  }

  /** What a failure answer needs to know about a request. */
  const context = (request: Request, resource: string, userAssigned: boolean): FailureContext => ({
    now: now(),
    resource,
    userAssigned,
    credential,
    request,
  });

  /**
   * The failure scenario that answers this request, if any: the head of the source's queue,
   * counted down. `silent` takes every request; the others token requests only.
   */
  function nextFailure(source: Source, request: Request): PendingFailure["scenario"] | undefined {
    const queue = failures.get(source);
    const head = queue?.[0];
    if (!queue || !head || (head.scenario.kind !== "silent" && !isTokenRequest(source, request))) return undefined;
    head.remaining--;
    if (head.remaining <= 0) queue.shift();
    return head.scenario;
  }

  /** The resource a token request asks for: the query's, Cloud Shell's form, Entra's scope. */
  async function requestedResource(source: Source, request: Request): Promise<string> {
    if (source !== "CloudShell" && source !== "WorkloadIdentity") {
      return new URL(request.url).searchParams.get("resource") ?? "";
    }
    const form = new URLSearchParams(await request.text().catch(() => ""));
    return source === "CloudShell" ? form.get("resource") ?? "" : (form.get("scope") ?? "").replace(/\/\.default$/, "");
  }

  /**
   * Answers a request as a failure scenario says; `undefined` when the scenario (`slow`, or a
   * `silent` one that recover() ended) lets the normal answer follow. A request whose client
   * gave up on a silent endpoint is logged with status 0.
   */
  async function rehearse(
    source: Source,
    scenario: PendingFailure["scenario"],
    request: Request,
  ): Promise<Response | undefined> {
    if (scenario.kind === "slow") {
      // The emulator's own timer only: reading request.signal makes Deno.serve print a warning.
      await waitFor(scenario.delayMs, release.signal);
      return undefined;
    }
    if (scenario.kind === "silent") {
      await waitFor(undefined, request.signal, release.signal);
      return request.signal.aborted ? new Response(null, { status: 504 }) : undefined;
    }
    const query = new URL(request.url).searchParams;
    const userAssigned = USER_ASSIGNED_PARAMETERS.some((name) => query.get(name));
    const resource = scenario.kind === "unknown-resource" ? await requestedResource(source, request) : "";
    return failureAnswer(source, scenario, context(request, resource, userAssigned));
  }

  async function answer(source: Source, request: Request): Promise<Response> {
    const url = new URL(request.url);
    const query = url.searchParams;
    const version = EMULATED_API_VERSIONS[source];
    const got = query.get("api-version");
    if (source === "ServiceFabric" && !SERVICE_FABRIC_API_VERSIONS.includes(got ?? "")) {
      // The token service's own words (Microsoft's page, typical errors).
      return errorBody(
        source,
        400,
        "InvalidApiVersion",
        `The api-version '${got ?? ""}' is not supported. Supported versions are '${
          SERVICE_FABRIC_API_VERSIONS.join("' and '")
        }'.`,
      );
    }
    if (version && source !== "ServiceFabric" && got !== version) {
      return errorBody(
        source,
        400,
        "invalid_request",
        `api-version must be ${version}: got ${got}`,
      );
    }
    switch (source) {
      case "DefaultToIMDS":
      case "AzureArc": {
        if (request.method !== "GET") return errorBody(source, 405, "invalid_request", "Only GET is supported");
        if (request.headers.get("metadata") !== "true") {
          return errorBody(source, 400, "invalid_request", "Required metadata header not specified");
        }
        if (source === "AzureArc") {
          const authorization = request.headers.get("authorization");
          if (authorization === null) {
            // The challenge: a fresh key in a file the caller must be allowed to read.
            const fs = fileSystem();
            const key = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0"))
              .join("");
            const path = `${arcDirectory}/${uuid()}.key`;
            try {
              await fs.mkdir(arcDirectory, { recursive: true });
              await fs.writeFile(path, key, { mode: 0o600 });
            } catch (error) {
              // The runtime's refusal is the emulator's own failure: a 500 that names the flag,
              // which the client quotes, rather than a stack trace from the server.
              const refused = permissionError(error, `write Azure Arc's key file in ${arcDirectory}`);
              if (!refused) throw error;
              // The flag's value in quotes: a client's redaction takes a long unbroken run for a token.
              const quoted = refused.message.replace(/(--allow-[a-z-]+=)(\S+)/g, '$1"$2"');
              return errorBody(source, 500, "emulator_permission", quoted);
            }
            arcKeys.set(key, path);
            // A long-running emulator keeps the newest keys only, on disk as in memory.
            for (const [old, oldPath] of arcKeys) {
              if (arcKeys.size <= MAX_ARC_KEYS) break;
              arcKeys.delete(old);
              await fs.rm(oldPath, { force: true });
            }
            return arcChallenge(path);
          }
          const key = /^Basic (.+)$/.exec(authorization)?.[1];
          if (!key || !arcKeys.has(key)) {
            return errorBody(source, 401, "invalid_request", "The Authorization header does not hold a valid key");
          }
        }
        const resource = query.get("resource");
        if (!resource) {
          return errorBody(source, 400, "invalid_request", "Required query variable 'resource' is missing");
        }
        if (relay) return relayed(relay, source, resource, query);
        const [kind, value] = named(query, "msi_res_id");
        const who = lookup(kind, value);
        if (who === undefined) return noIdentityAnswer(source, context(request, resource, true));
        // Arc echoes the identity it used.
        const echo = source === "AzureArc" && who && kind
          ? { [query.has("msi_res_id") ? "msi_res_id" : kind === "clientId" ? "client_id" : "object_id"]: value }
          : {};
        return token(source, resource, who, echo);
      }
      case "AppService":
      case "AzureML": {
        const header = source === "AppService" ? "x-identity-header" : "secret";
        if (!await sameSecret(request.headers.get(header), secretDigest)) {
          return errorBody(source, 400, "invalid_request", `The ${header} header is missing or wrong`);
        }
        const resource = query.get("resource");
        if (!resource) return errorBody(source, 400, "invalid_request", "The resource parameter is required");
        if (relay) return relayed(relay, source, resource, query);
        let who: EmulatedIdentity | null | undefined;
        if (source === "AzureML") {
          const clientId = query.get("clientid");
          who = clientId ? lookup("clientId", clientId) : null;
        } else {
          who = lookup(...named(query, "mi_res_id"));
        }
        if (who === undefined) return noIdentityAnswer(source, context(request, resource, true));
        return token(source, resource, who);
      }
      case "CloudShell": {
        if (request.method !== "POST") return errorBody(source, 405, "BadRequest", "Only POST is supported");
        if (request.headers.get("metadata") !== "true") {
          return errorBody(source, 400, "BadRequest", "Required metadata header not specified");
        }
        const resource = new URLSearchParams(await request.text()).get("resource");
        if (!resource) return errorBody(source, 400, "BadRequest", "The form body must carry resource");
        return token(source, resource, null);
      }
      case "ServiceFabric": {
        if (!await sameSecret(request.headers.get("secret"), secretDigest)) {
          return errorBody(source, 401, "SecretHeaderNotFound", "Secret is not found in the request headers.");
        }
        const resource = query.get("resource");
        if (!resource) return errorBody(source, 400, "ArgumentNullOrEmpty", "Resource is null or empty.");
        // A user-assigned identity is named by object ID as principalId, the one selector the
        // token service reads; it ignores client_id and the like (MSAL .NET issue 6065).
        const who = lookup(query.has("principalId") ? "objectId" : undefined, query.get("principalId"));
        if (who === undefined) return noIdentityAnswer(source, context(request, resource, true));
        return token(source, resource, who);
      }
      case "WorkloadIdentity": {
        // Like the kubelet, keep the file fresh (a failed rewrite leaves the old one); the
        // assertion presented is checked as it is.
        if (tokenFile) await federatedTokenFile().catch(() => {});
        return answerTokenRequest(request, {
          tenant: EMULATOR_TENANT,
          credential,
          identities: [systemIdentity, ...identities],
          signer,
          now,
          // The default client ID's identity stands for the system-assigned one.
          token: (resource, who) => token(source, resource, who === systemIdentity ? null : who),
        });
      }
    }
  }

  /** One request to one source's endpoint: discovery, then a scripted fault or failure, else the normal answer; logged. */
  async function answerRequest(source: Source, request: Request): Promise<Response> {
    // A relay serves real tokens: the emulator's discovery documents and keys do not apply to them.
    if (!relay) {
      const discovery = await answerDiscovery(request, signingKey, now);
      if (discovery) return discovery;
    }
    const url = new URL(request.url);
    const fault = scripts.get(source)?.shift();
    const scenario = fault ? undefined : nextFailure(source, request);
    let response: Response | undefined;
    let status: number | undefined;
    if (fault) {
      if (fault.delayMs) await waitFor(fault.delayMs, request.signal, release.signal);
      if (fault.hang) await waitFor(undefined, request.signal, release.signal);
      response = fault.drop
        ? droppedResponse(fault.status ?? 200)
        : fault.body !== undefined
        ? new Response(fault.body, { status: fault.status ?? 200, headers: fault.headers })
        : errorBody(source, fault.status ?? 500, "emulated_fault", "A fault scripted in the emulator");
      if (fault.headers && fault.body === undefined) {
        for (const [name, value] of Object.entries(fault.headers)) response.headers.set(name, value);
      }
    } else if (scenario) {
      response = await rehearse(source, scenario, request);
      // A silent endpoint's client gave up: nothing was answered.
      if (response && scenario.kind === "silent") status = 0;
    }
    response ??= await answer(source, request);
    requests.push({
      source,
      method: request.method,
      url: `${url.origin}${url.pathname}${url.search}`,
      status: status ?? response.status,
    });
    if (requests.length > MAX_LOGGED_REQUESTS) requests.shift();
    return response;
  }

  return {
    secret,
    systemIdentity,
    identities,
    federatedCredential: credential,
    issuer: EMULATOR_ISSUER,
    signingKey,
    requests,
    jwks: () => signingKey.jwks(),
    relay,
    handler: (source) => {
      if (relay && !RELAYED_SOURCES.includes(source)) {
        throw new TypeError(
          `An emulator with an origin serves real tokens over AppService and DefaultToIMDS only: got ${
            visible(String(source))
          }`,
        );
      }
      return (request) => answerRequest(source, request);
    },
    fault(source, ...faults) {
      scripts.set(source, [...(scripts.get(source) ?? []), ...faults]);
    },
    fail(scenarios) {
      queueFailures(scenarios, failures);
    },
    recover,
    federatedTokenFile,
    async cleanup() {
      releaseWaits();
      relay?.clear();
      await tokenWrite?.catch(() => {});
      const written = tokenFile;
      tokenFile = undefined;
      if (arcKeys.size === 0 && !written) return;
      const fs = fileSystem();
      const paths = [...arcKeys.values()];
      arcKeys.clear();
      await Promise.all(paths.map((path) => fs.rm(path, { force: true })));
      // The token file's directory is the emulator's own (mkdtemp): removed whole.
      if (written) {
        await fs.rm(written.directory, { recursive: true, force: true }).catch((error) => {
          throw written.refused(error);
        });
      }
    },
  };
}
