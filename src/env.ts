/**
 * Reading the process environment on Deno, Bun and Node, without writing it or caching it.
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import type { EnvRecord } from "./types.ts";

/** Reads one variable; `undefined` when unset or empty. */
export type EnvReader = (name: string) => string | undefined;

/** Every variable the module may read, for Deno's `--allow-env=` list. */
export const ENV_NAMES: readonly string[] = [
  "IDENTITY_ENDPOINT",
  "IDENTITY_HEADER",
  "IDENTITY_SERVER_THUMBPRINT",
  "IMDS_ENDPOINT",
  "MSI_ENDPOINT",
  "MSI_SECRET",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST",
  "DEFAULT_IDENTITY_CLIENT_ID",
  "AZURE_FEDERATED_TOKEN_FILE",
  "AZURE_TENANT_ID",
  "AZURE_CLIENT_ID",
  "AZURE_AUTHORITY_HOST",
  "ProgramData",
  "ProgramFiles",
];

interface RuntimeView {
  Deno?: { env: { get(name: string): string | undefined } };
  process?: { env: Record<string, string | undefined> };
}

function readProcessEnv(name: string): string | undefined {
  const runtime = globalThis as RuntimeView;
  try {
    // Deno first: its `process` shim reads through the same permission check anyway.
    if (runtime.Deno?.env) return runtime.Deno.env.get(name);
    return runtime.process?.env[name];
  } catch (cause) {
    throw new ManagedIdentityError(
      "invalid_configuration",
      `Cannot read environment variable "${name}": the runtime refused; run it with --allow-env=${name} (docs/permissions.md lists every one it reads)`,
      { cause },
    );
  }
}

/**
 * A reader over `env` when given, else over the process environment. The process environment
 * is read at each call, never cached, so a variable set later is seen.
 */
export function envReader(env?: EnvRecord): EnvReader {
  return (name) => {
    const value = env ? env[name] : readProcessEnv(name);
    return value === undefined || value === "" ? undefined : value;
  };
}
