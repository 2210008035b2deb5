/**
 * `azmi token [resource]`: prints an access token; with az's flags, what `az account
 * get-access-token` prints (src/cli/az.ts); and the creation of the client that `token` and
 * `doctor` share.
 * @module
 */

import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import type { FetchLike, IdentityOptions, ManagedIdentityClientOptions, TokenResult } from "../../mod.ts";
import { INTERNAL, internalOptions } from "../internal.ts";
import type { CliIo } from "./common.ts";
import { SOURCES } from "../sources/index.ts";
import { defaultFetch } from "../transport.ts";
import {
  checkedResource,
  IDENTITY_FLAGS,
  identityOf,
  parseArgs,
  type Parsed,
  TIMEOUT_FLAG,
  timeoutOf,
  UsageError,
} from "./args.ts";
import {
  applyQuery,
  AZ_DEFAULT_RESOURCE,
  AZ_FIELDS,
  AZ_OUTPUTS,
  AZ_RESOURCE_TYPES,
  type AzOutput,
  type AzQuery,
  azToken,
  formatAz,
  isGuid,
  parseQuery,
  QUERY_FORMS,
  unknownFields,
} from "./az.ts";
import { deadlineError, EXIT_CODES, startDeadline } from "./common.ts";
import { visible } from "../redact.ts";

/** `azmi token`'s deadline without `--timeout`: see {@linkcode tokenCommand}. */
export const TOKEN_TIMEOUT_MS = 20_000;
/** The longest one attempt may take: the library's default per-attempt timeout. */
const ATTEMPT_TIMEOUT_MS = 15_000;

/** A command's client, and whether any endpoint answered it. */
export interface CommandClient {
  readonly client: ManagedIdentityClient;
  /**
   * Whether an HTTP answer, whatever its status, came back during the command. Tracked for IMDS
   * only (`true` for other sources), whose silence is told apart from a slow answer.
   */
  answered(): boolean;
}

/**
 * A client for one command, with a cache of its own. Client construction refuses bad arguments
 * with a TypeError or RangeError: a usage error here. For IMDS, the client's `fetch` (the given
 * one, or the transport the client would use by itself) is watched for an answer.
 */
export function createClient(
  command: string,
  io: CliIo,
  identity: IdentityOptions,
  timeoutMs: number | undefined,
  retry: boolean,
): CommandClient {
  const make = (fetch: FetchLike | undefined) =>
    new ManagedIdentityClient({
      ...identity,
      env: io.env,
      fetch,
      timeoutMs,
      cache: new TokenCache(),
      ...(retry ? {} : { retry: false }),
      // The internal seam, for tests only (never set outside this repository).
      [INTERNAL]: internalOptions(io),
    } as ManagedIdentityClientOptions);
  try {
    const client = make(io.fetch);
    if (client.source !== "DefaultToIMDS") return { client, answered: () => true };
    let answered = false;
    const fetch = io.fetch ?? defaultFetch("DefaultToIMDS", SOURCES.DefaultToIMDS.endpoint.rule);
    const watched = make(async (request) => {
      const response = await fetch(request);
      answered = true;
      return response;
    });
    return { client: watched, answered: () => answered };
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message, command);
    throw error;
  }
}

const TENANT_REFUSED = "Tenant shouldn't be specified for managed identity account";

/** The flags of `azmi token`: this CLI's, and every flag of `az account get-access-token` and az's global ones. */
const TOKEN_FLAGS = {
  ...IDENTITY_FLAGS,
  resource: "a resource URI, such as https://vault.azure.net",
  scope: "one scope, such as https://vault.azure.net/.default",
  "resource-type": `one of ${Object.keys(AZ_RESOURCE_TYPES).join(", ")}`,
  subscription: "a subscription ID",
  name: "a subscription ID",
  tenant: "a tenant ID",
  output: `one of ${AZ_OUTPUTS.join(", ")}`,
  query: QUERY_FORMS,
  json: null,
  timeout: TIMEOUT_FLAG,
  "only-show-errors": null,
  debug: null,
  verbose: null,
} as const;

/** az's one-letter flags. */
const TOKEN_SHORT = { o: "output", s: "subscription", n: "name", t: "tenant" } as const;

/**
 * `azmi token [resource] [identity flag] [az's flags] [--timeout MS]`. Library errors are printed
 * by `main` (one line, see `errorLine`). Without `--timeout`, the command has a deadline of
 * {@linkcode TOKEN_TIMEOUT_MS}: az has none of its own (azure-cli's managed identity credential
 * hands MSAL a `requests.Session()`, and MSAL's request to the endpoint sets no timeout, so az
 * waits as long as the socket does), and a script wants its answer, or a clear failure, in well
 * under a minute. 20 s holds the library's whole schedule on an endpoint that answers: the
 * first-contact probe (1 s), IMDS's three retries after 1, 2 and 4 s, a first IMDS token that
 * takes seconds to fetch; each attempt times out after 15 s or at the deadline.
 */
export async function tokenCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs("token", args, TOKEN_FLAGS, TOKEN_SHORT);
  const { resource, azForm } = resourceOf(parsed);
  const subscription = subscriptionOf(parsed);
  const query = queryOf(parsed);
  // az's default output is JSON; this CLI's, for `azmi token <resource>`, the bare token.
  const output = outputOf(parsed) ?? (azForm || query ? "json" : undefined);
  const identity = identityOf("token", parsed);
  const given = timeoutOf("token", parsed);
  const deadline = startDeadline(given ?? TOKEN_TIMEOUT_MS, given !== undefined);
  // The deadline bounds the whole command, retries and their waits included; each attempt also
  // ends at it, or after 15 s, so that a hung attempt leaves time for a retry.
  const { client, answered } = createClient(
    "token",
    io,
    identity,
    Math.min(deadline.ms, ATTEMPT_TIMEOUT_MS),
    true,
  );
  let result: TokenResult;
  try {
    result = await client.acquireToken(resource, { signal: deadline.signal });
  } catch (error) {
    const ended = deadlineError(error, deadline, client.source, answered());
    if (ended?.code === "timeout") {
      io.stderr(`azmi token: ${ended.message}\n`);
      return EXIT_CODES.timeout;
    }
    throw ended ?? error;
  }
  // Beside the token, what the endpoint chose, escaped for every format (the token itself, asked
  // for, is printed as it came; TSV and a table refuse one holding a control character).
  result = { ...result, tokenType: visible(result.tokenType) };
  if (output === undefined) {
    io.stdout(`${result.accessToken}\n`);
    return EXIT_CODES.ok;
  }
  const value = applyQuery(azToken(result.accessToken, result.tokenType, result.expiresOn, subscription), query);
  const formatted = formatAz(value, output);
  if ("refused" in formatted) {
    // A control character would shift the columns a script reads, or reach the terminal: refused, unprinted.
    io.stderr(
      `azmi token: -o ${output} cannot print ${formatted.refused}: it holds a control or format character ` +
        `(a tab, a line break, an escape, a bidirectional override...); -o json or yaml print it escaped\n`,
    );
    return EXIT_CODES.failed;
  }
  io.stdout(formatted.text);
  return EXIT_CODES.ok;
}

/**
 * The resource: the argument (this CLI's form), or az's flags, `--scope` (one scope; a trailing
 * `/.default` or `/user_impersonation` removed, as az's `scopes_to_resource` does), `--resource`
 * and `--resource-type`, in az's order of precedence (azure-cli's `get_access_token` uses the
 * type only without `--resource`; `get_raw_token` uses `--resource` only without `--scope`),
 * and without any, az's default, Azure Resource Manager. `azForm` is whether the resource came
 * from az's flags (or az's default), whose default output is JSON.
 */
function resourceOf(parsed: Parsed): { resource: string; azForm: boolean } {
  const flags = (["scope", "resource", "resource-type"] as const).filter((flag) => parsed.values.has(flag));
  const [argument, ...extra] = parsed.positionals;
  const scope = parsed.values.get("scope");
  if (extra.length > 0 || (argument !== undefined && flags.length > 0)) {
    const given = [
      ...parsed.positionals.map((value) => `the argument "${value}"`),
      ...flags.map((flag) => `--${flag} "${parsed.values.get(flag)}"`),
    ];
    const scopes = scope === undefined
      ? ""
      : " (a managed identity token is for one resource: --scope takes one scope)";
    throw new UsageError(
      `Give one resource, as the argument or with az's flags --resource, --scope, --resource-type: got ${
        given.join(" and ")
      }${scopes}`,
      "token",
    );
  }
  if (argument !== undefined) return { resource: checkedResource("token", argument), azForm: false };
  if (scope !== undefined) {
    const trimmed = scope.trim();
    const resource = trimmed.endsWith("/user_impersonation") ? trimmed.slice(0, -"/user_impersonation".length) : scope;
    return { resource: checkedResource("token", resource, scope), azForm: true };
  }
  const uri = parsed.values.get("resource");
  if (uri !== undefined) return { resource: checkedResource("token", uri), azForm: true };
  const type = parsed.values.get("resource-type");
  if (type !== undefined) {
    const resource = AZ_RESOURCE_TYPES[type.toLowerCase()];
    if (resource === undefined || !Object.hasOwn(AZ_RESOURCE_TYPES, type.toLowerCase())) {
      throw new UsageError(
        `Flag "--resource-type" expects one of ${Object.keys(AZ_RESOURCE_TYPES).join(", ")}: got "${type}"`,
        "token",
      );
    }
    return { resource, azForm: true };
  }
  return { resource: AZ_DEFAULT_RESOURCE, azForm: true };
}

/**
 * `--subscription` (or `-s`, `--name`, `-n`, as az's `account` commands take it): printed as the
 * output's `subscription`, and nothing else, since a managed identity's token is the same for
 * every subscription. An ID only: az looks a subscription's name up in its login cache, which a
 * managed identity does not have. `--tenant` is refused as az refuses it for a managed identity
 * account (azure-cli-core `_profile.py`, `get_raw_token`), and, before that, both together.
 */
function subscriptionOf(parsed: Parsed): string {
  const ids = (["subscription", "name"] as const).filter((flag) => parsed.values.has(flag));
  if (ids.length > 1) throw new UsageError(`Flag "--subscription" (or --name) is given more than once`, "token");
  const id = ids[0] === undefined ? undefined : parsed.values.get(ids[0])!;
  if (parsed.values.has("tenant")) {
    throw new UsageError(
      id !== undefined
        ? "Please specify only one of subscription and tenant, not both (as az says)"
        : `${TENANT_REFUSED}: az refuses --tenant for a managed identity, whose tokens come from its own tenant ` +
          "(the output's tenant is the token's tid claim)",
      "token",
    );
  }
  if (id === undefined) return "";
  if (!isGuid(id)) {
    throw new UsageError(
      `--subscription takes a subscription ID here, such as 00000000-0000-0000-0000-000000000000: got "${id}" ` +
        "(az finds a subscription's name in its login cache; a managed identity has none)",
      "token",
    );
  }
  return id;
}

/** `--query`: one of the JMESPath forms scripts use with this command, over az's fields. */
function queryOf(parsed: Parsed): AzQuery | undefined {
  const text = parsed.values.get("query");
  if (text === undefined) return undefined;
  const query = parseQuery(text);
  if (query === undefined) throw new UsageError(`--query takes ${QUERY_FORMS}: got "${text}"`, "token");
  const unknown = unknownFields(query);
  if (unknown.length > 0) {
    throw new UsageError(
      `--query: no field "${unknown[0]}" in the output: its fields are ${AZ_FIELDS.join(", ")}`,
      "token",
    );
  }
  return query;
}

/** The `-o`/`--output` format, any case (az lowercases it), or `undefined`; `--json` is `-o json`. */
function outputOf(parsed: Parsed): AzOutput | undefined {
  const text = parsed.values.get("output");
  const json = parsed.switches.has("json");
  if (text === undefined) return json ? "json" : undefined;
  const output = AZ_OUTPUTS.find((each) => each === text.toLowerCase());
  if (output === undefined) {
    throw new UsageError(`Flag "--output" expects one of ${AZ_OUTPUTS.join(", ")}: got "${text}"`, "token");
  }
  if (json && output !== "json") {
    throw new UsageError(`--json is -o json: give one of them, not --json and --output ${output}`, "token");
  }
  return output;
}
