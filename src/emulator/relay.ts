/**
 * The relay: real tokens from a {@linkcode TokenOrigin} (the developer's az or azd sign-in, a
 * service principal) kept and shared for serving over a managed identity protocol
 * (docs/relay.md). Tokens are kept in memory only, per resource, until 5 minutes before they
 * expire; one origin call per resource at a time, however many clients ask (single flight); a
 * failed call is not kept, so the next request tries again; an origin that does not answer is
 * cut by a timeout. What an origin returns is checked as hostile: a token must be printable
 * ASCII without spaces, of bounded length, and expire in the future and within a year.
 * @module
 */

import { EXPIRY_MARGIN_MS } from "../cache.ts";
import { MAX_LIFETIME_MS } from "../response.ts";
import { endpointText, visible } from "../redact.ts";
import { flight, type Flights, join } from "../flight.ts";
import { OriginError, type OriginFailure, type OriginToken, type TokenOrigin } from "./origin.ts";

/** The margin before expiry at which a kept token is fetched again: 5 minutes, the client's cache's own margin. */
export const RELAY_MARGIN_MS: number = EXPIRY_MARGIN_MS;

/** How long an origin call may take before the waiting clients get a `timeout` error: 30 s. */
export const RELAY_TIMEOUT_MS = 30_000;

/** The most resources whose tokens are kept at once; the oldest is dropped to make room. */
export const RELAY_MAX_RESOURCES = 100;

/** The longest access token served, in characters: user tokens with many groups run to a few KB. */
export const RELAY_MAX_TOKEN_LENGTH = 32_768;

/** The most distinct user-assigned IDs reported through `onIdentity`; later ones are served but not reported. */
export const RELAY_MAX_REPORTED_IDS = 1_000;

/**
 * What an access token the relay serves may hold: JWTs (base64url and dots) or other opaque
 * printable ASCII; no space, no control character, nothing a header or a terminal could be fooled
 * by. The sign-in origins (src/cli/sign_in/output.ts) check their tools' tokens by it too.
 */
export const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/** A user-assigned identity a request named, which the relay serves the developer's token for. */
export interface RelayedIdentity {
  /** The query parameter that named it: `client_id`, `object_id`, `principal_id`, `mi_res_id` or `msi_res_id`. */
  readonly parameter: string;
  /**
   * The ID as the client sent it, safe to print: control and format characters escaped
   * (`visible()`), at most 256 characters (then `...`).
   */
  readonly id: string;
}

/** Options of {@linkcode createRelay}. */
export interface RelayOptions {
  /** How long one origin call may take, in milliseconds. Default {@linkcode RELAY_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** The clock, in milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Called once for each distinct user-assigned ID a request names (up to
   * {@linkcode RELAY_MAX_REPORTED_IDS}): the request is served the origin's token, the
   * developer's own, so local code runs as the developer. What it throws is ignored.
   */
  readonly onIdentity?: (identity: RelayedIdentity) => void;
}

/** An origin wrapped for serving. */
export interface Relay {
  /** The origin's name (`az`, `azd`, `service principal`). */
  readonly name: string;
  /**
   * A token for `resource` (trimmed, one trailing `/.default` cut): the kept one while it is
   * more than 5 minutes from expiry, else the one call in flight for it, else a new call.
   * Rejects with an {@linkcode OriginError} whose message is safe to send to a client.
   */
  token(resource: string): Promise<OriginToken>;
  /** Reports a user-assigned ID a request named, once per distinct ID. */
  named(parameter: string, id: string): void;
  /**
   * Drops every kept token and stops every origin call in flight: the origin's signal aborts
   * (a tool is killed) and the clients waiting on the call get a `failed` error at once.
   */
  clear(): void;
}

/**
 * The key a resource is kept under: trimmed, one trailing `/.default` cut, as the client's
 * `normalizeResource()` does. A trailing slash is kept: `https://vault.azure.net/` is another
 * key than `https://vault.azure.net`, because Entra puts the identifier as asked for in a v1
 * token's `aud` and some APIs compare `aud` exactly (docs/relay.md).
 */
export function relayResource(resource: string): string {
  const trimmed = resource.trim();
  return trimmed.endsWith("/.default") ? trimmed.slice(0, -"/.default".length) : trimmed;
}

/** The origin's answer checked: a token the relay may serve, or the reason it may not. */
function checked(value: unknown, now: number): OriginToken | string {
  if (typeof value !== "object" || value === null) return "is not a token";
  const { accessToken, expiresOn } = value as Partial<Record<keyof OriginToken, unknown>>;
  if (typeof accessToken !== "string" || accessToken === "") return "has no access token";
  if (accessToken.length > RELAY_MAX_TOKEN_LENGTH) {
    return `has an access token longer than ${RELAY_MAX_TOKEN_LENGTH} characters`;
  }
  if (!TOKEN_TEXT.test(accessToken)) return "has an access token with spaces, control or non-ASCII characters";
  if (typeof expiresOn !== "number" || !Number.isFinite(expiresOn)) return "has no finite expiry";
  const ms = expiresOn * 1000;
  if (ms <= now) return "has a token that has already expired";
  if (ms - now > MAX_LIFETIME_MS) return "has a token that expires more than a year ahead";
  return { accessToken, expiresOn: Math.floor(expiresOn) };
}

/**
 * Wraps an origin for serving: a kept token per resource until 5 minutes before its expiry,
 * one call per resource at a time, failures not kept, a timeout on each call.
 *
 * @example
 * ```ts
 * import { createRelay } from "@azmi/managed-identity/emulator";
 *
 * const relay = createRelay({
 *   name: "example",
 *   token: () => Promise.resolve({ accessToken: "t", expiresOn: Math.floor(Date.now() / 1000) + 3600 }),
 * });
 * const { expiresOn } = await relay.token("https://vault.azure.net");
 * ```
 */
export function createRelay(origin: TokenOrigin, options?: RelayOptions): Relay {
  if (options === undefined) options = {};
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? RELAY_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1 || timeoutMs > 2_147_483_647) {
    throw new TypeError(`The relay's timeout must be between 1 and 2147483647 ms: got ${timeoutMs}`);
  }
  const name = visible(endpointText(String(origin.name), [], 40)) || "origin";
  const kept = new Map<string, OriginToken>();
  const flights: Flights<OriginToken> = new Map();
  const reported = new Set<string>();

  /** The origin's message made safe for a client: the gate, with every kept token as a secret, then escaped. */
  const safe = (message: unknown) =>
    visible(endpointText(String(message), [...kept.values()].map((token) => token.accessToken), 300));

  /** One call to the origin, cut at the timeout, its answer checked, kept when good. */
  async function call(resource: string, signal: AbortSignal): Promise<OriginToken> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let abort = () => {};
    // Ends the call at the timeout, or when clear() stops it, whether or not the origin heeds its signal.
    const late = new Promise<never>((_, reject) => {
      const stop = (error: unknown) => {
        controller.abort(error);
        reject(error);
      };
      timer = setTimeout(
        () => stop(new OriginError("timeout", `${name} gave no token within ${Math.ceil(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
      abort = () => stop(signal.reason);
    });
    signal.addEventListener("abort", abort, { once: true });
    let answer: unknown;
    try {
      // A synchronous throw is a rejection like any other.
      answer = await Promise.race([Promise.resolve().then(() => origin.token(resource, controller.signal)), late]);
    } catch (error) {
      if (error instanceof OriginError) {
        // A reason outside the contract is a plain failure: every reason has its status.
        const reason = Object.hasOwn(RELAY_ERROR_STATUS, error.reason) ? error.reason : "failed";
        throw new OriginError(reason, safe(error.message) || `${name} gave no token`);
      }
      // An origin that breaks its contract: what it threw passes the gate like any other text.
      throw new OriginError("failed", `${name} failed: ${safe(error instanceof Error ? error.message : error)}`);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", abort);
    }
    const token = checked(answer, now());
    if (typeof token === "string") throw new OriginError("invalid_output", `${name}'s answer ${token}`);
    kept.delete(resource);
    // A token the origin gave with less than the margin left is served, not kept.
    if (token.expiresOn * 1000 - now() <= RELAY_MARGIN_MS) return token;
    kept.set(resource, token);
    // Expired ones first, then the oldest kept: a client asking for ever new resources holds no more than the cap.
    if (kept.size > RELAY_MAX_RESOURCES) {
      for (const [key, value] of kept) if (value.expiresOn * 1000 <= now()) kept.delete(key);
      for (const key of kept.keys()) {
        if (kept.size <= RELAY_MAX_RESOURCES) break;
        kept.delete(key);
      }
    }
    return token;
  }

  return {
    name,
    async token(requested) {
      const resource = relayResource(requested);
      const token = kept.get(resource);
      if (token && token.expiresOn * 1000 - now() > RELAY_MARGIN_MS) return token;
      // A background flight: a client that hangs up does not stop it, so a client's retry
      // joins the same call instead of starting another tool run; the timeout bounds it.
      const shared = flight(flights, resource, (signal) => call(resource, signal), true);
      return await join(flights, resource, shared);
    },
    named(parameter, id) {
      if (!options.onIdentity || reported.size >= RELAY_MAX_REPORTED_IDS) return;
      const key = `${parameter}\n${id.toLowerCase()}`;
      if (reported.has(key)) return;
      reported.add(key);
      const shown = visible(id.length > 256 ? `${id.slice(0, 256)}...` : id);
      try {
        options.onIdentity({ parameter, id: shown });
      } catch {
        // A listener's failure is not the client's.
      }
    },
    clear() {
      kept.clear();
      for (const each of flights.values()) {
        each.controller.abort(new OriginError("failed", `${name}: the relay stopped`));
      }
      flights.clear();
    },
  };
}

/**
 * How the relay answers an origin's failure, per reason: a person must act (`missing`,
 * `signed_out`, `wrong_tenant`): 400, which no client retries; the tool or Entra failed or
 * said something that is not a token (`failed`, `invalid_output`): 500, which clients retry a
 * few times; no answer in time (`timeout`): 504, the same. docs/relay.md, "Errors".
 */
export const RELAY_ERROR_STATUS: Readonly<Record<OriginFailure, number>> = {
  missing: 400,
  signed_out: 400,
  wrong_tenant: 400,
  invalid_output: 500,
  failed: 500,
  timeout: 504,
};
