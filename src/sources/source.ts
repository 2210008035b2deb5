/**
 * What every source module provides: a pure request builder and a response parser, plus the
 * identity parameters it accepts. The client composes these with the cache and the transport;
 * a source never calls `fetch` itself.
 * @module
 */

import type { EnvReader } from "../env.ts";
import { ManagedIdentityError } from "../errors.ts";
import type { Identity, IdentityKind } from "../identity.ts";
import { type HttpReply, type ParsedToken, parseTokenBody, type ReplyContext } from "../response.ts";
import type { InternalOptions } from "../internal.ts";
import type { FetchLike, Source } from "../types.ts";

export type { HttpReply };

/** An HTTP request, described; the transport turns it into a `Request` on each attempt. */
export interface RequestSpec {
  readonly method: "GET" | "POST";
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Secret values the request carries outside its secret headers (a client assertion in the body). */
  readonly secrets?: readonly string[];
  /** `false` when this request must never be retried (Arc's challenge). */
  readonly retry?: false;
}

/** Everything a source needs to build a request. */
export interface BuildContext {
  /** The resource, without a trailing `/.default`. */
  readonly resource: string;
  readonly identity: Identity;
  /**
   * The endpoint, read and checked at construction (a copy per request): the cache key is made
   * of it, so no request may go elsewhere when the environment changes later.
   */
  readonly endpoint: URL;
  readonly env: EnvReader;
  /** What `configure` returned at construction. */
  readonly config: unknown;
  readonly claims?: string;
  readonly clientCapabilities: readonly string[];
  /** The cached access token being replaced, for sources that revoke it (Service Fabric). */
  readonly cachedToken?: string;
  /** The client's clock, in milliseconds since the epoch. */
  readonly now: number;
  /** Ends any work building the request does (reading a token file), with `timeoutMs`. */
  readonly signal?: AbortSignal;
  /** The client's per-attempt timeout, which also bounds the request's own file work. */
  readonly timeoutMs: number;
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

/** Which retry rules apply (docs/retries.md; `servicefabric` per Microsoft's Service Fabric page, `entra` for Entra ID). */
export type RetryRules = "imds" | "standard" | "servicefabric" | "entra";

/** How a source accepts user-assigned identities. */
export interface IdentitySupport {
  /** The query parameter name for each accepted kind. */
  readonly parameters: Partial<Record<IdentityKind, string>>;
  /** Why the other kinds are refused. */
  readonly refusal?: string;
}

/** The variable that names a source's endpoint. */
export interface EndpointVariable {
  readonly name: string;
  /** The endpoint when the variable is unset. */
  readonly fallback?: string;
  /** How its host is checked; `local` by default. */
  readonly rule?: HostRule;
  /** Turns the checked URL into the token URL (workload identity adds the tenant), or throws. */
  readonly resolve?: (url: URL, env: EnvReader) => URL;
}

/** One managed identity source. */
export interface SourceDefinition {
  readonly name: Source;
  /** Where the endpoint comes from: read and checked once, at construction. */
  readonly endpoint: EndpointVariable;
  /**
   * `true` when the source may simply not exist here (IMDS, assumed off Azure too): its first
   * contact is a short probe (src/first_contact.ts) unless the client's `imdsProbe` is `false`.
   */
  readonly probe?: true;
  readonly retry: RetryRules;
  readonly identities: IdentitySupport;
  /**
   * The identity the source really serves, when the environment names it rather than the caller
   * (workload identity's `AZURE_CLIENT_ID`): used for requests and the cache key alike.
   */
  readonly identityOf?: (identity: Identity, env: EnvReader) => Identity;
  /** Runs once at construction: captures and validates what must not change later. */
  readonly configure?: (env: EnvReader, internal: InternalOptions) => unknown;
  /** The transport's `fetch` for this source when the caller gives none (Service Fabric pins TLS). */
  readonly createFetch?: (config: unknown) => FetchLike;
  /** Turns (resource, identity, env) into a request. Pure (async only for Web Crypto hashing). */
  readonly buildRequest: (context: BuildContext) => RequestSpec | Promise<RequestSpec>;
  /** Turns a response into a token or a next request; defaults to {@linkcode parseStandardReply}. */
  readonly parseReply?: (reply: HttpReply, context: ParseContext) => Promise<ParseOutcome>;
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

/**
 * Whether `url` names a host on this machine or its private network, as an IP literal or
 * `localhost` (after WHATWG parsing, so `2130706433` and `127.1` are 127.0.0.1): loopback
 * (127.0.0.0/8, `[::1]`), link-local (169.254.0.0/16, `[fe80::]/10`) or private (10.0.0.0/8,
 * 172.16.0.0/12, 192.168.0.0/16, `[fc00::]/7`). Never a DNS name other than `localhost`, never
 * 0.0.0.0 or a public address. Private ranges are allowed, beyond msal-node's loopback and
 * link-local rule (msal-js PR 8682), because real platforms use them: Linux Functions and App
 * Service on `172.16.x.x` or `169.254.x.x` hosts, Container Instances on `10.x.x.x`.
 */
export function isLocalHost(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  if (host === "localhost") return true;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host)?.slice(1).map(Number);
  if (v4) {
    const [a, b] = v4 as [number, number];
    return a === 127 || a === 10 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b < 32) ||
      (a === 192 && b === 168);
  }
  // IPv6 literals, serialised by URL in their shortest form: ::1, fe80::/10, fc00::/7.
  return host === "[::1]" || /^\[(fe[89ab][0-9a-f]|f[cd][0-9a-f]{2}):/.test(host);
}

/**
 * How an endpoint variable's host is checked: on this machine or its network (`local`); anywhere
 * (`pinned`, Service Fabric, whose certificate is pinned); or (`authority`, Microsoft Entra ID's
 * host) anywhere over `https:`, and over plain `http:` only on loopback, for emulators.
 */
export type HostRule = "local" | "pinned" | "authority";

/** Whether `url` names this machine itself: `localhost`, 127.0.0.0/8 or `[::1]`. */
export function isLoopback(url: URL): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i.test(url.hostname);
}

/**
 * Reads an endpoint variable as an absolute http(s) URL, refusing credentials in it (a runtime
 * would send them as `Authorization: Basic`) and, under the `local` rule, a host that is not on
 * this machine or its private network ({@linkcode isLocalHost}), so that a secret header is never
 * sent elsewhere. The value is quoted in errors without any user information it holds
 * ({@linkcode withoutUserinfo}).
 *
 * @throws {ManagedIdentityError} `invalid_configuration`, naming the variable and the rule.
 */
export function endpointUrl(source: Source, name: string, value: string | undefined, rule: HostRule = "local"): URL {
  const url = value === undefined ? null : URL.parse(value);
  const shown = value === undefined ? "nothing" : `"${withoutUserinfo(value)}"`;
  const refuse = (why: string) =>
    new ManagedIdentityError("invalid_configuration", `${name} must be ${why}: got ${shown}`, { source });
  if (url?.protocol !== "http:" && url?.protocol !== "https:") throw refuse("an http: or https: URL");
  if (url.username !== "" || url.password !== "") throw refuse("a URL without user:password@");
  if (rule === "authority" && url.protocol === "http:" && !isLoopback(url)) {
    throw refuse("an https: URL (plain http: only for a loopback host, such as an emulator)");
  }
  if (rule === "local" && !isLocalHost(url)) {
    throw refuse(
      "a URL whose host is on this machine or its private network (localhost, or a loopback, link-local or " +
        "private IP address), so that its secret is never sent elsewhere",
    );
  }
  return url;
}

// A URL's credentials, wherever a URL parser (WHATWG) could find them, and more: after the blanks
// it strips, a scheme and the slashes or backslashes after it (an http: URL needs none, tabs and
// line breaks it removes), everything up to the value's last "@". An endpoint has no "@" of its
// own, and a password holding "/", "?" or "#" makes a URL no parser reads, which must not show it
// either. `(?=(x*))\1` is an atomic `x*`, so that no run is rescanned from each of its positions:
// one pass and one step back, linear.
const USERINFO = /^(?=([\0- ]*))\1((?:[a-z][\w+.\-\t\n\r]*:)?)(?=([/\\\t\n\r]*))\3[\s\S]*@/i;

/**
 * `value` with a URL's `user:password@` replaced by `[redacted]@`: in every notation a URL parser
 * reads as credentials (`http:\\user:pw@host`, `http:user:pw@host`, tabs inside) and in a value
 * that no parser reads (`http://user:pa/ss@host`), everything after the scheme up to the last
 * `@` goes. A value without `@` is unchanged.
 */
export function withoutUserinfo(value: string): string {
  return value.replace(USERINFO, "$1$2$3[redacted]@");
}

/** The endpoint that a source's variable names now, checked by {@linkcode endpointUrl}. */
export function readEndpoint(source: SourceDefinition, env: EnvReader): URL {
  const { name, fallback, rule, resolve } = source.endpoint;
  const url = endpointUrl(source.name, name, env(name) ?? fallback, rule);
  return resolve ? resolve(url, env) : url;
}

/** The endpoint's origin and path, never its query string (which may carry parameters). */
export function endpointName(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * 200 (and 202, as MSAL Go accepts) carries a token; anything else is an HTTP error, made by
 * `src/failure.ts`, which loads on the first failure only.
 */
export async function parseStandardReply(reply: HttpReply, context: ParseContext): Promise<ParseOutcome> {
  if (reply.status !== 200 && reply.status !== 202) throw (await import("../failure.ts")).httpError(reply, context);
  return { token: await parseTokenBody(reply.body, context.now, context) };
}

/** Header names whose values are secrets, wherever an endpoint echoes them. */
export const SECRET_HEADERS: readonly string[] = ["x-identity-header", "secret", "authorization"];

/**
 * The secret values a request carries in its headers: each secret header's value, trimmed,
 * and for `<scheme> <credential>` the credential alone (an Arc key may end in a newline, which
 * the Fetch standard strips before sending, so the trimmed forms are what an endpoint echoes).
 */
export function secretHeaderValues(headers: Readonly<Record<string, string>>): string[] {
  const values: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADERS.includes(name.toLowerCase())) continue;
    values.push(value, value.trim());
    const credential = /^\S+\s+([\s\S]+)$/.exec(value.trim())?.[1]?.trim();
    if (credential) values.push(credential);
  }
  return values;
}

/** Every secret value a request carries: its secret headers' and its own `secrets`. */
export function requestSecrets(spec: RequestSpec): string[] {
  return [...secretHeaderValues(spec.headers), ...(spec.secrets ?? [])];
}
