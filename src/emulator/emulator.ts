/**
 * Web-standard handlers that behave like the six managed identity endpoints (docs/sources.md) and
 * like Microsoft Entra ID's token endpoint for workload identity: required headers, secrets,
 * forms and api-versions are checked and refused with each endpoint's real error shape,
 * user-assigned identities are honoured or refused per source, Azure Arc answers with its 401
 * challenge and a key file it writes, workload identity's federated token file is written and
 * rotated, and tokens are RS256-signed v1 access tokens whose claims match the request, which
 * every endpoint's server lets a client validate with Entra's OpenID discovery documents and
 * keys (discovery.ts).
 * @module
 */

import type { Source } from "../types.ts";
import { answerDiscovery } from "./discovery.ts";
import { droppedResponse, type Fault, pause } from "./faults.ts";
import { createSigningKey, type EmulatorJwks, type EmulatorSigningKey } from "./signing.ts";
import { type EmulatedIdentity, emulatedToken, EMULATOR_ISSUER, EMULATOR_TENANT } from "./token.ts";
import {
  answerTokenRequest,
  createSigner,
  entraError,
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
  /** The clock, in milliseconds. Default `Date.now`. */
  readonly now?: () => number;
}

/** A request the emulator received, without secrets. */
export interface EmulatedRequest {
  /** The source whose endpoint received it. */
  readonly source: Source;
  /** The HTTP method. */
  readonly method: string;
  /** Origin, path and query (the query carries no secrets on any source). */
  readonly url: string;
  /** The status the emulator answered. */
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
   * as Entra does, with URLs on the server that answered (faults do not apply to them).
   */
  handler(source: Source): (request: Request) => Promise<Response>;
  /** The public key that verifies its tokens, as served at the `discovery/keys` URLs. */
  jwks(): Promise<EmulatorJwks>;
  /** Appends scripted answers for a source. */
  fault(source: Source, ...faults: Fault[]): void;
  /**
   * Writes workload identity's federated token file (a JWT-shaped Kubernetes service account
   * token the emulator signs, valid for an hour) and returns its path, for
   * `AZURE_FEDERATED_TOKEN_FILE`. Later calls return the same path; like the kubelet, they (and
   * the endpoint's requests) write a new token in its place once the file is 80% of its
   * lifetime old. One file per emulator, whatever the number of calls.
   */
  federatedTokenFile(): Promise<string>;
  /** Removes the Arc key files and the federated token file (with its directory) the emulator wrote. */
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

// Each source's error body shape (docs/sources.md, error bodies). Service Fabric's nests its
// correlation ID, as Microsoft's sample error shows
// (https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling).
function errorBody(source: Source, status: number, code: string, message: string): Response {
  if (source === "WorkloadIdentity") return entraError(status, code, undefined, message, { now: Date.now() });
  const body = source === "DefaultToIMDS" || source === "AzureArc"
    ? { error: code, error_description: message }
    : source === "AppService" || source === "AzureML"
    ? { statusCode: status, message, correlationId: uuid() }
    : source === "ServiceFabric"
    ? { error: { correlationId: uuid(), code, message } }
    : { error: { code, message } };
  return Response.json(body, { status });
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
export function createEmulator(options: EmulatorOptions = {}): Emulator {
  const now = options.now ?? Date.now;
  const lifetime = options.lifetimeSeconds ?? 3600;
  const secret = options.secret ?? uuid().replace(/-/g, "");
  const arcDirectory = (options.arcKeyDirectory ?? "/var/opt/azcmagent/tokens").replace(/[\\/]+$/, "");
  const systemIdentity: EmulatedIdentity = {
    clientId: uuid(),
    objectId: uuid(),
    resourceId: EMULATED_HOST_RESOURCE_IDS.DefaultToIMDS,
  };
  const identities = options.identities ?? [identity("azmi-emulated-identity")];
  const scripts = new Map<Source, Fault[]>();
  for (const [source, faults] of Object.entries(options.faults ?? {})) scripts.set(source as Source, [...faults]);
  const requests: EmulatedRequest[] = [];
  // Key contents -> key file path, oldest first; the paths are also what cleanup() removes.
  const arcKeys = new Map<string, string>();
  // Workload identity: the credential every identity trusts, the key that signs federated
  // tokens, and the one token file (its private directory, and when it was last written).
  const credential = federatedCredential();
  const signer = createSigner();
  // The access tokens' key: RSA, made on first use (serve() asks for it at start).
  const signingKey = createSigningKey(now);
  let tokenFile: { readonly directory: string; readonly path: string; writtenAt: number } | undefined;
  let tokenWrite: Promise<string> | undefined;

  /** Writes a new federated token into the file (atomically: a temporary file renamed over it). */
  async function writeTokenFile(): Promise<string> {
    const fs = fileSystem();
    if (!tokenFile) {
      const base = (options.federatedTokenDirectory ??
        builtin<{ tmpdir(): string }>("node:os", "find a temporary directory").tmpdir())
        .replace(/[\\/]+$/, "");
      await fs.mkdir(base, { recursive: true });
      const directory = await fs.mkdtemp(`${base}/azmi-workload-identity-`);
      tokenFile = { directory, path: `${directory}/${TOKEN_FILE_NAME}`, writtenAt: 0 };
    }
    const { path } = tokenFile;
    const issued = now();
    const token = await signer.sign(serviceAccountClaims(credential, Math.floor(issued / 1000)));
    const temporary = `${path}.${uuid()}.tmp`;
    try {
      await fs.writeFile(temporary, token, { mode: 0o600 });
      await fs.rename(temporary, path);
    } catch (error) {
      await fs.rm(temporary, { force: true }).catch(() => {});
      throw error;
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
            await fs.mkdir(arcDirectory, { recursive: true });
            await fs.writeFile(path, key, { mode: 0o600 });
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
        const [kind, value] = named(query, "msi_res_id");
        const who = lookup(kind, value);
        if (who === undefined) {
          return source === "AzureArc"
            ? errorBody(
              source,
              404,
              "identity_not_found",
              "The requested identity has not been assigned to this resource",
            )
            : errorBody(source, 400, "invalid_request", "Identity not found");
        }
        // Arc echoes the identity it used.
        const echo = source === "AzureArc" && who && kind
          ? { [query.has("msi_res_id") ? "msi_res_id" : kind === "clientId" ? "client_id" : "object_id"]: value }
          : {};
        return token(source, resource, who, echo);
      }
      case "AppService":
      case "AzureML": {
        const header = source === "AppService" ? "x-identity-header" : "secret";
        if (request.headers.get(header) !== secret) {
          return errorBody(source, 400, "invalid_request", `The ${header} header is missing or wrong`);
        }
        const resource = query.get("resource");
        if (!resource) return errorBody(source, 400, "invalid_request", "The resource parameter is required");
        let who: EmulatedIdentity | null | undefined;
        if (source === "AzureML") {
          const clientId = query.get("clientid");
          who = clientId ? lookup("clientId", clientId) : null;
        } else {
          who = lookup(...named(query, "mi_res_id"));
        }
        if (who === undefined) {
          return errorBody(source, 400, "invalid_request", "No managed identity found for the specified identity");
        }
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
        if (request.headers.get("secret") !== secret) {
          return errorBody(source, 401, "SecretHeaderNotFound", "Secret is not found in the request headers.");
        }
        const resource = query.get("resource");
        if (!resource) return errorBody(source, 400, "ArgumentNullOrEmpty", "Resource is null or empty.");
        // A user-assigned identity is named by object ID as principalId, the one selector the
        // token service reads; it ignores client_id and the like (MSAL .NET issue 6065).
        const who = lookup(query.has("principalId") ? "objectId" : undefined, query.get("principalId"));
        if (who === undefined) {
          return errorBody(
            source,
            404,
            "ManagedIdentityNotFound",
            "Managed identity not found for the specified application host.",
          );
        }
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

  return {
    secret,
    systemIdentity,
    identities,
    federatedCredential: credential,
    issuer: EMULATOR_ISSUER,
    signingKey,
    requests,
    jwks: () => signingKey.jwks(),
    handler: (source) => async (request) => {
      const discovery = await answerDiscovery(request, signingKey, now);
      if (discovery) return discovery;
      const url = new URL(request.url);
      const fault = scripts.get(source)?.shift();
      let response: Response;
      if (fault) {
        if (fault.delayMs) await pause(fault.delayMs, request.signal);
        if (fault.hang) await new Promise<void>((resolve) => request.signal.addEventListener("abort", () => resolve()));
        response = fault.drop
          ? droppedResponse(fault.status ?? 200)
          : fault.body !== undefined
          ? new Response(fault.body, { status: fault.status ?? 200, headers: fault.headers })
          : errorBody(source, fault.status ?? 500, "emulated_fault", "A fault scripted in the emulator");
        if (fault.headers && fault.body === undefined) {
          for (const [name, value] of Object.entries(fault.headers)) response.headers.set(name, value);
        }
      } else {
        response = await answer(source, request);
      }
      requests.push({
        source,
        method: request.method,
        url: `${url.origin}${url.pathname}${url.search}`,
        status: response.status,
      });
      if (requests.length > MAX_LOGGED_REQUESTS) requests.shift();
      return response;
    },
    fault(source, ...faults) {
      scripts.set(source, [...(scripts.get(source) ?? []), ...faults]);
    },
    federatedTokenFile,
    async cleanup() {
      await tokenWrite?.catch(() => {});
      const written = tokenFile;
      tokenFile = undefined;
      if (arcKeys.size === 0 && !written) return;
      const fs = fileSystem();
      const paths = [...arcKeys.values()];
      arcKeys.clear();
      await Promise.all(paths.map((path) => fs.rm(path, { force: true })));
      // The token file's directory is the emulator's own (mkdtemp): removed whole.
      if (written) await fs.rm(written.directory, { recursive: true, force: true });
    },
  };
}
