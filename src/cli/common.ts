/**
 * What every `azmi` command shares: the exit codes, and which one a library error maps to.
 * {@linkcode EXIT_CODES} is declared here rather than in `cli.ts`, which re-exports it, so that
 * the command modules can use it without importing the entry point (no import cycle).
 * @module
 */

import type { ManagedIdentityError } from "../../mod.ts";

/**
 * What each exit code of {@linkcode main} means, for scripts that branch on it.
 *
 * @example Branch on the outcome
 * ```ts
 * import { EXIT_CODES, main } from "@azmi/managed-identity/cli";
 *
 * const code = await main(["token", "https://vault.azure.net"], {
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ statusCode: 400, message: "No managed identity found" }, { status: 400 }),
 *   stdout: () => {},
 *   stderr: () => {},
 * });
 * if (code === EXIT_CODES.unavailable) console.log("no managed identity here: try another credential");
 * else if (code === EXIT_CODES.failed) console.log("the endpoint refused"); // this one
 * ```
 */
export const EXIT_CODES: {
  /** The command did what was asked. */
  readonly ok: 0;
  /** The token request failed: `request_failed`, `invalid_response`, `identity_mismatch`, Azure Arc key errors. */
  readonly failed: 1;
  /** Unknown command or flag, a missing or bad value. */
  readonly usage: 2;
  /** No managed identity is reachable here (`unavailable`). */
  readonly unavailable: 3;
  /** The endpoint did not answer in time (`timeout`). */
  readonly timeout: 4;
  /** The environment is unusable: `invalid_configuration`, `unsupported_identity`, `certificate_mismatch`. */
  readonly configuration: 5;
} = { ok: 0, failed: 1, usage: 2, unavailable: 3, timeout: 4, configuration: 5 };

const CONFIGURATION_CODES: ReadonlySet<string> = new Set([
  "invalid_configuration",
  "unsupported_identity",
  "certificate_mismatch",
]);

/** The exit code for a library error: 3 unavailable, 4 timeout, 5 configuration, 1 anything else. */
export function exitCodeOf(error: ManagedIdentityError): number {
  if (error.code === "unavailable") return EXIT_CODES.unavailable;
  if (error.code === "timeout") return EXIT_CODES.timeout;
  if (CONFIGURATION_CODES.has(error.code)) return EXIT_CODES.configuration;
  return EXIT_CODES.failed;
}
