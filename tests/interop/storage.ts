/**
 * Child process of `deno task interop` (tests/interop/run.ts): `@azure/storage-blob` with
 * ManagedIdentityClient as its credential, against Azurite started with `--oauth basic` over
 * HTTPS, which checks each bearer token's issuer, audience and times.
 *
 *   <node|bun|deno run ...> tests/interop/storage.ts <blob endpoint URL> <container name>
 *
 * `AZMI_INTEROP_CLIENT_ENV` holds the environment record our client gets as its `env` option
 * (an emulated source's variables: the child's own environment has none of them); its `fetch`
 * is the default. Azurite's certificate is trusted through the development CA the runner passes
 * in `NODE_EXTRA_CA_CERTS` or `DENO_CERT`.
 *
 * 1. Create a container, upload a blob (random bytes), download it, compare the bytes.
 * 2. Negative control: the same client's token for `https://vault.azure.net` is refused.
 *
 * Asserts here (node:assert) and prints what the runner asserts again: the claims of both tokens
 * and the status of the refusal.
 */

import type * as StorageBlob from "npm:@azure/storage-blob@12.34";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, randomBytes } from "node:crypto";
import process from "node:process";
import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import { readClaims } from "../../src/emulator/mod.ts";
import { describeError, loadPackage, report } from "./packages.ts";

const [endpoint, containerName] = process.argv.slice(2);
const clientEnv = JSON.parse(process.env.AZMI_INTEROP_CLIENT_ENV ?? "null") as Record<string, string> | null;
if (!endpoint || !containerName || !clientEnv) {
  console.error("Usage: AZMI_INTEROP_CLIENT_ENV='{...}' storage.ts <blob endpoint URL> <container name>");
  process.exit(2);
}

const steps: Record<string, unknown> = {};
try {
  const { BlobServiceClient } = await loadPackage<typeof StorageBlob>("@azure/storage-blob");
  const client = new ManagedIdentityClient({ env: clientEnv, cache: new TokenCache() });
  // No retries: a refusal is the answer, and a hang would only slow the run down.
  const options = { retryOptions: { maxTries: 1, tryTimeoutInMs: 30_000 } };

  // 1. The round trip, with our client as the credential (scope https://storage.azure.com/.default).
  const service = new BlobServiceClient(endpoint, client, options);
  const container = service.getContainerClient(containerName);
  await container.create();
  steps.created = true;
  const data = randomBytes(256 * 1024 + 7);
  const blob = container.getBlockBlobClient("interop/hello.bin");
  await blob.uploadData(data, { blobHTTPHeaders: { blobContentType: "application/octet-stream" } });
  const downloaded = await blob.downloadToBuffer();
  assert.equal(Buffer.compare(downloaded, data), 0, "the downloaded bytes are the uploaded ones");
  const names: string[] = [];
  for await (const item of container.listBlobsFlat()) names.push(item.name);
  assert.deepEqual(names, ["interop/hello.bin"]);
  steps.bytes = data.length;
  steps.sha256 = createHash("sha256").update(downloaded).digest("hex");
  const storageToken = (await client.acquireToken("https://storage.azure.com")).accessToken;
  steps.storageClaims = readClaims(storageToken);

  // 2. The same identity's token for another audience: Azurite must refuse it.
  let vaultToken = "";
  const wrongAudience = {
    async getToken(_scopes: string | string[], options?: { abortSignal?: AbortSignal }) {
      const token = await client.getToken("https://vault.azure.net/.default", options);
      vaultToken = token.token;
      return token;
    },
  };
  const refused = new BlobServiceClient(endpoint, wrongAudience, options)
    .getContainerClient(containerName).getBlockBlobClient("interop/hello.bin");
  let refusal: Record<string, unknown> | undefined;
  try {
    await refused.downloadToBuffer();
  } catch (error) {
    refusal = { ...describeError(error), errorCode: (error as { code?: unknown }).code };
  }
  assert.ok(refusal, "Azurite served a blob for a token whose audience is https://vault.azure.net");
  assert.ok(refusal.status === 403 || refusal.status === 401, `refused with ${refusal.status}, not 401 or 403`);
  steps.refusal = refusal;
  steps.vaultClaims = readClaims(vaultToken);

  await container.delete();
  await report({ ok: true, ...steps });
} catch (error) {
  await report({ ok: false, ...steps, error: describeError(error) });
}
