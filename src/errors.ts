/**
 * The one error class the client throws for everything but bad arguments.
 * @module
 */

import type { Source } from "./types.ts";

/**
 * The stable machine-readable reason of a {@linkcode ManagedIdentityError}.
 *
 * - `unsupported_identity`: the source cannot serve the requested user-assigned identity.
 * - `invalid_configuration`: the environment or an option is unusable (bad endpoint URL,
 *   a thumbprint that is not SHA-1), or the runtime refused a permission: Deno without
 *   `--allow-env`, `--allow-net` or `--allow-read`, Node's permission model. The message names
 *   the flag to add. Never `unavailable`, so a credential chain does not move on silently.
 * - `unavailable`: nothing answered: no managed identity endpoint is reachable here.
 * - `request_failed`: the endpoint answered and refused (an HTTP error status).
 * - `invalid_response`: the endpoint answered success with a body that is not a token.
 * - `timeout`: an attempt took longer than `timeoutMs`.
 * - `aborted`: the caller's `AbortSignal` ended the call.
 * - `certificate_mismatch`: the Service Fabric endpoint's certificate does not match
 *   `IDENTITY_SERVER_THUMBPRINT`; the connection was dropped before the secret was sent.
 * - `identity_mismatch`: Azure Arc returned a token that does not echo the requested
 *   user-assigned identity; it was not used or cached.
 * - `arc_challenge_missing`, `arc_challenge_invalid`, `arc_platform_unsupported`,
 *   `arc_key_invalid_name`, `arc_key_invalid_directory`: the Azure Arc challenge was refused
 *   before any file was touched.
 * - `arc_key_not_found`, `arc_key_permission_denied`, `arc_key_invalid_file`,
 *   `arc_key_too_large`, `arc_key_unreadable`: the Azure Arc key file could not be used.
 *
 * The union is open: later versions may add codes, so keep a default branch.
 *
 * @example Decide what to do by code
 * ```ts
 * import { ManagedIdentityError } from "@azmi/managed-identity";
 *
 * function advice(error: ManagedIdentityError): string {
 *   switch (error.code) {
 *     case "unavailable":
 *       return "no managed identity here: try another credential";
 *     case "timeout":
 *       return "the endpoint is slow: try again later";
 *     case "invalid_configuration":
 *     case "unsupported_identity":
 *       return "fix the environment or the options";
 *     default:
 *       return error.message;
 *   }
 * }
 * console.log(advice(new ManagedIdentityError("timeout", "Token request timed out")));
 * // "the endpoint is slow: try again later"
 * ```
 */
export type ManagedIdentityErrorCode =
  | "unsupported_identity"
  | "invalid_configuration"
  | "unavailable"
  | "request_failed"
  | "invalid_response"
  | "timeout"
  | "aborted"
  | "certificate_mismatch"
  | "identity_mismatch"
  | "arc_challenge_missing"
  | "arc_challenge_invalid"
  | "arc_platform_unsupported"
  | "arc_key_invalid_name"
  | "arc_key_invalid_directory"
  | "arc_key_not_found"
  | "arc_key_permission_denied"
  | "arc_key_invalid_file"
  | "arc_key_too_large"
  | "arc_key_unreadable"
  // deno-lint-ignore ban-types
  | (string & {});

/** What an error knows besides its code and message. */
export interface ManagedIdentityErrorDetails {
  /** The source that was asked. */
  readonly source?: Source | undefined;
  /** The HTTP status the endpoint answered with. */
  readonly status?: number | undefined;
  /** The endpoint's error code, from its body (`error` or `error.code`). */
  readonly error?: string | undefined;
  /** The endpoint's explanation, from its body (`error_description`, `message` or `error.message`). */
  readonly errorDescription?: string | undefined;
  /** The endpoint's correlation ID, when its body or headers carry one. */
  readonly correlationId?: string | undefined;
  /** The endpoint's origin and path, never its query string. */
  readonly endpoint?: string | undefined;
  /** The underlying failure. */
  readonly cause?: unknown;
}

/**
 * A managed identity request failed. `code` says why in a stable form; the message says it
 * in words, with what was expected and what was found. No message or property ever holds an
 * access token or a secret header value.
 *
 * @example Tell "no managed identity here" from a real failure
 * ```ts
 * import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ statusCode: 403, message: "Forbidden" }, { status: 403 }), // an endpoint that refuses
 *   cache: new TokenCache(),
 * });
 * try {
 *   await client.acquireToken("https://vault.azure.net");
 * } catch (error) {
 *   if (error instanceof ManagedIdentityError && error.code === "unavailable") {
 *     // not running on Azure: try another credential
 *   } else if (error instanceof ManagedIdentityError) {
 *     console.log(error.code, error.status); // "request_failed" 403
 *   }
 * }
 * ```
 */
export class ManagedIdentityError extends Error {
  /**
   * `"ManagedIdentityError"`, or `"CredentialUnavailableError"` for the code `unavailable` (see
   * {@linkcode CredentialUnavailableError}); a literal, so that minified code keeps a readable name.
   */
  override readonly name: "ManagedIdentityError" | "CredentialUnavailableError" = "ManagedIdentityError";
  /** Why the request failed, in a stable form. */
  readonly code: ManagedIdentityErrorCode;
  /** The source that was asked, when one was. */
  declare readonly source?: Source;
  /** The HTTP status the endpoint answered with, for HTTP failures. */
  declare readonly status?: number;
  /** The endpoint's own error code, when its body had one. */
  declare readonly error?: string;
  /** The endpoint's own explanation, when its body had one. */
  declare readonly errorDescription?: string;
  /** The endpoint's correlation ID, when it gave one. */
  declare readonly correlationId?: string;
  /** The endpoint's origin and path (no query string), when a request was made. */
  declare readonly endpoint?: string;

  /**
   * Creates an error; the client does this, user code rarely needs to.
   *
   * @param code Why the request failed.
   * @param message What failed and what was found, without secrets.
   * @param details The source, status and what the endpoint said.
   */
  constructor(code: ManagedIdentityErrorCode, message: string, details: ManagedIdentityErrorDetails = {}) {
    const { cause, ...known } = details;
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    // Only what is known becomes a property, so logging an error shows no empty fields.
    for (const [key, value] of Object.entries(known)) {
      if (value !== undefined) Object.defineProperty(this, key, { value, enumerable: true });
    }
  }
}

/**
 * No managed identity endpoint is here (code `unavailable`): try another credential. The name
 * is the one Azure SDK credential chains (`ChainedTokenCredential`, and `DefaultAzureCredential`
 * in `@azure/identity` 4) move on after, so a {@linkcode ManagedIdentityClient} can stand first in
 * such a chain. It is a {@linkcode ManagedIdentityError}, so `instanceof` and `code` work as for
 * every other failure.
 *
 * @example Fall back to another credential
 * ```ts
 * import { CredentialUnavailableError, ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient({
 *   env: {}, // no variables: IMDS, which this fetch cannot reach, as off Azure
 *   fetch: () => Promise.reject(new TypeError("connection refused")),
 * });
 * try {
 *   await client.acquireToken("https://vault.azure.net");
 * } catch (error) {
 *   if (error instanceof CredentialUnavailableError) console.log("no managed identity here:", error.code);
 * }
 * ```
 */
export class CredentialUnavailableError extends ManagedIdentityError {
  /** Always `"CredentialUnavailableError"`. */
  override readonly name: "CredentialUnavailableError" = "CredentialUnavailableError";
  /** Always `"unavailable"`. */
  declare readonly code: "unavailable";

  /**
   * Creates an `unavailable` error; the client does this, user code rarely needs to.
   *
   * @param message What was not found, and where.
   * @param details The source and endpoint, and what the endpoint said when it answered.
   */
  constructor(message: string, details: ManagedIdentityErrorDetails = {}) {
    super("unavailable", message, details);
  }
}
