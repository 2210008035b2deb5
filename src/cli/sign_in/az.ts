/**
 * Tokens from the Azure CLI: `az account get-access-token --resource R --output json`, with
 * `--tenant T` when a tenant was asked for (docs/sign_in.md). The answer is az's object,
 * `json.dumps(indent=2, sort_keys=True)`: `accessToken`, `expiresOn` (local time,
 * `YYYY-MM-DD HH:MM:SS.ffffff`), `expires_on` (Unix seconds, since az 2.54.0: Azure/azure-cli
 * #27476), `subscription`, `tenant`, `tokenType`. `expires_on` is read first, `expiresOn` as local
 * time when it is absent (az before 2.54), as @azure/identity does.
 * @module
 */

import { OriginError, type OriginToken, type TokenOrigin } from "../../emulator/origin.ts";
import { accessToken, errorLine, jsonObject, safeText, saneExpiry, TENANT_CODES, toolError } from "./output.ts";
import { runTool, type ToolEnv } from "./process.ts";

/** What an az origin needs. */
export interface AzOriginOptions {
  readonly env: ToolEnv;
  /** `--tenant`: the token must come from this tenant. */
  readonly tenant?: string;
  readonly timeoutMs?: number;
  /** The clock, in milliseconds (tests). */
  readonly now?: () => number;
}

const INSTALL = "install the Azure CLI (https://aka.ms/azure-cli) or use --tokens-from azd|sp";

// az's own refusals of `--tenant` (azure-cli-core `_profile.py`, `get_raw_token`).
const TENANT_REFUSALS = /non-current tenants is not supported|Tenant shouldn't be specified/i;

/**
 * `expiresOn` as az prints it, `datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d
 * %H:%M:%S.%f")`: local time without a zone, read as this machine's local time (az runs here).
 * `NaN` when it is not that shape or not a date.
 */
export function parseAzLocalTime(text: string): number {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) return NaN;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(year, month - 1, day, hour, minute, second);
  // A date that does not exist (2024-02-30) rolls over: refuse it.
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) return NaN;
  return Math.floor(date.getTime() / 1000);
}

/** `expires_on` as a number of seconds: az prints an integer; a numeric string is read too. */
function epochSeconds(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

/** Reads az's answer into a token, or throws an {@linkcode OriginError}. */
export function readAzAnswer(stdout: string, options: { readonly tenant?: string; readonly now: number }): OriginToken {
  const body = jsonObject(stdout);
  if (!body) throw new OriginError("invalid_output", `az printed no JSON object (${stdout.length} characters)`);
  const token = accessToken("az", "accessToken", body.accessToken);
  const epoch = epochSeconds(body.expires_on);
  const expiresOn = epoch !== undefined ? saneExpiry("az", "expires_on", epoch, options.now) : saneExpiry(
    "az",
    "expiresOn",
    typeof body.expiresOn === "string" ? parseAzLocalTime(body.expiresOn) : NaN,
    options.now,
  );
  if (
    options.tenant !== undefined && typeof body.tenant === "string" && body.tenant !== "" &&
    body.tenant.toLowerCase() !== options.tenant.toLowerCase()
  ) {
    throw new OriginError(
      "wrong_tenant",
      `az gave a token of tenant "${safeText(body.tenant, [token])}", not of "${safeText(options.tenant)}"`,
    );
  }
  return { accessToken: token, expiresOn };
}

/** The error for az's failure (exit code not 0), from what it printed on stderr. */
export function azFailure(code: number | null, stderr: string): OriginError {
  const line = errorLine(stderr);
  if (code === 127 || /^'az' is not recognized/.test(stderr)) {
    return new OriginError("missing", `az was not found (${INSTALL})`);
  }
  if (TENANT_CODES.test(stderr) || TENANT_REFUSALS.test(stderr)) return toolError("wrong_tenant", "az", line);
  if (/\baz login\b/.test(stderr)) return toolError("signed_out", "az", line, "run az login");
  return toolError("failed", "az", line || `exited with code ${code}`);
}

/** A token origin that runs `az account get-access-token` for each token. */
export function azOrigin(options: AzOriginOptions): TokenOrigin {
  const now = options.now ?? Date.now;
  return {
    name: "az",
    async token(resource: string, signal: AbortSignal): Promise<OriginToken> {
      const args = ["account", "get-access-token", "--resource", checkedResource(resource), "--output", "json"];
      if (options.tenant !== undefined) args.push("--tenant", options.tenant);
      const run = await runTool("az", args, {
        env: options.env,
        timeoutMs: options.timeoutMs,
        signal,
        install: INSTALL,
      });
      if (run.code !== 0) throw azFailure(run.code, run.stderr);
      return readAzAnswer(run.stdout, { tenant: options.tenant, now: now() });
    },
  };
}

/**
 * `resource` when a tool may be given it as one argument: not empty, no whitespace or control
 * character, and not starting with `-` (which the tool would read as an option of its own).
 * Anything else, `;` and `$(...)` included, is passed as it is: no shell reads it.
 */
export function checkedResource(resource: string): string {
  if (
    typeof resource !== "string" || resource === "" || resource.startsWith("-") || /[\s\p{Cc}\p{Cf}]/u.test(resource)
  ) {
    throw new OriginError("failed", `not a resource: ${JSON.stringify(safeText(String(resource)))}`);
  }
  return resource;
}
