/**
 * `ManagedIdentityClient`: composes detection, the cache, a source and the transport.
 * @module
 */

import { type CachedToken, cacheKey, type CacheStore, cacheStore, defaultCache, type TokenCache } from "./cache.ts";
import { detectSource } from "./detect.ts";
import { type EnvReader, envReader } from "./env.ts";
import { ManagedIdentityError } from "./errors.ts";
import { type Identity, type IdentityOptions, parseIdentity } from "./identity.ts";
import { emit, type ManagedIdentityEventListener } from "./events.ts";
import { flight, join } from "./flight.ts";
import { internalOptions } from "./internal.ts";
import { MAX_TIMER_MS, numberOption } from "./options.ts";
import { SOURCES } from "./sources/index.ts";
import {
  endpointName,
  identityParameter,
  type ParseOutcome,
  parseStandardReply,
  readEndpoint,
  requestSecrets,
  type RequestSpec,
  type SourceDefinition,
} from "./sources/source.ts";
import { type RetryOptions, type RetryPolicy, retryPolicy, sleep } from "./retry.ts";
import { abortedError, defaultFetch, raceAbort, send, sendOnce } from "./transport.ts";
import type {
  AccessToken,
  AcquireTokenOptions,
  EnvRecord,
  FetchLike,
  GetTokenOptions,
  Source,
  TokenResult,
} from "./types.ts";

/**
 * Options of a {@linkcode ManagedIdentityClient}: the identity plus how to reach it. All are optional; on Azure,
 * the identity is usually all there is to give.
 *
 * @example Every kind of option, against a fake endpoint
 * ```ts
 * import { ManagedIdentityClient, type ManagedIdentityClientOptions, TokenCache } from "@azmi/managed-identity";
 *
 * const options: ManagedIdentityClientOptions = {
 *   clientId: "00000000-0000-0000-0000-000000000001", // a user-assigned identity
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" }, // not the process's
 *   fetch: () => Response.json({ access_token: "t", expires_in: 3600 }), // a fake endpoint
 *   timeoutMs: 5_000,
 *   retry: { maxRetries: 2 },
 *   cache: new TokenCache(), // tokens of this client's own
 *   onEvent: (event) => console.log(event.type),
 * };
 * const client = new ManagedIdentityClient(options);
 * console.log(client.source); // "AppService"
 * ```
 */
export interface ManagedIdentityClientOptions extends IdentityOptions {
  /** An environment record used instead of the process environment (tests, platforms without `process`). */
  readonly env?: EnvRecord;
  /**
   * The `fetch` used for every request. By default, a local endpoint (IMDS, App Service, Azure Arc,
   * Cloud Shell, Azure ML) is reached over a connection of the client's own that no proxy in the
   * environment ever sees, Service Fabric over TLS pinned to its certificate, and Microsoft Entra
   * ID (workload identity) with `globalThis.fetch`, through the proxy the environment names. A
   * custom one takes over all transport security: it replaces both of those.
   */
  readonly fetch?: FetchLike;
  /** Each attempt's timeout in milliseconds. Default 15000. */
  readonly timeoutMs?: number;
  /**
   * `false` for a single attempt, or retry settings. The rules per source are in
   * `docs/retries.md`: by default 3 retries, IMDS with exponential backoff and 410 retried for 70 s,
   * the other sources after 1 s or the endpoint's `Retry-After` (capped at 60 s).
   */
  readonly retry?: false | RetryOptions;
  /** Client capabilities (such as `cp1`), sent to Service Fabric as `xms_cc`. */
  readonly clientCapabilities?: readonly string[];
  /** A cache of this client's own; by default all clients share one. */
  readonly cache?: TokenCache;
  /**
   * `false` to wait for IMDS under the full retry and timeout rules from the first request, for
   * a service on a VM that may start before IMDS is ready. By default (`true`), until IMDS has
   * answered once, a short probe goes first (the token request without `Metadata`, which IMDS
   * answers at once): no answer within 1 s, or a failed connection, ends the call at once with
   * `unavailable` (a {@linkcode CredentialUnavailableError}), and that absence is remembered for
   * 10 s. Other sources are never probed.
   */
  readonly imdsProbe?: boolean;
  /**
   * Called with what the caller cannot see otherwise: a background refresh that failed (the
   * cached token is still served), an `expires_on` that needed the `expires_in` fallback, a retry.
   */
  readonly onEvent?: ManagedIdentityEventListener;
}

/** After a failed background refresh, the next one waits this long. */
export const REFRESH_RETRY_MS = 30_000;

/** The default per-attempt timeout. */
export const DEFAULT_TIMEOUT_MS = 15_000;

// Arc sends at most a challenge and then the real request.
const MAX_STEPS = 2;

/** Removes one trailing `/.default` (suffix only); refuses an empty resource. */
export function normalizeResource(resource: string): string {
  const trimmed = typeof resource === "string" ? resource.trim() : "";
  const normalized = trimmed.endsWith("/.default") ? trimmed.slice(0, -"/.default".length) : trimmed;
  if (normalized === "") {
    throw new TypeError(`The resource must be a non-empty string: got ${JSON.stringify(resource)}`);
  }
  return normalized;
}

/**
 * Acquires tokens for Azure resources from the managed identity endpoint of the machine or
 * service the code runs on: IMDS, App Service (Functions, Container Apps), Azure Arc, Cloud
 * Shell, Service Fabric or Azure ML, or for an AKS pod from its workload identity (its
 * federated token exchanged at Microsoft Entra ID), detected once at construction.
 *
 * On Deno, give `--allow-env` for the variables listed in docs/permissions.md and `--allow-net` for the
 * endpoint (`169.254.169.254` for IMDS, the host of `IDENTITY_ENDPOINT` or `MSI_ENDPOINT`).
 *
 * @example System-assigned identity
 * ```ts ignore
 * import { ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient();
 * const { accessToken, expiresOn } = await client.acquireToken("https://vault.azure.net");
 * ```
 *
 * @example A user-assigned identity, against a fake endpoint
 * ```ts
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   clientId: "00000000-0000-0000-0000-000000000001",
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: "t", expires_in: 3600 }),
 *   cache: new TokenCache(),
 * });
 * const first = await client.acquireToken("https://vault.azure.net");
 * const second = await client.acquireToken("https://vault.azure.net");
 * console.log(client.source, first.fromCache, second.fromCache); // "AppService" false true
 * ```
 */
export class ManagedIdentityClient {
  /** The source detected at construction. */
  readonly source: Source;
  readonly #definition: SourceDefinition;
  readonly #identity: Identity;
  readonly #env: EnvReader;
  readonly #config: unknown;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #clientCapabilities: readonly string[];
  readonly #store: CacheStore;
  readonly #now: () => number;
  readonly #onEvent: ManagedIdentityEventListener | undefined;
  readonly #retry: RetryPolicy;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #targets = new Map<string, { readonly key: string; readonly resource: string }>();
  readonly #endpoint: URL;
  readonly #probe: boolean;

  /**
   * Creates a client and detects its source.
   *
   * @param options The identity (at most one of `clientId`, `objectId`, `resourceId`) and how to reach it.
   * @throws {TypeError} When more than one ID is given, or an ID is empty.
   * @throws {RangeError} When `timeoutMs` or a retry setting is out of range.
   * @throws {ManagedIdentityError} `unsupported_identity` when the source cannot serve a user-assigned
   *   identity of that kind; `invalid_configuration` when the environment is unusable.
   */
  constructor(options?: ManagedIdentityClientOptions) {
    if (options === undefined) options = {};
    const internal = internalOptions(options);
    const identity = parseIdentity(options);
    this.#env = envReader(options.env);
    this.source = detectSource(options.env, {
      platform: internal.platform,
      fileExists: internal.fileExists,
      clientId: identity.kind === "clientId" ? identity.value : undefined,
    });
    this.#definition = SOURCES[this.source];
    identityParameter(this.#definition, identity);
    // The identity the environment names (AZURE_CLIENT_ID for workload identity) is part of the
    // cache key like one the caller names: two clients of two client IDs never share a token.
    this.#identity = this.#definition.identityOf?.(identity, this.#env) ?? identity;
    // The endpoint is checked now (URL, no credentials, the host rule), not at the first request,
    // and is part of the cache key: clients of two endpoints share no tokens.
    this.#endpoint = readEndpoint(this.#definition, this.#env);
    this.#config = this.#definition.configure?.(this.#env, internal);
    this.#fetch = options.fetch ?? this.#definition.createFetch?.(this.#config) ??
      defaultFetch(this.source, this.#definition.endpoint.rule);
    this.#timeoutMs = numberOption("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS, 1, false, MAX_TIMER_MS);
    this.#clientCapabilities = (options.clientCapabilities ?? []).map((c) => c.trim()).filter((c) => c !== "");
    this.#store = cacheStore(options.cache ?? defaultCache);
    this.#now = internal.now ?? Date.now;
    this.#onEvent = options.onEvent;
    this.#retry = retryPolicy(options.retry);
    this.#sleep = internal.sleep ?? sleep;
    this.#random = internal.random ?? Math.random;
    this.#probe = this.#definition.probe === true && options.imdsProbe !== false;
  }

  /**
   * Returns a token for `resource`, from the cache while one is usable (until 5 minutes before
   * it expires), else from the endpoint.
   *
   * @param resource The resource, such as `https://vault.azure.net`; a trailing `/.default` is removed.
   * @param options `forceRefresh` and `claims` skip the cache; `signal` ends the call.
   * @returns The token, its expiry and whether it came from the cache.
   * @throws {TypeError} When `resource` is empty.
   * @throws {ManagedIdentityError} With `code` `unavailable`, `request_failed`, `invalid_response`,
   *   `timeout`, `aborted` or `invalid_configuration`; on Service Fabric `certificate_mismatch`; on
   *   Azure Arc `identity_mismatch` and the `arc_*` codes of a refused challenge or key file.
   *
   * @example Force a new token
   * ```ts ignore
   * const fresh = await client.acquireToken("https://storage.azure.com", { forceRefresh: true });
   * ```
   */
  acquireToken(resource: string, options?: AcquireTokenOptions): Promise<TokenResult> {
    if (options === undefined) options = {};
    // Not async, so that a cache hit costs a lookup and nothing more; errors still reject.
    try {
      const target = this.#target(resource);
      const { signal } = options;
      if (signal?.aborted) throw abortedError(this.source, signal);
      const claims = options.claims?.trim() ? options.claims : undefined;
      const now = this.#now();
      const cached = this.#store.get(target.key, now);
      if (cached && !options.forceRefresh && !claims) {
        // Past the refresh time: serve the cached token now, refresh once in the background.
        if (cached.refreshOn !== undefined && now >= cached.refreshOn) this.#refresh(target.key, target.resource);
        return Promise.resolve(this.#result(cached, true));
      }
      return this.#acquireMiss(target.key, target.resource, signal, claims, cached);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The normalised resource and cache key of a resource string, remembered for the hot path. */
  #target(resource: string): { readonly key: string; readonly resource: string } {
    let target = this.#targets.get(resource);
    if (!target) {
      const normalized = normalizeResource(resource);
      target = { key: cacheKey(this.source, this.#identity, normalized, this.#endpoint.href), resource: normalized };
      if (this.#targets.size >= 256) this.#targets.clear();
      this.#targets.set(resource, target);
    }
    return target;
  }

  async #acquireMiss(
    key: string,
    normalized: string,
    signal: AbortSignal | undefined,
    claims: string | undefined,
    cached: CachedToken | undefined,
  ): Promise<TokenResult> {
    // Claims are the caller's own (and may revoke the cached token): never shared.
    if (claims) return this.#result(await this.#acquireFresh(key, normalized, signal, claims, cached), false);
    const flights = this.#store.flights;
    const shared = flight(flights, key, (own) => this.#acquireFresh(key, normalized, own));
    try {
      return this.#result(await join(flights, key, shared, signal), false);
    } catch (error) {
      throw signal?.aborted ? abortedError(this.source, signal) : error;
    }
  }

  /**
   * The Azure SDK's `TokenCredential.getToken`, so the client can be passed to any Azure SDK
   * client: `new SecretClient(url, new ManagedIdentityClient())`.
   *
   * @param scopes One scope, such as `https://vault.azure.net/.default`.
   * @param options `abortSignal` ends the call; `claims` skips the cache.
   * @returns The token in the Azure SDK's shape.
   * @throws {TypeError} When more or fewer than one scope is given.
   * @throws {ManagedIdentityError} As {@linkcode ManagedIdentityClient.acquireToken} does.
   *
   * @example As an Azure SDK credential
   * ```ts ignore
   * const { token, expiresOnTimestamp } = await client.getToken("https://vault.azure.net/.default");
   * ```
   */
  async getToken(scopes: string | readonly string[], options?: GetTokenOptions): Promise<AccessToken> {
    if (options === undefined) options = {};
    const list = typeof scopes === "string" ? [scopes] : scopes;
    if (list.length !== 1) {
      throw new TypeError(`Managed identity takes exactly one scope: got ${list.length}`);
    }
    const result = await this.acquireToken(list[0]!, {
      signal: options.abortSignal,
      claims: options.claims,
    });
    return {
      token: result.accessToken,
      expiresOnTimestamp: result.expiresOn.getTime(),
      ...(result.refreshOn ? { refreshAfterTimestamp: result.refreshOn.getTime() } : {}),
      tokenType: "Bearer",
    };
  }

  /**
   * Starts one background refresh for `key` unless a request for it is in flight or the last one
   * ended less than REFRESH_RETRY_MS ago. Whatever it yields (a failure, a token too short-lived
   * to cache, one due for refresh at once), the next waits that long, so no endpoint behaviour
   * makes cache hits a request storm (IMDS throttles at about 5 requests per second).
   */
  #refresh(key: string, resource: string): void {
    const store = this.#store;
    if (!store.mayRefresh(key, this.#now())) return;
    const hold = () => store.postponeRefresh(key, this.#now() + REFRESH_RETRY_MS);
    flight(store.flights, key, (own) => this.#acquireFresh(key, resource, own), true).promise.then(
      hold,
      (error: ManagedIdentityError) => {
        // The cached token stays in use.
        hold();
        emit(this.#onEvent, { type: "refresh_failed", source: this.source, resource, error });
      },
    );
  }

  /** Requests a token and caches it. */
  async #acquireFresh(
    key: string,
    resource: string,
    signal: AbortSignal | undefined,
    claims?: string,
    cached?: CachedToken,
  ): Promise<CachedToken> {
    // Not stored over an entry written after this request started (a claims token, say).
    const since = this.#store.stamp;
    const token = await this.#request(resource, claims, cached, signal);
    this.#store.set(key, token, this.#now(), since);
    return token;
  }

  async #request(
    resource: string,
    claims: string | undefined,
    cached: CachedToken | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CachedToken> {
    const definition = this.#definition;
    let spec: RequestSpec = await definition.buildRequest({
      resource,
      identity: this.#identity,
      endpoint: new URL(this.#endpoint),
      env: this.#env,
      config: this.#config,
      clientCapabilities: this.#clientCapabilities,
      claims,
      cachedToken: claims && cached?.accessToken,
      now: this.#now(),
      signal,
      timeoutMs: this.#timeoutMs,
    });
    // Until IMDS has answered once, a short probe goes first; it loads only then.
    const endpoint = endpointName(spec.url);
    const contacts = this.#store.contacts(this.#fetch);
    const contact = contacts.get(endpoint);
    if (this.#probe && !(contact && "answered" in contact)) {
      const { firstContact, PROBE_TIMEOUT_MS } = await import("./first_contact.ts");
      const timeoutMs = Math.min(this.#timeoutMs, PROBE_TIMEOUT_MS);
      await firstContact(spec, {
        source: this.source,
        endpoint,
        contacts,
        now: this.#now,
        timeoutMs,
        send: (probe) => sendOnce(probe, { fetch: this.#fetch, source: this.source, timeoutMs }),
        wait: (probing) => signal ? raceAbort(probing, signal) : probing,
      }).catch((error) => {
        throw signal?.aborted ? abortedError(this.source, signal, endpoint) : error;
      });
    }
    for (let step = 1;; step++) {
      const reply = await send(spec, {
        fetch: this.#fetch,
        source: this.source,
        timeoutMs: this.#timeoutMs,
        signal,
        rules: definition.retry,
        policy: this.#retry,
        now: this.#now,
        sleep: this.#sleep,
        random: this.#random,
        throttled: this.#store.throttled,
        onRetry: (attempt, delayMs, reason) =>
          emit(this.#onEvent, { type: "retry", source: this.source, attempt, delayMs, reason }),
      });
      const context = {
        source: this.source,
        endpoint: endpointName(spec.url),
        identity: this.#identity,
        request: spec,
        secrets: requestSecrets(spec),
        now: this.#now(),
        config: this.#config,
        signal,
        timeoutMs: this.#timeoutMs,
      };
      const outcome: ParseOutcome = await (definition.parseReply ?? parseStandardReply)(reply, context);
      if ("token" in outcome) {
        const { token } = outcome;
        if (token.expiresOnFallback) {
          emit(this.#onEvent, {
            type: "expires_on_fallback",
            source: this.source,
            resource,
            detail: token.expiresOnFallback,
          });
        }
        return {
          accessToken: token.accessToken,
          tokenType: token.tokenType,
          expiresOn: token.expiresOn,
          refreshOn: token.refreshOn,
          resource,
          source: this.source,
        };
      }
      if (step >= MAX_STEPS) {
        throw new ManagedIdentityError(
          "invalid_response",
          `Cannot acquire token from "${this.source}": the endpoint asked for more than ${MAX_STEPS} requests`,
          { source: this.source, endpoint: context.endpoint },
        );
      }
      spec = outcome.next;
    }
  }

  /** A new result object each time (with its own Dates), so no caller can change another's. */
  #result(token: CachedToken, fromCache: boolean): TokenResult {
    const result: { -readonly [K in keyof TokenResult]: TokenResult[K] } = {
      accessToken: token.accessToken,
      tokenType: token.tokenType,
      expiresOn: new Date(token.expiresOn),
      resource: token.resource,
      source: token.source,
      fromCache,
    };
    if (token.refreshOn !== undefined) result.refreshOn = new Date(token.refreshOn);
    return result;
  }
}
