/**
 * What every source module provides: a pure request builder and a response parser, plus the
 * identity parameters it accepts. The client composes these with the cache and the transport;
 * a source never calls `fetch` itself.
 * @module
 */

import type { EnvReader } from "../env.ts";
import { ManagedIdentityError } from "../errors.ts";
import type { Identity, IdentityKind } from "../identity.ts";
import { type ParsedToken, parseErrorBody, parseTokenBody, type ReplyContext } from "../response.ts";
import type { InternalOptions } from "../internal.ts";
import { scrub } from "../redact.ts";
import type { FetchLike, Source } from "../types.ts";

/** An HTTP request, described; the transport turns it into a `Request` on each attempt. */
export interface RequestSpec {
  readonly method: "GET" | "POST";
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** `false` when this request must never be retried (Arc's challenge). */
  readonly retry?: false;
}

/** An HTTP response with its body already read (under the size cap). */
export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/** Everything a source needs to build a request. */
export interface BuildContext {
  /** The resource, without a trailing `/.default`. */
  readonly resource: string;
  readonly identity: Identity;
  readonly env: EnvReader;
  /** What `configure` returned at construction. */
  readonly config: unknown;
  readonly claims?: string;
  readonly clientCapabilities: readonly string[];
  /** The cached access token being replaced, for sources that revoke it (Service Fabric). */
  readonly cachedToken?: string;
}

/** A parse step's result: a token, or one more request to make (Arc's challenge). */
export type ParseOutcome = { readonly token: ParsedToken } | { readonly next: RequestSpec };

/** Everything a source needs to read a response. */
export interface ParseContext extends ReplyContext {
  readonly identity: Identity;
  readonly request: RequestSpec;
  readonly now: number;
  readonly config: unknown;
  /** The caller's (or the shared flight's) signal: ends any work a parse step does (Arc's key file read). */
  readonly signal?: AbortSignal;
  /** The client's per-attempt timeout, which also bounds a parse step's own work. */
  readonly timeoutMs: number;
}

/** Which retry rules apply (PROTOCOL.md section 7). */
export type RetryRules = "imds" | "standard";

/** How a source accepts user-assigned identities. */
export interface IdentitySupport {
  /** The query parameter name for each accepted kind. */
  readonly parameters: Partial<Record<IdentityKind, string>>;
  /** Why the other kinds are refused. */
  readonly refusal?: string;
}

/** One managed identity source. */
export interface SourceDefinition {
  readonly name: Source;
  readonly retry: RetryRules;
  readonly identities: IdentitySupport;
  /** Runs once at construction: captures and validates what must not change later. */
  readonly configure?: (env: EnvReader, internal: InternalOptions) => unknown;
  /** The transport's `fetch` for this source when the caller gives none (Service Fabric pins TLS). */
  readonly createFetch?: (config: unknown) => FetchLike;
  /** Turns (resource, identity, env) into a request. Pure (async only for Web Crypto hashing). */
  readonly buildRequest: (context: BuildContext) => RequestSpec | Promise<RequestSpec>;
  /** Turns a response into a token or a next request; defaults to {@linkcode parseStandardReply}. */
  readonly parseReply?: (reply: HttpReply, context: ParseContext) => ParseOutcome | Promise<ParseOutcome>;
}

/** The query parameter for the identity, or `undefined` for system-assigned; refuses unsupported kinds. */
export function identityParameter(source: SourceDefinition, identity: Identity): string | undefined {
  if (identity.kind === "system") return undefined;
  const name = source.identities.parameters[identity.kind];
  if (name === undefined) {
    throw new ManagedIdentityError(
      "unsupported_identity",
      `Cannot use a user-assigned identity by ${identity.kind} with "${source.name}": ${source.identities.refusal}`,
      { source: source.name },
    );
  }
  return name;
}

/** The identity as a query parameter (`{}` for system-assigned); refuses kinds the source does not accept. */
export function identityQuery(source: SourceDefinition, identity: Identity): Record<string, string> {
  const name = identityParameter(source, identity);
  return name && identity.kind !== "system" ? { [name]: identity.value } : {};
}

/** Appends query parameters to an endpoint URL, keeping the URL's own query string. */
export function withQuery(endpoint: string | URL, params: Record<string, string | undefined>): URL {
  const url = new URL(endpoint);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.append(name, value);
  }
  return url;
}

/** Reads an endpoint variable as an absolute http(s) URL. */
export function endpointUrl(source: Source, name: string, value: string | undefined): URL {
  const url = value === undefined ? null : URL.parse(value);
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new ManagedIdentityError(
      "invalid_configuration",
      `${name} must be an http: or https: URL: got ${value === undefined ? "nothing" : `"${value}"`}`,
      { source },
    );
  }
  return url;
}

/** The endpoint's origin and path, never its query string (which may carry parameters). */
export function endpointName(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** The error for an HTTP status that is not success, with what the body said. */
export function httpError(reply: HttpReply, context: ReplyContext): ManagedIdentityError {
  // An error body that echoes a secret header must not carry it into an error.
  const said = parseErrorBody(scrub(reply.body, context.secrets ?? []));
  const correlationId = said.correlationId ?? reply.headers.get("x-ms-correlation-id") ??
    reply.headers.get("x-ms-request-id") ?? undefined;
  // Docker Desktop answers IMDS with 403 "...unreachable...": there is no managed identity here.
  const unreachable = reply.status === 403 && /unreachable/i.test(reply.body);
  const detail = [said.error, said.errorDescription].filter(Boolean).join(": ");
  return new ManagedIdentityError(
    unreachable ? "unavailable" : "request_failed",
    `Cannot acquire token from "${context.source}": endpoint answered ${reply.status}${detail ? ` (${detail})` : ""}`,
    {
      source: context.source,
      status: reply.status,
      endpoint: context.endpoint,
      ...said,
      correlationId,
    },
  );
}

/** 200 (and 202, as MSAL Go accepts) carries a token; anything else is an HTTP error. */
export function parseStandardReply(reply: HttpReply, context: ParseContext): ParseOutcome {
  if (reply.status !== 200 && reply.status !== 202) throw httpError(reply, context);
  return { token: parseTokenBody(reply.body, context.now, context) };
}
