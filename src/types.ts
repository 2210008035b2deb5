/**
 * Shared public types. Everything here is re-exported from `mod.ts`.
 * @module
 */

/** Where a managed identity token comes from, as decided by {@linkcode detectSource}. */
export type Source =
  | "WorkloadIdentity"
  | "AppService"
  | "AzureArc"
  | "AzureML"
  | "CloudShell"
  | "DefaultToIMDS"
  | "ServiceFabric";

/**
 * An environment snapshot: variable name to value. An empty value counts as unset.
 *
 * @example Detect from a snapshot instead of the process environment
 * ```ts
 * import { detectSource, type EnvRecord } from "@azmi/managed-identity";
 *
 * const env: EnvRecord = { MSI_ENDPOINT: "http://localhost:50342/oauth2/token", MSI_SECRET: "" };
 * console.log(detectSource(env)); // "CloudShell": the empty MSI_SECRET counts as unset
 * ```
 */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

/**
 * The narrow `fetch` the client needs: one `Request` in, one `Response` out.
 * A `(request) => Response` handler is enough, which is how tests fake an endpoint.
 *
 * @example A fake App Service endpoint
 * ```ts
 * import { type FetchLike, ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * // Answers with a token only when the request carries the identity header.
 * const endpoint: FetchLike = (request) =>
 *   request.headers.get("X-IDENTITY-HEADER") === "h"
 *     ? Response.json({ access_token: "t", expires_in: 3600 })
 *     : new Response(null, { status: 401 });
 *
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: endpoint,
 *   cache: new TokenCache(),
 * });
 * const { tokenType } = await client.acquireToken("https://vault.azure.net");
 * console.log(tokenType); // "Bearer"
 * ```
 */
export type FetchLike = (request: Request) => Response | Promise<Response>;

/**
 * A token as the client returns it from {@linkcode ManagedIdentityClient.acquireToken}.
 *
 * @example Read a result
 * ```ts
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: "t", expires_in: 8 * 3600 }),
 *   cache: new TokenCache(),
 * });
 * const result = await client.acquireToken("https://vault.azure.net/.default");
 * console.log(result.resource); // "https://vault.azure.net": the scope suffix is removed
 * console.log(result.source, result.tokenType, result.fromCache); // "AppService" "Bearer" false
 * // A token living over 2 hours is refreshed in the background from half its lifetime on.
 * console.log(result.refreshOn !== undefined && result.refreshOn < result.expiresOn); // true
 * ```
 */
export interface TokenResult {
  /** The access token. Treat it as a secret: never log it. */
  readonly accessToken: string;
  /** The token type the endpoint gave, `Bearer` when it gave none. */
  readonly tokenType: string;
  /** When the token expires. */
  readonly expiresOn: Date;
  /** When the client will start refreshing the token, when the token has such a time. */
  readonly refreshOn?: Date;
  /** The resource the token is for (the request's resource, without `/.default`). */
  readonly resource: string;
  /** The source that issued the token. */
  readonly source: Source;
  /** `true` when the token came from the cache without a request. */
  readonly fromCache: boolean;
}

/**
 * Options of one {@linkcode ManagedIdentityClient.acquireToken} call.
 *
 * @example Skip the cache, or end a call
 * ```ts
 * import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "@azmi/managed-identity";
 *
 * let requests = 0;
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: `t${++requests}`, expires_in: 3600 }),
 *   cache: new TokenCache(),
 * });
 * await client.acquireToken("https://vault.azure.net");
 * const fresh = await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
 * console.log(fresh.fromCache, requests); // false 2
 *
 * const controller = new AbortController();
 * controller.abort();
 * try {
 *   await client.acquireToken("https://vault.azure.net", { signal: controller.signal });
 * } catch (error) {
 *   if (error instanceof ManagedIdentityError) console.log(error.code); // "aborted"
 * }
 * ```
 */
export interface AcquireTokenOptions {
  /** Skip the cache and ask the endpoint for a new token. */
  readonly forceRefresh?: boolean;
  /** A claims challenge from a resource. A non-empty value skips the cache. */
  readonly claims?: string;
  /** Ends this call's wait with an `aborted` error. */
  readonly signal?: AbortSignal;
}

/**
 * The token shape of the Azure SDK for JavaScript's `TokenCredential`.
 *
 * @example Get a token as an Azure SDK credential would
 * ```ts
 * import { type AccessToken, ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: "t", expires_in: 3600 }),
 *   cache: new TokenCache(),
 * });
 * const token: AccessToken = await client.getToken("https://vault.azure.net/.default");
 * console.log(token.tokenType, token.expiresOnTimestamp > Date.now()); // "Bearer" true
 * ```
 */
export interface AccessToken {
  /** The access token. Treat it as a secret: never log it. */
  readonly token: string;
  /** When the token expires, in milliseconds since the Unix epoch. */
  readonly expiresOnTimestamp: number;
  /** When the token should be refreshed, in milliseconds since the Unix epoch. */
  readonly refreshAfterTimestamp?: number;
  /** Always `Bearer`. */
  readonly tokenType: "Bearer";
}

/**
 * Options of {@linkcode ManagedIdentityClient.getToken}, a subset of the Azure SDK's `GetTokenOptions`.
 *
 * @example End a call with the Azure SDK's option name
 * ```ts
 * import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: "t", expires_in: 3600 }),
 *   cache: new TokenCache(),
 * });
 * const controller = new AbortController();
 * controller.abort();
 * await client.getToken("https://vault.azure.net/.default", { abortSignal: controller.signal }).catch((error) => {
 *   if (error instanceof ManagedIdentityError) console.log(error.code); // "aborted"
 * });
 * ```
 */
export interface GetTokenOptions {
  /** Ends this call's wait with an `aborted` error. */
  readonly abortSignal?: AbortSignal;
  /** A claims challenge from a resource. A non-empty value skips the cache. */
  readonly claims?: string;
}
