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
  test("CacheStore.set() given a stamp does not replace an entry written after the stamp was taken", () => {
    const store = cacheStore(new TokenCache());
    const expiresOn = NOW + 60 * MINUTE;
    store.set("k", token(expiresOn, "first"), NOW);
    const before = store.stamp;
    // Reads move no stamp past an entry: a hit between start and end is not a write.
    assert.equal(store.get("k", NOW)?.accessToken, "first");
    assert.equal(store.set("k", token(expiresOn, "older-request"), NOW, before), true);
    const started = store.stamp;
    assert.equal(store.set("k", token(expiresOn, "newer"), NOW), true);
    assert.equal(store.set("k", token(expiresOn, "stale"), NOW, started), false);
    assert.equal(store.get("k", NOW)?.accessToken, "newer");
    // A key with no entry takes the result whatever its stamp.
    assert.equal(store.set("other", token(expiresOn, "late"), NOW, started), true);
    assert.ok(store.stamp > started);
  });

  test("CacheStore.postponeRefresh() holds off refreshes of a key until the given time, whatever is stored meanwhile", () => {
    const store = cacheStore(new TokenCache());
    store.set("k", { ...token(NOW + 60 * MINUTE), refreshOn: NOW + MINUTE }, NOW);
    assert.equal(store.mayRefresh("k", NOW + MINUTE), true);
    store.postponeRefresh("k", NOW + 2 * MINUTE);
    store.postponeRefresh("no-entry", NOW + 2 * MINUTE);
    assert.equal(store.mayRefresh("k", NOW + 2 * MINUTE - 1), false);
    assert.equal(store.mayRefresh("no-entry", NOW + 2 * MINUTE - 1), false);
    // A new token, or none, does not lift the hold.
    store.set("k", { ...token(NOW + 60 * MINUTE), refreshOn: NOW }, NOW);
    assert.equal(store.mayRefresh("k", NOW + 2 * MINUTE - 1), false);
    store.delete("k");
    assert.equal(store.mayRefresh("k", NOW + 2 * MINUTE - 1), false);
    assert.equal(store.mayRefresh("k", NOW + 2 * MINUTE), true);
    assert.equal(store.mayRefresh("no-entry", NOW + 2 * MINUTE), true);
    assert.equal(store.mayRefresh("unknown", NOW), true);
  });

  test("CacheStore.mayRefresh() is false while a request for the key is in flight", () => {
    const store = cacheStore(new TokenCache());
    store.flights.set("k", {
      promise: new Promise(() => {}),
      controller: new AbortController(),
      waiters: 0,
      background: true,
    });
    assert.equal(store.mayRefresh("k", NOW), false);
    assert.equal(store.mayRefresh("j", NOW), true);
  });

  test("CacheStore.postponeRefresh() remembers at most maxEntries keys, forgetting the oldest", () => {
    const store = cacheStore(new TokenCache({ maxEntries: 2 }));
    for (const key of ["a", "b", "c"]) store.postponeRefresh(key, NOW + MINUTE);
    assert.equal(store.mayRefresh("a", NOW), true);
    assert.equal(store.mayRefresh("b", NOW), false);
    assert.equal(store.mayRefresh("c", NOW), false);
    // Postponing again makes a key the newest.
    store.postponeRefresh("b", NOW + MINUTE);
    store.postponeRefresh("d", NOW + MINUTE);
    assert.equal(store.mayRefresh("b", NOW), false);
    assert.equal(store.mayRefresh("c", NOW), true);
    assert.equal(store.mayRefresh("d", NOW), false);
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

  test("cacheKey() is injective: clientId a\\0b for c is not clientId a for b\\0c, whatever the parts contain", () => {
    assert.notEqual(
      cacheKey("AppService", { kind: "clientId", value: "a\u0000b" }, "c"),
      cacheKey("AppService", { kind: "clientId", value: "a" }, "b\u0000c"),
    );
    const parts = ["", "a", "b", "a\u0000b", "\u0000", '"', '","', "\\", "null", "[", "]"];
    const tuples = new Set<string>();
    const keys = new Set<string>();
    for (const value of parts) {
      for (const resource of parts) {
        for (const endpoint of [...parts, undefined]) {
          for (
            const identity of [SYSTEM, { kind: "clientId", value } as const, { kind: "resourceId", value } as const]
          ) {
            const id = identity.kind === "system" ? "" : identity.value;
            tuples.add(JSON.stringify([identity.kind, id, resource, endpoint ?? 0]));
            keys.add(cacheKey("AppService", identity, resource, endpoint));
          }
        }
      }
    }
    assert.equal(keys.size, tuples.size);
  });

  test("cacheKey() distinguishes endpoints, and an endpoint from none", () => {
    const a = cacheKey("AppService", SYSTEM, resource, "http://127.0.0.1:41741/token");
    assert.notEqual(a, cacheKey("AppService", SYSTEM, resource, "http://127.0.0.1:41742/token"));
    assert.notEqual(a, cacheKey("AppService", SYSTEM, resource));
    assert.equal(a, cacheKey("AppService", SYSTEM, resource, "http://127.0.0.1:41741/token"));
  });
});
