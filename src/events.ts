/**
 * What the client reports through its `onEvent` option: things a caller did not see as a
 * result or an error, such as a background refresh that failed while a cached token was served.
 * @module
 */

import type { ManagedIdentityError } from "./errors.ts";
import type { Source } from "./types.ts";

/**
 * One event of a {@linkcode ManagedIdentityClient}. Events never carry a token or a secret.
 *
 * @example Collect events and tell them apart by `type`
 * ```ts
 * import { ManagedIdentityClient, type ManagedIdentityEvent, TokenCache } from "@azmi/managed-identity";
 *
 * const events: ManagedIdentityEvent[] = [];
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   // An expires_on that is not a time: expires_in is used instead, and an event says so.
 *   fetch: () => Response.json({ access_token: "t", expires_on: "soon", expires_in: 3600 }),
 *   cache: new TokenCache(),
 *   onEvent: (event) => events.push(event),
 * });
 * await client.acquireToken("https://vault.azure.net");
 * for (const event of events) {
 *   // "AppService" "https://vault.azure.net"
 *   if (event.type === "expires_on_fallback") console.log(event.source, event.resource);
 *   else if (event.type === "refresh_failed") console.warn(event.error.code);
 *   else console.log(event.attempt, event.delayMs, event.reason);
 * }
 * ```
 */
export type ManagedIdentityEvent =
  | {
    /** A background refresh failed; the cached token stays in use until 5 minutes before it expires. */
    readonly type: "refresh_failed";
    readonly source: Source;
    readonly resource: string;
    readonly error: ManagedIdentityError;
  }
  | {
    /** `expires_on` could not be parsed and `expires_in` was used instead. */
    readonly type: "expires_on_fallback";
    readonly source: Source;
    readonly resource: string;
    readonly detail: string;
  }
  | {
    /** An attempt failed (`reason`: `status 503`, `timeout`, `unavailable`...) and retry number `attempt` follows after `delayMs`. */
    readonly type: "retry";
    readonly source: Source;
    readonly attempt: number;
    readonly delayMs: number;
    readonly reason: string;
  };

/**
 * A listener for {@linkcode ManagedIdentityEvent}s. One that throws cannot break token acquisition.
 *
 * @example Log failed background refreshes
 * ```ts
 * import type { ManagedIdentityEventListener } from "@azmi/managed-identity";
 *
 * const onEvent: ManagedIdentityEventListener = (event) => {
 *   if (event.type === "refresh_failed") {
 *     console.warn(`Refreshing the token for ${event.resource} failed (${event.error.code}): the cached one stays`);
 *   }
 * };
 * ```
 */
export type ManagedIdentityEventListener = (event: ManagedIdentityEvent) => void;

/** Calls the listener; a listener that throws cannot break token acquisition. */
export function emit(listener: ManagedIdentityEventListener | undefined, event: ManagedIdentityEvent): void {
  try {
    // An async listener's rejection is caught too: it must not become an unhandled rejection.
    (listener?.(event) as unknown as Promise<void> | undefined)?.catch?.(() => {});
  } catch {
    // The listener's own failure is not the caller's.
  }
}
