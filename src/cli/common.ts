/**
 * What every `azmi` command shares: the exit codes, which one a library error maps to, the
 * one line an error is printed as, JSON as it is printed, and the whole command's deadline
 * (`--timeout`). Every value from an endpoint, a file, the environment or the command line is
 * printed through `visible()` (src/redact.ts, shared with the library's errors), which escapes
 * control, format and separator characters (`\x1b`, `\x9b`, `\u202e`); the access token that
 * `azmi token` was asked for is the one value printed as it came.
 * {@linkcode EXIT_CODES} is declared here rather than in `cli.ts`, which re-exports it, so that
 * the command modules can use it without importing the entry point (no import cycle).
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "../../mod.ts";
import type { Source } from "../../mod.ts";
import { visible } from "../redact.ts";

/** Where a `main` (src/cli.ts) run reads its environment and writes its output. */
export interface CliIo {
  /** The environment to use instead of the process environment (tests). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Receives standard output, in pieces that end with a line break. */
  stdout(text: string): void;
  /** Receives standard error (messages and usage errors), in pieces that end with a line break. */
  stderr(text: string): void;
  /**
   * The `fetch` used for every request (tests pass a fake endpoint); by default the client's own
   * transport, which reaches a local endpoint without any proxy.
   */
  readonly fetch?: (request: Request) => Response | Promise<Response>;
  /**
   * Stops `azmi emulate` when it aborts. Without it, `emulate` runs until the process receives
   * SIGINT or SIGTERM.
   */
  readonly until?: AbortSignal;
}

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

/** `text` on one line: line breaks (and the blanks around them) become one space. */
export function oneLine(text: string): string {
  // Each run of whitespace is read once: `\s*[\r\n]+\s*` rescanned a long run of blanks from each.
  return text.replace(/\s+/g, (run) => /[\r\n]/.test(run) ? " " : run);
}

/** Whether `text` holds a control, format or separator character: one that {@linkcode visible} escapes. */
export function hasUnprintable(text: string): boolean {
  return visible(text) !== text;
}

/** `text` on one line, with every control, format or separator character left in it escaped visibly. */
export function printable(text: string): string {
  return visible(oneLine(text));
}

/**
 * `value` as indented JSON that a terminal can print: JSON escapes C0 controls itself; DEL, C1
 * controls, format and separator characters become `\uXXXX` escapes too, so the values read
 * back exactly as they were.
 */
export function jsonText(value: unknown): string {
  return escapeRaw(JSON.stringify(value, null, 2));
}

/**
 * JSON text (or a YAML double-quoted scalar, `yaml`) with the characters `JSON.stringify` leaves
 * raw but a terminal must not get (DEL, C1 controls, format and separator characters) escaped:
 * `\uXXXX`, and beyond the BMP a surrogate pair of those in JSON, YAML's `\UXXXXXXXX` in YAML.
 */
export function escapeRaw(json: string, yaml = false): string {
  return json.replace(/[\x7f-\x9f\p{Cf}\u2028\u2029]/gu, (char) => {
    const code = char.codePointAt(0)!;
    if (yaml && code > 0xffff) return `\\U${code.toString(16).padStart(8, "0")}`;
    let escaped = "";
    for (let i = 0; i < char.length; i++) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`;
    return escaped;
  });
}

/**
 * The one line a library error is printed as, after `prefix` (`azmi token`): its message
 * (escaped by {@linkcode printable}) and code; for `unavailable`, first that there is no managed
 * identity here (exit code 3).
 */
export function errorLine(prefix: string, error: ManagedIdentityError): string {
  const message = printable(error.message);
  if (error.code === "unavailable") {
    // The library's own wording may say so already ("No managed identity endpoint here: ...").
    return `${prefix}: no managed identity here: ${
      message.replace(/^no managed identity (endpoint )?here:\s*/i, "")
    } (unavailable)\n`;
  }
  return `${prefix}: ${message} (${error.code})\n`;
}

/** The whole command's deadline, `--timeout MS`: one signal for every request, retries and waits of a command. */
export interface Deadline {
  /** The deadline in milliseconds, as given. */
  readonly ms: number;
  /** Whether `--timeout` gave it, rather than the command's default. */
  readonly given: boolean;
  /** Aborts with a `TimeoutError` when the deadline ends; passed as `signal` to `acquireToken`. */
  readonly signal: AbortSignal;
  /** Milliseconds left, at least 1. */
  left(): number;
}

/** Starts a command's deadline of `ms` milliseconds; `given` when `--timeout` set it. */
export function startDeadline(ms: number, given = true): Deadline {
  const started = performance.now();
  return {
    ms,
    given,
    signal: AbortSignal.timeout(ms),
    left: () => Math.max(1, Math.ceil(ms - (performance.now() - started))),
  };
}

/**
 * Whether `error` is how the library ended a call because the deadline ended: the caller's
 * signal aborted it (`aborted`), or an attempt's own timeout of the same length (`timeout`).
 * The CLI has no other abort than its deadline, but a reason other than a `TimeoutError` is not
 * counted as one.
 */
export function endedByDeadline(error: unknown, deadline: Deadline): boolean {
  const { signal } = deadline;
  return error instanceof ManagedIdentityError && (error.code === "aborted" || error.code === "timeout") &&
    signal.aborted && (signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError";
}

/** What a command says when its deadline ended the token request. */
export function deadlineMessage(deadline: Deadline): string {
  return `no token within the ${deadline.ms} ms deadline (${
    deadline.given ? "--timeout" : "the default; --timeout MS sets another"
  })`;
}

/**
 * The error a command reports when its deadline ended the token request, or `undefined` when
 * something else did. IMDS that never answered anything, not even the first-contact probe, is
 * `unavailable`, as the probe itself would have said had it had its full second: off Azure, a
 * firewall that drops the packets to 169.254.169.254 looks exactly like that, and a script told
 * "no managed identity here" (exit code 3) moves on, where a timeout (4) would invite a retry.
 * Every other case is `timeout`.
 */
export function deadlineError(
  error: unknown,
  deadline: Deadline,
  source: Source,
  answered: boolean,
): ManagedIdentityError | undefined {
  if (!endedByDeadline(error, deadline)) return undefined;
  if (source === "DefaultToIMDS" && !answered) {
    const flag = deadline.given ? "--timeout" : "the default";
    return new CredentialUnavailableError(`IMDS did not answer within the ${deadline.ms} ms deadline (${flag})`, {
      source,
      cause: error,
    });
  }
  return new ManagedIdentityError("timeout", deadlineMessage(deadline), { source, cause: error });
}
