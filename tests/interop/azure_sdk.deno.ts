/**
 * Interop with the Azure SDK for JavaScript (Deno only: it imports npm: packages, which Bun's
 * and Node's test runners cannot load, so the file name keeps it out of their patterns;
 * tests/run_all.ts passes it to `deno test` by name). The SDK's bearer token policy, which
 * every Azure SDK client uses, takes ManagedIdentityClient as its credential.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { isTokenCredential } from "npm:@azure/core-auth@1.11";
import {
  bearerTokenAuthenticationPolicy,
  createEmptyPipeline,
  createHttpHeaders,
  createPipelineRequest,
  type HttpClient,
  type PipelineRequest,
} from "npm:@azure/core-rest-pipeline@1.25";
import { ManagedIdentityClient, TokenCache } from "../../mod.ts";
import { readClaims, serve } from "../../src/emulator/mod.ts";

/** An HTTP client that records the requests the pipeline sends and answers 200: no network. */
function recordingClient(): HttpClient & { seen: PipelineRequest[] } {
  const seen: PipelineRequest[] = [];
  return {
    seen,
    sendRequest(request) {
      seen.push(request);
      return Promise.resolve({ request, status: 200, headers: createHttpHeaders() });
    },
  };
}

test("the Azure SDK's bearer token policy authenticates with ManagedIdentityClient", async () => {
  const running = await serve({ sources: ["AppService"] });
  try {
    const credential = new ManagedIdentityClient({ env: running.env.AppService, cache: new TokenCache() });
    assert.equal(isTokenCredential(credential), true);
    const pipeline = createEmptyPipeline();
    pipeline.addPolicy(bearerTokenAuthenticationPolicy({ credential, scopes: "https://vault.azure.net/.default" }));
    const http = recordingClient();
    for (let i = 0; i < 3; i++) {
      await pipeline.sendRequest(http, createPipelineRequest({ url: "https://azmi-test.vault.azure.net/secrets/x" }));
    }
    assert.equal(http.seen.length, 3);
    const authorization = http.seen.map((request) => request.headers.get("authorization"));
    assert.match(authorization[0]!, /^Bearer ey/);
    assert.deepEqual(new Set(authorization).size, 1, "the same token on every request");
    const claims = readClaims(authorization[0]!.slice("Bearer ".length))!;
    assert.equal(claims.aud, "https://vault.azure.net");
    assert.equal(claims.appid, running.emulator.systemIdentity.clientId);
    // One endpoint request: the SDK's own token cache and ours both held the token.
    assert.equal(running.emulator.requests.length, 1);
  } finally {
    await running.close();
  }
});
