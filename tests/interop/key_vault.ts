/**
 * Child process of `deno task interop` (tests/interop/run.ts): `@azure/keyvault-secrets` with
 * ManagedIdentityClient as its credential, against the runner's local vault (local_vault.ts),
 * which answers Key Vault's challenges: first the bearer challenge that names the resource, then,
 * on the second read, a CAE claims challenge.
 *
 *   <node|bun|deno run ...> tests/interop/key_vault.ts <vault URL> <secret name>
 *
 * `AZMI_INTEROP_CLIENT_ENV` holds the environment record our client gets as its `env` option
 * (the emulator's workload identity, whose token requests carry the claims to Entra's endpoint);
 * the child's own environment has none of those variables. The vault's certificate is trusted
 * through the development CA the runner passes in `NODE_EXTRA_CA_CERTS` or `DENO_CERT`.
 * The vault is on 127.0.0.1, not `*.vault.azure.net`, hence
 * `disableChallengeResourceVerification` (its HTTPS is still required by the SDK).
 */

import type * as KeyVaultSecrets from "npm:@azure/keyvault-secrets@4.12";
import assert from "node:assert/strict";
import process from "node:process";
import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import { describeError, loadPackage, report } from "./packages.ts";

const [vaultUrl, secretName] = process.argv.slice(2);
const clientEnv = JSON.parse(process.env.AZMI_INTEROP_CLIENT_ENV ?? "null") as Record<string, string> | null;
if (!vaultUrl || !secretName || !clientEnv) {
  console.error("Usage: AZMI_INTEROP_CLIENT_ENV='{...}' key_vault.ts <vault URL> <secret name>");
  process.exit(2);
}

const reads: string[] = [];
try {
  const { SecretClient } = await loadPackage<typeof KeyVaultSecrets>("@azure/keyvault-secrets");
  const client = new ManagedIdentityClient({ env: clientEnv, cache: new TokenCache() });
  const secrets = new SecretClient(vaultUrl, client, {
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
  // The first read goes through the bearer challenge, the second through the claims challenge.
  for (let i = 0; i < 2; i++) {
    const secret = await secrets.getSecret(secretName);
    assert.equal(secret.name, secretName);
    assert.ok(secret.value, "the secret has a value");
    reads.push(secret.value);
  }
  await report({ ok: true, reads });
} catch (error) {
  await report({ ok: false, reads, error: describeError(error) });
}
