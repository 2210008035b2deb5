/**
 * Where a relay's real tokens come from: the developer's own sign-in (the Azure CLI, the Azure
 * Developer CLI) or a service principal from the environment. The relay (`relay.ts`) serves
 * them over a managed identity protocol; the origins that spawn a tool live with the command
 * line (`src/cli/sign_in/`), since spawning a process is the CLI's business, not the module's.
 * @module
 */

/** A token from an origin: the access token and when it expires. */
export interface OriginToken {
  /** The access token. Never printed, logged or put in an error. */
  readonly accessToken: string;
  /** When it expires, in Unix seconds. */
  readonly expiresOn: number;
}

/**
 * A source of real tokens for a relay.
 *
 * @example An origin of your own, served over App Service's protocol
 * ```ts
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 * import { serve, type TokenOrigin } from "@azmi/managed-identity/emulator";
 *
 * const origin: TokenOrigin = {
 *   name: "fixed",
 *   token: () => Promise.resolve({ accessToken: "opaque-token", expiresOn: Math.floor(Date.now() / 1000) + 3600 }),
 * };
 * const running = await serve({ origin });
 * const client = new ManagedIdentityClient({ env: running.env.AppService, cache: new TokenCache() });
 * const { accessToken } = await client.acquireToken("https://vault.azure.net");
 * await running.close();
 * ```
 */
export interface TokenOrigin {
  /** What the origin is, for logs and errors: `az`, `azd`, `service principal`. */
  readonly name: string;
  /**
   * A token for `resource` (a resource URI such as `https://vault.azure.net`). Ends when
   * `signal` aborts. Rejects with an {@linkcode OriginError} when no token can be had.
   */
  token(resource: string, signal: AbortSignal): Promise<OriginToken>;
}

/** Why an origin gave no token. */
export type OriginFailure =
  /** The tool is not installed (not on `PATH`), or the service principal's variables are missing. */
  | "missing"
  /** The tool is installed but nobody is signed in (`az login`, `azd auth login`). */
  | "signed_out"
  /** Signed in, but to a tenant other than the one asked for. */
  | "wrong_tenant"
  /** The tool or Microsoft Entra ID did not answer in time. */
  | "timeout"
  /** The tool's output, or Entra's answer, is not a token. */
  | "invalid_output"
  /** Anything else the tool or Entra refused. */
  | "failed";

/**
 * An origin's failure. Its message is safe to print and to send to a client: what the tool or
 * Microsoft Entra ID said, passed through the redaction gate, with control characters escaped,
 * one line, bounded; never a token or a secret. The relay answers each `reason` with its own
 * status (`RELAY_ERROR_STATUS`).
 *
 * @example An origin whose user is signed out
 * ```ts
 * import { OriginError, type TokenOrigin } from "@azmi/managed-identity/emulator";
 *
 * const signedOut: TokenOrigin = {
 *   name: "az",
 *   token: () => Promise.reject(new OriginError("signed_out", "Please run 'az login' to setup account.")),
 * };
 * ```
 */
export class OriginError extends Error {
  /** Why no token came. */
  readonly reason: OriginFailure;

  /** An origin's failure for `reason`, with a message that is safe to print and send. */
  constructor(reason: OriginFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OriginError";
    this.reason = reason;
  }
}
