/**
 * What ManagedIdentityClient's token cache holds: a bounded TokenCache evicts the least recently
 * used token, entries are kept apart per endpoint and identity (and shared where both are the
 * same), and a claims token is not replaced by an older request that finishes after it.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TokenCache } from "../mod.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { turn } from "./helpers/checks.ts";
import {
  APP_SERVICE,
  CLAIMS,
  firstToken,
  GRAPH,
  heldEndpoint,
  MINUTE,
  NOW,
  STORAGE,
  tokenReply,
  VAULT,
} from "./helpers/lifecycle.ts";

describe("ManagedIdentityClient cache bound", () => {
  test("acquireToken() with TokenCache maxEntries 2 evicts the least recently used token and requests it again", async () => {
    const cache = new TokenCache({ maxEntries: 2 });
    const fake = recorder((_request, index) => tokenReply(`token-${index}`));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, cache });
    await client.acquireToken(VAULT);
    await client.acquireToken(STORAGE);
    // Reading VAULT makes STORAGE the least recently used.
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    await client.acquireToken(GRAPH);
    assert.equal(cache.size, 2);
    assert.equal(fake.seen.length, 3);
    const vault = await client.acquireToken(VAULT);
    assert.equal(vault.fromCache, true);
    assert.equal(vault.accessToken, "token-0");
    const storage = await client.acquireToken(STORAGE);
    assert.equal(storage.fromCache, false);
    assert.equal(storage.accessToken, "token-3");
    assert.equal(fake.seen.length, 4);
    assert.equal(fake.seen[3]?.url.searchParams.get("resource"), STORAGE);
    assert.equal(cache.size, 2);
  });
});

describe("ManagedIdentityClient cache entries per endpoint and identity", () => {
  test("acquireToken() does not serve clientId a\\0b for resource c the token of clientId a for resource b\\0c", async () => {
    const cache = new TokenCache();
    const fake = recorder((_request, index) => tokenReply(`token-${index}`));
    const a = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, cache, clientId: "a" });
    const ab = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, cache, clientId: "a\u0000b" });
    assert.equal((await a.acquireToken("b\u0000c")).accessToken, "token-0");
    const other = await ab.acquireToken("c");
    assert.equal(other.fromCache, false);
    assert.equal(other.accessToken, "token-1");
    assert.equal(fake.seen.length, 2);
    assert.equal(cache.size, 2);
  });

  test("acquireToken() does not share tokens between App Service clients with different IDENTITY_ENDPOINT on one TokenCache", async () => {
    const cache = new TokenCache();
    const fake = recorder((request) => tokenReply(`token-${new URL(request.url).port}`));
    const first = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, cache });
    const second = testClient({
      env: { ...APP_SERVICE, IDENTITY_ENDPOINT: "http://127.0.0.1:41742/token" },
      fetch: fake.fetch,
      retry: false,
      cache,
    });
    assert.equal((await first.acquireToken(VAULT)).accessToken, "token-41741");
    const other = await second.acquireToken(VAULT);
    assert.equal(other.fromCache, false);
    assert.equal(other.accessToken, "token-41742");
    assert.equal(fake.seen.length, 2);
    assert.equal((await first.acquireToken(VAULT)).accessToken, "token-41741");
    assert.equal((await second.acquireToken(VAULT)).accessToken, "token-41742");
    assert.equal(cache.size, 2);
  });

  test("acquireToken() does not share tokens between IMDS clients with different AZURE_POD_IDENTITY_AUTHORITY_HOST", async () => {
    const cache = new TokenCache();
    const fake = recorder((request) => tokenReply(`token-${new URL(request.url).port}`));
    const first = testClient({ env: {}, fetch: fake.fetch, retry: false, cache });
    const second = testClient({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:2579" },
      fetch: fake.fetch,
      retry: false,
      cache,
    });
    assert.equal(first.source, "DefaultToIMDS");
    assert.equal(second.source, "DefaultToIMDS");
    await first.acquireToken(VAULT);
    assert.equal((await second.acquireToken(VAULT)).fromCache, false);
    assert.equal(fake.seen.length, 2);
  });

  test("acquireToken() serves a client the token cached by another client of the same endpoint and identity", async () => {
    const cache = new TokenCache();
    const fake = recorder((_request, index) => tokenReply(`token-${index}`));
    const id = "ABCDEF00-0000-0000-0000-00000000000A";
    const first = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, cache, clientId: id });
    const second = testClient({
      env: { ...APP_SERVICE },
      fetch: fake.fetch,
      retry: false,
      cache,
      clientId: id.toLowerCase(),
    });
    assert.equal((await first.acquireToken(VAULT)).accessToken, "token-0");
    const shared = await second.acquireToken(VAULT);
    assert.equal(shared.fromCache, true);
    assert.equal(shared.accessToken, "token-0");
    assert.equal(fake.seen.length, 1);
    // Resources stay case-sensitive.
    assert.equal((await second.acquireToken(VAULT.toUpperCase())).fromCache, false);
  });
});

describe("ManagedIdentityClient claims token kept over older results", () => {
  test("acquireToken() keeps the claims token cached when a plain request started before it finishes after it", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const plain = client.acquireToken(VAULT);
    await turn();
    const withClaims = client.acquireToken(VAULT, { claims: CLAIMS });
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[1]!.answer.resolve(tokenReply("claims-token"));
    assert.equal((await withClaims).accessToken, "claims-token");
    endpoint.calls[0]!.answer.resolve(tokenReply("old-token"));
    // The plain caller asked before the claims: it still gets its own token.
    const old = await plain;
    assert.equal(old.accessToken, "old-token");
    assert.equal(old.fromCache, false);
    const next = await client.acquireToken(VAULT);
    assert.equal(next.accessToken, "claims-token");
    assert.equal(next.fromCache, true);
    assert.equal(endpoint.seen.length, 2);
  });

  test("acquireToken() keeps the claims token cached when a background refresh started before it finishes after it", async () => {
    let now = NOW;
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false }, { now: () => now });
    await firstToken(client, endpoint);
    now = NOW + 10 * MINUTE;
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
    await turn();
    assert.equal(endpoint.seen.length, 2);
    const withClaims = client.acquireToken(VAULT, { claims: CLAIMS });
    await turn();
    assert.equal(endpoint.seen.length, 3);
    endpoint.calls[2]!.answer.resolve(tokenReply("claims-token"));
    assert.equal((await withClaims).accessToken, "claims-token");
    endpoint.calls[1]!.answer.resolve(tokenReply("refreshed-token"));
    await turn();
    const next = await client.acquireToken(VAULT);
    assert.equal(next.accessToken, "claims-token");
    assert.equal(next.fromCache, true);
    assert.equal(endpoint.seen.length, 3);
  });
});
