/**
 * Tokens from the Azure Developer CLI: `azd auth token --scope R/.default --output json`, with
 * `--tenant-id T` when a tenant was asked for (docs/sign_in.md). The answer is azure-dev's
 * `contracts.AuthTokenResult`, `{"token": "...", "expiresOn": "2024-01-01T00:00:00Z"}`, the
 * expiry in RFC 3339 (`pkg/contracts/auth_token.go`). The scope is the resource with `/.default`,
 * a trailing slash kept (`https://management.azure.com//.default`), as az's `resource_to_scopes`
 * and this module's workload identity request make it.
 * @module
 */

import { OriginError, type OriginToken, type TokenOrigin } from "../../emulator/origin.ts";
import { checkedResource } from "./az.ts";
import { accessToken, errorLine, jsonObject, saneExpiry, TENANT_CODES, toolError } from "./output.ts";
import { runTool, type ToolEnv } from "./process.ts";

/** What an azd origin needs. */
export interface AzdOriginOptions {
  readonly env: ToolEnv;
  /** `--tenant-id`. */
  readonly tenant?: string;
  readonly timeoutMs?: number;
  /** The clock, in milliseconds (tests). */
  readonly now?: () => number;
}

const INSTALL = "install the Azure Developer CLI (https://aka.ms/azd) or use --tokens-from az|sp";
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/** Reads azd's answer into a token, or throws an {@linkcode OriginError}. */
export function readAzdAnswer(stdout: string, now: number): OriginToken {
  const body = jsonObject(stdout);
  if (!body) throw new OriginError("invalid_output", `azd printed no JSON object (${stdout.length} characters)`);
  const token = accessToken("azd", "token", body.token);
  const expires = typeof body.expiresOn === "string" && RFC3339.test(body.expiresOn)
    ? Date.parse(body.expiresOn) / 1000
    : NaN;
  return { accessToken: token, expiresOn: saneExpiry("azd", "expiresOn", expires, now) };
}

/**
 * The error for azd's failure. azd writes `ERROR: ...` on stderr, or, with `--output json`, as a
 * `consoleMessage` event on stdout in some versions: both are read.
 */
export function azdFailure(code: number | null, stdout: string, stderr: string): OriginError {
  const said = `${stderr}\n${stdout.slice(0, 64 * 1024)}`;
  const line = errorLine(stderr) || errorLine(stdout.replace(/\\n/g, "\n").replace(/"/g, "\n"));
  if (code === 127) return new OriginError("missing", `azd was not found (${INSTALL})`);
  if (TENANT_CODES.test(said)) return toolError("wrong_tenant", "azd", line);
  if (/not logged in, run `azd (?:auth )?login`/.test(said)) {
    return toolError("signed_out", "azd", line, "run azd auth login");
  }
  return toolError("failed", "azd", line || `exited with code ${code}`);
}

/** A token origin that runs `azd auth token` for each token. */
export function azdOrigin(options: AzdOriginOptions): TokenOrigin {
  const now = options.now ?? Date.now;
  return {
    name: "azd",
    async token(resource: string, signal: AbortSignal): Promise<OriginToken> {
      const args = ["auth", "token", "--scope", `${checkedResource(resource)}/.default`, "--output", "json"];
      if (options.tenant !== undefined) args.push("--tenant-id", options.tenant);
      const run = await runTool("azd", args, {
        env: options.env,
        timeoutMs: options.timeoutMs,
        signal,
        install: INSTALL,
      });
      if (run.code !== 0) throw azdFailure(run.code, run.stdout, run.stderr);
      return readAzdAnswer(run.stdout, now());
    },
  };
}
