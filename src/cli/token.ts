/**
 * `azmi token <resource>`: prints an access token (or, with `--json`, the token and its expiry)
 * and nothing else; and the creation of the client that `token` and `doctor` share.
 * @module
 */

import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import type { IdentityOptions, TokenResult } from "../../mod.ts";
import type { CliIo } from "../cli.ts";
import { IDENTITY_FLAGS, identityOf, onePositional, parseArgs, TIMEOUT_FLAG, timeoutOf, UsageError } from "./args.ts";
import { deadlineMessage, endedByDeadline, EXIT_CODES, startDeadline } from "./common.ts";

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
    });
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new UsageError(error.message, command);
    throw error;
  }
}

/**
 * `azmi token <resource> [identity flag] [--json] [--timeout MS]`. Library errors are printed by
 * `main` (one line, see `errorLine`); the end of the `--timeout` deadline is printed here.
 */
export async function tokenCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs("token", args, { ...IDENTITY_FLAGS, json: null, timeout: TIMEOUT_FLAG });
  const resource = onePositional("token", parsed, "resource", true)!;
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
  io.stdout(
    parsed.switches.has("json") ? `${JSON.stringify(tokenJson(result), null, 2)}\n` : `${result.accessToken}\n`,
  );
  return EXIT_CODES.ok;
}

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
