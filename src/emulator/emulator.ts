/**
 * Web-standard handlers that behave like the six managed identity endpoints (PROTOCOL.md):
 * required headers, secrets and api-versions are checked and refused with each endpoint's real
 * error shape, user-assigned identities are honoured or refused per source, Azure Arc answers
 * with its 401 challenge and a key file it writes, and tokens carry claims that match the
 * request.
 * @module
 */

import type { Source } from "../types.ts";
import { droppedResponse, type Fault, pause } from "./faults.ts";
import { type EmulatedIdentity, emulatedToken } from "./token.ts";

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
  /** The system-assigned identity. */
  readonly systemIdentity: EmulatedIdentity;
  /** The user-assigned identities. */
  readonly identities: readonly EmulatedIdentity[];
  /** The requests so far (the newest 10,000), oldest first. */
  readonly requests: readonly EmulatedRequest[];
  /** The handler of one source's endpoint. */
  handler(source: Source): (request: Request) => Promise<Response>;
  /** Appends scripted answers for a source. */
  fault(source: Source, ...faults: Fault[]): void;
  /** Removes the Arc key files the emulator wrote. */
  cleanup(): Promise<void>;
}

/** The paths and api-versions of each endpoint. */
export const EMULATED_API_VERSIONS: Readonly<Record<Source, string>> = {
  DefaultToIMDS: "2018-02-01",
  AppService: "2019-08-01",
  AzureArc: "2020-06-01",
  AzureML: "2017-09-01",
  CloudShell: "",
  ServiceFabric: "2019-07-01-preview",
};

const uuid = () => crypto.randomUUID();

// Bounds for a long-running emulator (`azmi emulate`): the request log and the Arc key files.
const MAX_LOGGED_REQUESTS = 10_000;
const MAX_ARC_KEYS = 100;

function identity(name: string): EmulatedIdentity {
  return {
    clientId: uuid(),
    objectId: uuid(),
    resourceId:
      `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azmi-emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
  };
}

interface FsView {
  mkdir(path: string, options: { recursive: boolean }): Promise<unknown>;
  writeFile(path: string, data: string, options: { mode: number }): Promise<void>;
  rm(path: string, options: { force: boolean }): Promise<void>;
}

function fileSystem(): FsView {
  const load = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process
    ?.getBuiltinModule;
  const fs = load?.("node:fs/promises") as FsView | undefined;
  if (!fs) throw new Error("The Azure Arc emulator needs node:fs/promises to write its key file");
  return fs;
}

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

// Each source's error body shape (PROTOCOL.md section 4).
function errorBody(source: Source, status: number, code: string, message: string): Response {
  const body = source === "DefaultToIMDS" || source === "AzureArc"
    ? { error: code, error_description: message }
    : source === "AppService" || source === "AzureML"
    ? { statusCode: status, message, correlationId: uuid() }
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
    resourceId:
      "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/azmi-emulator/providers/Microsoft.Compute/virtualMachines/emulated-vm",
  };
  const identities = options.identities ?? [identity("azmi-emulated-identity")];
  const scripts = new Map<Source, Fault[]>();
  for (const [source, faults] of Object.entries(options.faults ?? {})) scripts.set(source as Source, [...faults]);
  const requests: EmulatedRequest[] = [];
  // Key contents -> key file path, oldest first; the paths are also what cleanup() removes.
  const arcKeys = new Map<string, string>();

  /** Finds the user-assigned identity a request names, `null` for system-assigned, `undefined` when unknown. */
  const lookup = (kind: keyof EmulatedIdentity | undefined, value: string | null) => {
    if (!kind || value === null) return null;
    return identities.find((id) => id[kind].toLowerCase() === value.toLowerCase());
  };

  const token = (source: Source, resource: string, who: EmulatedIdentity, extra: Record<string, unknown> = {}) => {
    const issued = Math.floor(now() / 1000);
    const expires = issued + lifetime;
    const access = emulatedToken(source, resource, who, issued, expires);
    const refresh = options.refreshInSeconds === undefined ? {} : { refresh_in: options.refreshInSeconds };
    // Each endpoint's real field types: IMDS, Arc and Cloud Shell send numbers as strings.
    const body = source === "ServiceFabric"
      ? { access_token: access, expires_on: expires, resource, token_type: "Bearer" }
      : source === "AppService" || source === "AzureML"
      ? { access_token: access, expires_on: String(expires), resource, token_type: "Bearer", client_id: who.clientId }
      : {
        access_token: access,
        client_id: who.clientId,
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
    if (version && query.get("api-version") !== version) {
      return errorBody(
        source,
        400,
        "invalid_request",
        `api-version must be ${version}: got ${query.get("api-version")}`,
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
            return new Response(null, { status: 401, headers: { "WWW-Authenticate": `Basic realm=${path}` } });
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
        return token(source, resource, who ?? systemIdentity, echo);
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
        return token(source, resource, who ?? systemIdentity);
      }
      case "CloudShell": {
        if (request.method !== "POST") return errorBody(source, 405, "BadRequest", "Only POST is supported");
        if (request.headers.get("metadata") !== "true") {
          return errorBody(source, 400, "BadRequest", "Required metadata header not specified");
        }
        const resource = new URLSearchParams(await request.text()).get("resource");
        if (!resource) return errorBody(source, 400, "BadRequest", "The form body must carry resource");
        return token(source, resource, systemIdentity);
      }
      case "ServiceFabric": {
        if (request.headers.get("secret") !== secret) {
          return errorBody(source, 401, "SecretHeaderNotFound", "Secret is not found in the request headers.");
        }
        const resource = query.get("resource");
        if (!resource) return errorBody(source, 400, "ArgumentNullOrEmpty", "Resource is null or empty.");
        return token(source, resource, systemIdentity);
      }
    }
  }

  return {
    secret,
    systemIdentity,
    identities,
    requests,
    handler: (source) => async (request) => {
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
    async cleanup() {
      if (arcKeys.size === 0) return;
      const fs = fileSystem();
      const paths = [...arcKeys.values()];
      arcKeys.clear();
      await Promise.all(paths.map((path) => fs.rm(path, { force: true })));
    },
  };
}
