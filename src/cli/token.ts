/**
 * `azmi token <resource>`: prints an access token and nothing else (or, with `--json`, the token
 * and its expiry; with `-o json|tsv|none`, what `az account get-access-token` prints); and the
 * creation of the client that `token` and `doctor` share.
 * @module
 */

import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import type { IdentityOptions, ManagedIdentityClientOptions, TokenResult } from "../../mod.ts";
import { INTERNAL, internalOptions } from "../internal.ts";
import type { CliIo } from "../cli.ts";
import { readClaims } from "../emulator/token.ts";
import { IDENTITY_FLAGS, identityOf, parseArgs, type Parsed, TIMEOUT_FLAG, timeoutOf, UsageError } from "./args.ts";
import { deadlineMessage, endedByDeadline, EXIT_CODES, startDeadline } from "./common.ts";
import { visible } from "../redact.ts";

/**
 * A client for one command, with a cache of its own. Client construction refuses bad arguments
 * with a TypeError or RangeError: a usage error here.
 */
export function createClient(
  command: string,
  io: CliIo,
  identity: IdentityOptions,
  timeoutMs: number | undefined,
  retry: boolean,
): ManagedIdentityClient {
  try {
    return new ManagedIdentityClient({
      ...identity,
      env: io.env,
      fetch: io.fetch,
      timeoutMs,
      cache: new TokenCache(),
      ...(retry ? {} : { retry: false }),
      // The internal seam, for tests only (never set outside this repository).
      [INTERNAL]: internalOptions(io),
    } as ManagedIdentityClientOptions);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message, command);
    throw error;
  }
}

/** The output formats of `-o`/`--output`, as `az` names them. */
const OUTPUTS = ["json", "tsv", "none"] as const;
type Output = (typeof OUTPUTS)[number];

/** The flags of `azmi token`. */
const TOKEN_FLAGS = {
  ...IDENTITY_FLAGS,
  resource: "a resource URI, such as https://vault.azure.net",
  scope: "one scope, such as https://vault.azure.net/.default",
  output: `one of ${OUTPUTS.join(", ")}`,
  json: null,
  timeout: TIMEOUT_FLAG,
} as const;

/**
 * `azmi token <resource> [--resource URI | --scope SCOPE] [identity flag] [--json | -o FORMAT]
 * [--timeout MS]`. Library errors are printed by `main` (one line, see `errorLine`); the end of
 * the `--timeout` deadline is printed here.
 */
export async function tokenCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs("token", args, TOKEN_FLAGS, { o: "output" });
  const resource = resourceOf(parsed);
  const output = outputOf(parsed);
  const identity = identityOf("token", parsed);
  const timeoutMs = timeoutOf("token", parsed);
  // --timeout is the whole command's deadline, retries and their waits included; each attempt
  // also gets it as its own timeout, so that none outlives it.
  const deadline = timeoutMs === undefined ? undefined : startDeadline(timeoutMs);
  const client = createClient("token", io, identity, timeoutMs, true);
  let result: TokenResult;
  try {
    result = await client.acquireToken(resource, deadline ? { signal: deadline.signal } : {});
  } catch (error) {
    if (deadline && endedByDeadline(error, deadline)) {
      io.stderr(`azmi token: ${deadlineMessage(deadline)}\n`);
      return EXIT_CODES.timeout;
    }
    throw error;
  }
  // Beside the token, what the endpoint and the command line chose, escaped for every format.
  result = { ...result, tokenType: visible(result.tokenType), resource: visible(result.resource) };
  if (output === "json") {
    io.stdout(`${JSON.stringify(azShape(result), null, 2)}\n`);
  } else if (output === "tsv") {
    const values = Object.values(azShape(result)).map(String);
    // A tab or line break in the token would shift the columns a script reads: refused, unprinted.
    if (values.some((value) => /[\t\r\n]/.test(value))) {
      io.stderr("azmi token: the token holds a tab or a line break, which -o tsv cannot print\n");
      return EXIT_CODES.failed;
    }
    io.stdout(`${values.join("\t")}\n`);
  } else if (output === "none") {
    // Nothing: the exit code says it all.
  } else if (parsed.switches.has("json")) {
    io.stdout(`${JSON.stringify(tokenJson(result), null, 2)}\n`);
  } else {
    io.stdout(`${result.accessToken}\n`);
  }
  return EXIT_CODES.ok;
}

/**
 * The resource, given once: as the argument, `--resource`, or `--scope` (one scope: a managed
 * identity token is for one resource; the library removes a trailing `/.default`).
 */
function resourceOf(parsed: Parsed): string {
  const given: [string, string][] = [
    ...parsed.positionals.map((value): [string, string] => [`the argument "${value}"`, value]),
    ...(["resource", "scope"] as const).flatMap((flag): [string, string][] => {
      const value = parsed.values.get(flag);
      return value === undefined ? [] : [[`--${flag} "${value}"`, value]];
    }),
  ];
  if (given.length === 0) {
    throw new UsageError(
      `Missing resource: for example "azmi token https://vault.azure.net" or "azmi token --scope https://vault.azure.net/.default"`,
      "token",
    );
  }
  if (given.length > 1) {
    throw new UsageError(
      `Give one resource, as the argument, --resource or --scope (one scope): got ${
        given.map(([what]) => what).join(" and ")
      }`,
      "token",
    );
  }
  const [, value] = given[0]!;
  if (value.trim() === "") throw new UsageError("The resource is empty", "token");
  return value;
}

/** The `-o`/`--output` format, any case, or `undefined` without one; `--json` with it is a usage error. */
function outputOf(parsed: Parsed): Output | undefined {
  const text = parsed.values.get("output");
  if (text === undefined) return undefined;
  const output = OUTPUTS.find((each) => each === text.toLowerCase());
  if (output === undefined) {
    throw new UsageError(`Flag "--output" expects one of ${OUTPUTS.join(", ")}: got "${text}"`, "token");
  }
  if (parsed.switches.has("json")) {
    throw new UsageError(
      `Give --json (this CLI's shape) or --output ${output} (az's), not both`,
      "token",
    );
  }
  return output;
}

/** `--json`: the library's own view of the token (this CLI's shape before `-o`, kept for its users). */
function tokenJson(result: TokenResult): Record<string, unknown> {
  return {
    accessToken: result.accessToken,
    tokenType: result.tokenType,
    expiresOn: result.expiresOn.toISOString(),
    ...(result.refreshOn ? { refreshOn: result.refreshOn.toISOString() } : {}),
    resource: result.resource,
    source: result.source,
    fromCache: result.fromCache,
  };
}

/** What `az account get-access-token` prints, in the order it prints it. */
interface AzToken {
  readonly accessToken: string;
  /** Local time, `YYYY-MM-DD HH:MM:SS.ffffff`, as az prints it. */
  readonly expiresOn: string;
  /** Unix time in whole seconds. */
  readonly expires_on: number;
  /** The token's `tid` claim, when the token is a JWT that has one (az's tenant). */
  readonly tenant?: string;
  readonly tokenType: string;
}

/**
 * The token in `az account get-access-token`'s shape, keys in the order az prints them. az
 * (azure-cli's profile/custom.py `get_access_token`) returns `tokenType`, `accessToken`,
 * `expires_on`, `expiresOn`, `tenant` and, when it has one, `subscription`, and its output layer
 * (knack's output.py) sorts them: `format_json` with `sort_keys=True`, and `-o tsv` writes a
 * dict's values `sorted(data.items())` by key. So: accessToken, expiresOn, expires_on,
 * subscription, tenant, tokenType, the order of the example output in Microsoft's Azure CLI docs
 * (MicrosoftDocs/azure-docs-cli, docs-ref-conceptual/includes/refresh-token.md).
 * `expiresOn` is `datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f")`
 * (azure-cli core `_profile.py`): local time of the integer `expires_on`.
 *
 * A managed identity has no subscription to tell, so `subscription` is left out (as az leaves it
 * out for `--tenant`); `tenant` is the token's `tid` claim, read without verifying anything, and
 * left out when the token is not a JWT or the claim is not a tenant ID. Nothing else of the
 * token is read or printed.
 */
function azShape(result: TokenResult): AzToken {
  const seconds = Math.floor(result.expiresOn.getTime() / 1000);
  const tenant = tenantOf(result.accessToken);
  return {
    accessToken: result.accessToken,
    expiresOn: localTime(seconds),
    expires_on: seconds,
    ...(tenant === undefined ? {} : { tenant }),
    tokenType: result.tokenType,
  };
}

/** The token's `tid` claim when the token is a JWT and the claim is a tenant ID (a GUID). */
function tenantOf(token: string): string | undefined {
  const claims: unknown = readClaims(token);
  if (typeof claims !== "object" || claims === null) return undefined;
  const tid = (claims as Record<string, unknown>).tid;
  return typeof tid === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tid)
    ? tid
    : undefined;
}

/** Unix seconds as local time, `YYYY-MM-DD HH:MM:SS.000000` (Python's `%Y-%m-%d %H:%M:%S.%f`). */
function localTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${String(date.getFullYear()).padStart(4, "0")}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${
    two(date.getHours())
  }:${two(date.getMinutes())}:${two(date.getSeconds())}.000000`;
}
