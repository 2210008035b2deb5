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

/** An environment snapshot: variable name to value. An empty value counts as unset. */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

/**
 * The narrow `fetch` the client needs: one `Request` in, one `Response` out.
 * A `(request) => Response` handler is enough, which is how tests fake an endpoint.
 */
export type FetchLike = (request: Request) => Response | Promise<Response>;

/** A token as the client returns it from {@linkcode ManagedIdentityClient.acquireToken}. */
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

/** Options of one {@linkcode ManagedIdentityClient.acquireToken} call. */
export interface AcquireTokenOptions {
  /** Skip the cache and ask the endpoint for a new token. */
  readonly forceRefresh?: boolean;
  /** A claims challenge from a resource. A non-empty value skips the cache. */
  readonly claims?: string;
  /** Ends this call's wait with an `aborted` error. */
  readonly signal?: AbortSignal;
}

/** The token shape of the Azure SDK for JavaScript's `TokenCredential`. */
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

/** Options of {@linkcode ManagedIdentityClient.getToken}, a subset of the Azure SDK's `GetTokenOptions`. */
export interface GetTokenOptions {
  /** Ends this call's wait with an `aborted` error. */
  readonly abortSignal?: AbortSignal;
  /** A claims challenge from a resource. A non-empty value skips the cache. */
  readonly claims?: string;
}
