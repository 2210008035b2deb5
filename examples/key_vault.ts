/**
 * Read a Key Vault secret with the machine's managed identity, using nothing but fetch.
 *
 *   deno run --allow-env --allow-net examples/key_vault.ts https://<vault>.vault.azure.net <secret-name>
 *   node examples/key_vault.ts https://<vault>.vault.azure.net <secret-name>
 *
 * Set AZURE_CLIENT_ID to use a user-assigned identity. Exits 2 on a usage error and 1 when the
 * token or the secret cannot be had.
 */

import { ManagedIdentityClient, ManagedIdentityError } from "../mod.ts";

interface ProcessView {
  argv?: string[];
  env?: Record<string, string | undefined>;
  exit?: (code: number) => never;
}
const runtime = globalThis as {
  Deno?: { args: string[]; env: { get(n: string): string | undefined }; exit(code: number): never };
} & {
  process?: ProcessView;
};
/** Ends the process with `code` on Deno, Bun and Node. */
function exit(code: number): never {
  if (runtime.Deno) runtime.Deno.exit(code);
  if (runtime.process?.exit) runtime.process.exit(code);
  throw new Error(`exit ${code}`);
}
const args = runtime.Deno?.args ?? runtime.process?.argv?.slice(2) ?? [];
const [vault, name] = args;
if (!vault || !name) {
  console.error("Usage: key_vault.ts <vault-url> <secret-name>");
  exit(2);
} else {
  const clientId = runtime.Deno?.env.get("AZURE_CLIENT_ID") ?? runtime.process?.env?.AZURE_CLIENT_ID;
  const client = new ManagedIdentityClient(clientId ? { clientId } : {});
  try {
    const { accessToken } = await client.acquireToken("https://vault.azure.net");
    const response = await fetch(`${vault}/secrets/${encodeURIComponent(name)}?api-version=7.4`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    const body = await response.json() as { value?: string; error?: { message?: string } };
    if (!response.ok) {
      console.error(body.error?.message ?? `Key Vault answered ${response.status}`);
      exit(1);
    }
    console.log(`secret "${name}" has ${body.value?.length ?? 0} characters`);
  } catch (error) {
    if (error instanceof ManagedIdentityError) {
      console.error(`${error.code}: ${error.message}`);
      exit(1);
    } else {
      throw error;
    }
  }
}
