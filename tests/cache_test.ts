import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TokenCache } from "../mod.ts";
import { type CachedToken, cacheKey, cacheStore, EXPIRY_MARGIN_MS } from "../src/cache.ts";
import type { Identity } from "../src/identity.ts";

const NOW = 1_700_000_000_000;
const MINUTE = 60_000;
const SYSTEM: Identity = { kind: "system" };

function token(expiresOn: number, accessToken = "token-value"): CachedToken {
  return {
    accessToken,
    tokenType: "Bearer",
    expiresOn,
    resource: "https://vault.azure.net",
    source: "DefaultToIMDS",
  };
}

describe("TokenCache", () => {
  test("TokenCache starts empty", () => {
    const cache = new TokenCache();
    assert.equal(cache.size, 0);
    assert.equal(cacheStore(cache).maxEntries, 1000);
  });

  test("TokenCache takes maxEntries", () => {
    assert.equal(cacheStore(new TokenCache({ maxEntries: 1 })).maxEntries, 1);
    assert.equal(cacheStore(new TokenCache({ maxEntries: 25 })).maxEntries, 25);
  });

  test("TokenCache throws a RangeError naming maxEntries for 0, -1 and 1.5", () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => new TokenCache({ maxEntries }),
        (error: unknown) => error instanceof RangeError && /maxEntries/.test(error.message),
        `maxEntries ${maxEntries}`,
      );
    }
  });

  test("TokenCache.size counts stored tokens and clear() drops them all", () => {
    const cache = new TokenCache();
    const store = cacheStore(cache);
    store.set("a", token(NOW + 60 * MINUTE), NOW);
    store.set("b", token(NOW + 60 * MINUTE), NOW);
    assert.equal(cache.size, 2);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(store.get("a", NOW), undefined);
  });

  test("cacheStore() returns the same store for the same cache and another for another cache", () => {
    const cache = new TokenCache();
    assert.equal(cacheStore(cache), cacheStore(cache));
    assert.notEqual(cacheStore(cache), cacheStore(new TokenCache()));
  });
});

describe("CacheStore", () => {
  test("CacheStore.get() returns a token until exactly 5 minutes before it expires", () => {
    assert.equal(EXPIRY_MARGIN_MS, 5 * MINUTE);
    const store = cacheStore(new TokenCache());
    const expiresOn = NOW + 60 * MINUTE;
    assert.equal(store.set("k", token(expiresOn), NOW), true);
    assert.equal(store.get("k", NOW)?.accessToken, "token-value");
    assert.equal(store.get("k", expiresOn - 5 * MINUTE - 1)?.accessToken, "token-value");
    assert.equal(store.get("k", expiresOn - 5 * MINUTE), undefined);
  });

  test("CacheStore.get() drops a token past the 5-minute rule", () => {
    const store = cacheStore(new TokenCache());
    const expiresOn = NOW + 60 * MINUTE;
    store.set("k", token(expiresOn), NOW);
    assert.equal(store.get("k", expiresOn - MINUTE), undefined);
    assert.equal(store.size, 0);
    // Gone for good: an earlier clock does not bring it back.
    assert.equal(store.get("k", NOW), undefined);
  });

  test("CacheStore.set() does not store a token expiring within 5 minutes", () => {
    const store = cacheStore(new TokenCache());
    assert.equal(store.set("a", token(NOW + 5 * MINUTE), NOW), false);
    assert.equal(store.set("b", token(NOW + 4 * MINUTE), NOW), false);
    assert.equal(store.set("c", token(NOW - MINUTE), NOW), false);
    assert.equal(store.size, 0);
    assert.equal(store.set("d", token(NOW + 5 * MINUTE + 1), NOW), true);
    assert.equal(store.size, 1);
  });

  test("CacheStore.set() replaces the token under the same key", () => {
    const store = cacheStore(new TokenCache());
    store.set("k", token(NOW + 60 * MINUTE, "first"), NOW);
    store.set("k", token(NOW + 60 * MINUTE, "second"), NOW);
    assert.equal(store.size, 1);
    assert.equal(store.get("k", NOW)?.accessToken, "second");
  });

  test("CacheStore.set() evicts the least recently stored token beyond maxEntries", () => {
    const store = cacheStore(new TokenCache({ maxEntries: 2 }));
    const expiresOn = NOW + 60 * MINUTE;
    store.set("a", token(expiresOn, "a"), NOW);
    store.set("b", token(expiresOn, "b"), NOW);
    store.set("c", token(expiresOn, "c"), NOW);
    assert.equal(store.size, 2);
    assert.equal(store.get("a", NOW), undefined);
    assert.equal(store.get("b", NOW)?.accessToken, "b");
    assert.equal(store.get("c", NOW)?.accessToken, "c");
  });

  test("CacheStore.get() refreshes recency so the least recently used token is evicted", () => {
    const store = cacheStore(new TokenCache({ maxEntries: 2 }));
    const expiresOn = NOW + 60 * MINUTE;
    store.set("a", token(expiresOn, "a"), NOW);
    store.set("b", token(expiresOn, "b"), NOW);
    assert.equal(store.get("a", NOW)?.accessToken, "a");
    store.set("c", token(expiresOn, "c"), NOW);
    assert.equal(store.size, 2);
    assert.equal(store.get("b", NOW), undefined);
    assert.equal(store.get("a", NOW)?.accessToken, "a");
    assert.equal(store.get("c", NOW)?.accessToken, "c");
  });

  test("CacheStore.set() keeps one token with maxEntries 1", () => {
    const store = cacheStore(new TokenCache({ maxEntries: 1 }));
    store.set("a", token(NOW + 60 * MINUTE, "a"), NOW);
    store.set("b", token(NOW + 60 * MINUTE, "b"), NOW);
    assert.equal(store.size, 1);
    assert.equal(store.get("b", NOW)?.accessToken, "b");
  });

  test("CacheStore.delete() drops one token", () => {
    const store = cacheStore(new TokenCache());
    store.set("a", token(NOW + 60 * MINUTE), NOW);
    store.set("b", token(NOW + 60 * MINUTE), NOW);
    store.delete("a");
    assert.equal(store.size, 1);
    assert.equal(store.get("a", NOW), undefined);
  });
});

describe("cacheKey()", () => {
  const resource = "https://vault.azure.net";

  test("cacheKey() distinguishes sources", () => {
    assert.notEqual(cacheKey("DefaultToIMDS", SYSTEM, resource), cacheKey("AppService", SYSTEM, resource));
  });

  test("cacheKey() distinguishes identity kinds with the same value", () => {
    const value = "00000000-0000-0000-0000-000000000001";
    const keys = new Set([
      cacheKey("AppService", SYSTEM, resource),
      cacheKey("AppService", { kind: "clientId", value }, resource),
      cacheKey("AppService", { kind: "objectId", value }, resource),
      cacheKey("AppService", { kind: "resourceId", value }, resource),
    ]);
    assert.equal(keys.size, 4);
  });

  test("cacheKey() distinguishes identity values", () => {
    assert.notEqual(
      cacheKey("AppService", { kind: "clientId", value: "a" }, resource),
      cacheKey("AppService", { kind: "clientId", value: "b" }, resource),
    );
  });

  test("cacheKey() compares identity values case-insensitively", () => {
    assert.equal(
      cacheKey("AppService", { kind: "clientId", value: "ABCDEF00-0000-0000-0000-00000000000A" }, resource),
      cacheKey("AppService", { kind: "clientId", value: "abcdef00-0000-0000-0000-00000000000a" }, resource),
    );
    assert.equal(
      cacheKey("AppService", { kind: "resourceId", value: "/subscriptions/S/resourceGroups/RG" }, resource),
      cacheKey("AppService", { kind: "resourceId", value: "/subscriptions/s/resourcegroups/rg" }, resource),
    );
  });

  test("cacheKey() distinguishes resources", () => {
    assert.notEqual(
      cacheKey("AppService", SYSTEM, "https://vault.azure.net"),
      cacheKey("AppService", SYSTEM, "https://storage.azure.com"),
    );
  });
});
