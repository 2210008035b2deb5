/**
 * ManagedIdentityClient in the Azure SDK's `ChainedTokenCredential` (Deno only: it imports npm:
 * packages; tests/run_all.ts passes it to `deno test` by name). The chain moves on to the next
 * credential only when an error's `name` is `CredentialUnavailableError` (docs/retries.md):
 * with IMDS absent, refused or silent, our client must say so within about a second, so the
 * developer's credential behind it answers; with an endpoint that answers, our token wins; with
 * an endpoint that refuses, the chain must stop with our error rather than hide it.
 * Loopback only: IMDS is pointed at 127.0.0.1 through the client's `env` option.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { type AccessToken, ChainedTokenCredential, type TokenCredential } from "npm:@azure/identity@4";
import { CredentialUnavailableError, ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../../mod.ts";
import { createEmulator, readClaims, serve } from "../../src/emulator/mod.ts";
import { closedPort, silentServer } from "../helpers/sockets.ts";

const SCOPE = "https://vault.azure.net/.default";
const STUB_TOKEN = "stub-token";

/** The developer's credential of the README's recipe: answers at once, counts its calls. */
function stubCredential(): TokenCredential & { calls: number } {
  const stub = {
    calls: 0,
    getToken(): Promise<AccessToken> {
      stub.calls++;
      return Promise.resolve({ token: STUB_TOKEN, expiresOnTimestamp: Date.now() + 3600_000 });
    },
  };
  return stub;
}

/** Every error reachable from `error` through `cause` and an AggregateAuthenticationError's `errors`. */
function errorChain(error: unknown, seen = new Set<unknown>()): unknown[] {
  if (error === undefined || error === null || seen.has(error)) return [];
  seen.add(error);
  const { cause, errors } = error as { cause?: unknown; errors?: unknown };
  return [
    error,
    ...errorChain(cause, seen),
    ...(Array.isArray(errors) ? errors.flatMap((inner) => errorChain(inner, seen)) : []),
  ];
}

/** The chain's token and how long it took, in ms. */
async function timed(chain: TokenCredential): Promise<{ token: string | undefined; ms: number }> {
  const started = performance.now();
  const result = await chain.getToken(SCOPE);
  return { token: result?.token, ms: performance.now() - started };
}

test("ChainedTokenCredential moves on to the next credential within 1.5 s when IMDS refuses the connection", async () => {
  const env = { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${await closedPort()}` };
  const client = new ManagedIdentityClient({ env, cache: new TokenCache() });
  const stub = stubCredential();
  const { token, ms } = await timed(new ChainedTokenCredential(client, stub));
  assert.equal(token, STUB_TOKEN);
  assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`);
  assert.equal(stub.calls, 1);
  // Our client was asked, and remembers the absence: a second call fails at once, saying so.
  const again = await client.acquireToken("https://vault.azure.net").catch((error: unknown) => error);
  assert.ok(again instanceof CredentialUnavailableError, String(again));
  assert.match(again.message, /cannot be reached .*found \d+(\.\d)? s ago/);
});

test("ChainedTokenCredential moves on to the next credential within 1.5 s when IMDS accepts and never answers", async () => {
  const server = await silentServer();
  try {
    const client = new ManagedIdentityClient({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: server.origin },
      cache: new TokenCache(),
    });
    const stub = stubCredential();
    const { token, ms } = await timed(new ChainedTokenCredential(client, stub));
    assert.equal(token, STUB_TOKEN);
    assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`);
    assert.equal(stub.calls, 1);
    assert.equal(server.connections(), 1, "one probe, no retries");
  } finally {
    await server.close();
  }
});

test("ChainedTokenCredential returns our token when IMDS answers, and never asks the next credential", async () => {
  const running = await serve({ sources: ["DefaultToIMDS"] });
  try {
    const client = new ManagedIdentityClient({ env: running.env.DefaultToIMDS, cache: new TokenCache() });
    const stub = stubCredential();
    const { token } = await timed(new ChainedTokenCredential(client, stub));
    assert.ok(token !== undefined && token !== STUB_TOKEN, "our token, not the stub's");
    const claims = readClaims(token)!;
    assert.equal(claims.aud, "https://vault.azure.net");
    assert.equal(claims.appid, running.emulator.systemIdentity.clientId);
    assert.equal(stub.calls, 0);
    // The probe (no Metadata header, answered 400), then the token request.
    assert.deepEqual(running.emulator.requests.map((request) => request.status), [400, 200]);
  } finally {
    await running.close();
  }
});

test("ChainedTokenCredential stops with our request_failed error when the endpoint answers 500", async () => {
  const emulator = createEmulator({ faults: { AppService: [{ status: 500 }] } });
  try {
    const client = new ManagedIdentityClient({
      env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: emulator.secret },
      fetch: emulator.handler("AppService"),
      retry: false,
      cache: new TokenCache(),
    });
    assert.equal(client.source, "AppService");
    const stub = stubCredential();
    const thrown = await new ChainedTokenCredential(client, stub).getToken(SCOPE).then(
      (token) => assert.fail(`expected an error, got ${token?.token === STUB_TOKEN ? "the stub's" : "a"} token`),
      (error: unknown) => error,
    );
    const ours = errorChain(thrown).find((error): error is ManagedIdentityError =>
      error instanceof ManagedIdentityError
    );
    assert.ok(ours, `no ManagedIdentityError in ${String(thrown)}`);
    assert.equal(ours.code, "request_failed");
    assert.equal(ours.name, "ManagedIdentityError");
    assert.equal(ours.status, 500);
    assert.equal(stub.calls, 0, "a refusal is not an absence: the chain does not move on");
  } finally {
    await emulator.cleanup();
  }
});

test("the README's recipe type-checks: ManagedIdentityClient is a TokenCredential to ChainedTokenCredential", () => {
  // Built only (no token is asked for, so nothing is sent): `deno check` proves the types fit.
  const developerCredential: TokenCredential = stubCredential();
  const chain: TokenCredential = new ChainedTokenCredential(new ManagedIdentityClient(), developerCredential);
  assert.ok(chain instanceof ChainedTokenCredential);
  const asCredential: TokenCredential = new ManagedIdentityClient({ env: {} });
  assert.equal(typeof asCredential.getToken, "function");
});
