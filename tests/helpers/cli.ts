/**
 * What the CLI's tests (tests/cli*_test.ts) share: an App Service environment, `run` (main() with
 * a fake environment, capturing what it prints) and an emulator's handler that records what it saw.
 */

import type { EnvRecord, FetchLike } from "../../mod.ts";
import { type CliIo, main } from "../../src/cli.ts";
import type { Emulator } from "../../src/emulator/mod.ts";
import { INTERNAL, type InternalOptions } from "../../src/internal.ts";

export const VAULT = "https://vault.azure.net";
export const SECRET = "s3cret-identity-header-value";
export const THUMBPRINT = "9B765EBD524777EF0B3DAF630C3B61E669DE4254";
export const APP_SERVICE: EnvRecord = {
  IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token",
  IDENTITY_HEADER: SECRET,
};

/** What `azmi` did: its exit code and what it printed on stdout and stderr. */
export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/**
 * Runs `main` with an env record, a fake fetch and, for the tests that need it, the client's
 * internal seam (platform, file system); captures what it prints.
 */
export async function run(
  args: string[],
  options: Partial<Pick<CliIo, "env" | "fetch" | "until">> & { internal?: InternalOptions } = {},
): Promise<CliRun> {
  let out = "";
  let err = "";
  const { internal, ...rest } = options;
  const code = await main(args, {
    env: {},
    ...rest,
    stdout: (text) => out += text,
    stderr: (text) => err += text,
    ...(internal ? { [INTERNAL]: internal } : {}),
  });
  return { code, out, err };
}

/** An emulator's handler that also records the requests it saw and the tokens it issued. */
export function emulatedEndpoint(emulator: Emulator, source: Parameters<Emulator["handler"]>[0]) {
  const handler = emulator.handler(source);
  const requests: Request[] = [];
  const tokens: string[] = [];
  const fetch: FetchLike = async (request) => {
    requests.push(request);
    const response = await handler(request);
    const body = await response.clone().json().catch(() => ({}));
    if (typeof body.access_token === "string") tokens.push(body.access_token);
    return response;
  };
  return { fetch, requests, tokens };
}
