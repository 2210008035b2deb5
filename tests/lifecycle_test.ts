/**
 * ManagedIdentityClient's calls in flight: concurrent callers share one request per resource and
 * cache (single flight), each caller's abort ends only its own wait, forceRefresh and claims skip
 * the cache, events are emitted once, no failure is left as an unhandled rejection, each caller
 * gets its own result, and the default timeout is the one documented. Proactive refresh is in
 * tests/refresh_test.ts, what the cache keeps in tests/cache_entries_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ManagedIdentityError, type ManagedIdentityEvent, TokenCache } from "../mod.ts";
import { DEFAULT_TIMEOUT_MS } from "../src/client.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { rejectsWith, state, turn, unhandledDuring } from "./helpers/checks.ts";
import {
  APP_SERVICE,
  CLAIMS,
  GRAPH,
  heldEndpoint,
  HOUR,
  MINUTE,
  NOW,
  SECOND,
  serverError,
  STORAGE,
  tokenReply,
  tokens,
  VAULT,
} from "./helpers/lifecycle.ts";

describe("ManagedIdentityClient single flight", () => {
  test("acquireToken() makes one request for 1,000 concurrent cold calls and gives all the same token", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const calls = Array.from({ length: 1000 }, () => client.acquireToken(VAULT));
    await turn();
    assert.equal(endpoint.seen.length, 1);
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0"));
    const results = await Promise.all(calls);
    assert.equal(results.length, 1000);
    assert.deepEqual(tokens(results), new Set(["token-0"]));
    assert.ok(results.every((result) => !result.fromCache && result.resource === VAULT));
    assert.equal(endpoint.seen.length, 1);
    const next = await client.acquireToken(VAULT);
    assert.equal(next.fromCache, true);
    assert.equal(endpoint.seen.length, 1);
  });

  test("acquireToken() makes one request per resource for concurrent calls on two resources", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const vault = Array.from({ length: 10 }, () => client.acquireToken(VAULT));
    const storage = Array.from({ length: 10 }, () => client.acquireToken(`${STORAGE}/.default`));
    await turn();
    assert.equal(endpoint.seen.length, 2);
    const asked = endpoint.seen.map((seen) => seen.url.searchParams.get("resource"));
    assert.deepEqual(asked, [VAULT, STORAGE]);
    endpoint.calls[0]!.answer.resolve(tokenReply("vault-token"));
    endpoint.calls[1]!.answer.resolve(tokenReply("storage-token"));
    assert.deepEqual(tokens(await Promise.all(vault)), new Set(["vault-token"]));
    assert.deepEqual(tokens(await Promise.all(storage)), new Set(["storage-token"]));
    assert.equal(endpoint.seen.length, 2);
  });

  test("acquireToken() shares one request between two clients of the same identity on one TokenCache", async () => {
    const cache = new TokenCache();
    const first = heldEndpoint();
    const second = heldEndpoint();
    const a = testClient({ env: APP_SERVICE, fetch: first.fetch, retry: false, cache });
    const b = testClient({ env: APP_SERVICE, fetch: second.fetch, retry: false, cache });
    const calls = [a.acquireToken(VAULT), b.acquireToken(VAULT), a.acquireToken(VAULT), b.acquireToken(VAULT)];
    await turn();
    assert.equal(first.seen.length + second.seen.length, 1);
    assert.equal(first.seen.length, 1);
    first.calls[0]!.answer.resolve(tokenReply("shared-token"));
    const results = await Promise.all(calls);
    assert.deepEqual(tokens(results), new Set(["shared-token"]));
    assert.ok(results.every((result) => !result.fromCache));
    assert.equal(second.seen.length, 0);
    assert.equal(cache.size, 1);
  });

  test("acquireToken() does not share a request between clients with different caches", async () => {
    const endpoint = heldEndpoint();
    const a = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false, cache: new TokenCache() });
    const b = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false, cache: new TokenCache() });
    const fromA = a.acquireToken(VAULT);
    const fromB = b.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[0]!.answer.resolve(tokenReply("token-a"));
    endpoint.calls[1]!.answer.resolve(tokenReply("token-b"));
    const results = [await fromA, await fromB];
    assert.deepEqual(tokens(results), new Set(["token-a", "token-b"]));
  });

  test("acquireToken() rejects every concurrent waiter with the shared request's error and caches nothing", async () => {
    const cache = new TokenCache();
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false, cache });
    const calls = Array.from({ length: 5 }, () => client.acquireToken(VAULT));
    await turn();
    assert.equal(endpoint.seen.length, 1);
    endpoint.calls[0]!.answer.resolve(serverError());
    const errors: ManagedIdentityError[] = [];
    for (const call of calls) errors.push(await rejectsWith(call, "request_failed"));
    assert.ok(errors.every((error) => error.status === 500 && error.source === "AppService"));
    // One request, one failure: every waiter sees the same error.
    assert.ok(errors.every((error) => error === errors[0]));
    assert.equal(cache.size, 0);
    // The failure is not remembered: the next call makes a new request and succeeds.
    const next = client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[1]!.answer.resolve(tokenReply("token-1"));
    const result = await next;
    assert.equal(result.accessToken, "token-1");
    assert.equal(result.fromCache, false);
    assert.equal(cache.size, 1);
  });
});

describe("ManagedIdentityClient per-caller abort", () => {
  test("acquireToken() rejects only the aborting caller, at once, while the others get the token", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const controller = new AbortController();
    const first = client.acquireToken(VAULT);
    const aborting = client.acquireToken(VAULT, { signal: controller.signal });
    const third = client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 1);
    const reason = new Error("caller gave up");
    controller.abort(reason);
    // Rejected before the endpoint answers.
    assert.equal(await state(aborting), "rejected");
    const error = await rejectsWith(aborting, "aborted");
    assert.equal(error.cause, reason);
    assert.equal(endpoint.calls[0]!.request.signal.aborted, false);
    assert.equal(await state(first), "pending");
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0"));
    assert.equal((await first).accessToken, "token-0");
    assert.equal((await third).accessToken, "token-0");
    assert.equal(endpoint.seen.length, 1);
  });

  test("acquireToken() aborts the shared request when every waiter aborts, and the next call starts a new one", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const one = new AbortController();
    const two = new AbortController();
    const first = client.acquireToken(VAULT, { signal: one.signal });
    const second = client.acquireToken(VAULT, { signal: two.signal });
    await turn();
    assert.equal(endpoint.seen.length, 1);
    const { request } = endpoint.calls[0]!;
    one.abort();
    await rejectsWith(first, "aborted");
    assert.equal(request.signal.aborted, false);
    two.abort();
    await rejectsWith(second, "aborted");
    assert.equal(request.signal.aborted, true);
    // A new call does not join the abandoned request.
    const next = client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 2);
    assert.equal(endpoint.calls[1]!.request.signal.aborted, false);
    endpoint.calls[1]!.answer.resolve(tokenReply("token-new"));
    assert.equal((await next).accessToken, "token-new");
    // The abandoned request answering late changes nothing.
    endpoint.calls[0]!.answer.resolve(tokenReply("token-old"));
    await turn();
    const cached = await client.acquireToken(VAULT);
    assert.equal(cached.fromCache, true);
    assert.equal(cached.accessToken, "token-new");
  });
});

describe("ManagedIdentityClient forceRefresh and claims", () => {
  test("acquireToken() with forceRefresh skips the cached token and concurrent callers share one request", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const prime = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0"));
    await prime;
    const forced = Array.from({ length: 3 }, () => client.acquireToken(VAULT, { forceRefresh: true }));
    await turn();
    assert.equal(endpoint.seen.length, 2);
    // A plain call meanwhile still reads the cache.
    const plain = await client.acquireToken(VAULT);
    assert.equal(plain.accessToken, "token-0");
    assert.equal(plain.fromCache, true);
    endpoint.calls[1]!.answer.resolve(tokenReply("token-1"));
    const results = await Promise.all(forced);
    assert.deepEqual(tokens(results), new Set(["token-1"]));
    assert.ok(results.every((result) => !result.fromCache));
    assert.equal(endpoint.seen.length, 2);
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-1");
  });

  test("acquireToken() with claims skips the cache and does not share requests", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const prime = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0"));
    await prime;
    const withClaims = [client.acquireToken(VAULT, { claims: CLAIMS }), client.acquireToken(VAULT, { claims: CLAIMS })];
    await turn();
    assert.equal(endpoint.seen.length, 3);
    endpoint.calls[1]!.answer.resolve(tokenReply("token-1"));
    endpoint.calls[2]!.answer.resolve(tokenReply("token-2"));
    const results = await Promise.all(withClaims);
    assert.deepEqual(tokens(results), new Set(["token-1", "token-2"]));
    assert.ok(results.every((result) => !result.fromCache));
  });

  test("acquireToken() with claims does not join a request already in flight", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const plain = client.acquireToken(VAULT);
    const withClaims = client.acquireToken(VAULT, { claims: CLAIMS });
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[0]!.answer.resolve(tokenReply("plain-token"));
    endpoint.calls[1]!.answer.resolve(tokenReply("claims-token"));
    assert.equal((await plain).accessToken, "plain-token");
    assert.equal((await withClaims).accessToken, "claims-token");
  });
});

describe("ManagedIdentityClient events", () => {
  test("acquireToken() emits expires_on_fallback once for an unparsable expires_on and returns the token", async () => {
    const events: ManagedIdentityEvent[] = [];
    const fake = recorder(() =>
      Response.json({ access_token: "token-value", expires_on: "garbage", expires_in: 3600 })
    );
    const client = testClient(
      { env: APP_SERVICE, fetch: fake.fetch, retry: false, onEvent: (event) => events.push(event) },
      { now: () => NOW },
    );
    // Five concurrent callers share one request, so one event.
    const results = await Promise.all(Array.from({ length: 5 }, () => client.acquireToken(VAULT)));
    assert.deepEqual(tokens(results), new Set(["token-value"]));
    assert.equal(results[0]!.expiresOn.getTime(), NOW + HOUR);
    assert.equal(fake.seen.length, 1);
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.ok(event.type === "expires_on_fallback");
    assert.equal(event.source, "AppService");
    assert.equal(event.resource, VAULT);
    assert.equal(typeof event.detail, "string");
    assert.match(event.detail, /garbage/);
    assert.ok(!event.detail.includes("token-value"));
    // Served from the cache afterwards: no second request, no second event.
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    assert.equal(events.length, 1);
    assert.equal(fake.seen.length, 1);
  });
});

describe("ManagedIdentityClient unhandled rejections", () => {
  test("acquireToken() leaves no unhandled rejection when background refreshes fail", async () => {
    let now = NOW;
    const answers: (() => Response)[] = [
      () => tokenReply("token-0", { refresh_in: 600 }),
      serverError,
      () => {
        throw new TypeError("handler threw");
      },
    ];
    const fake = recorder((_request, index) => answers[index]!());
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false }, { now: () => now });
    const unhandled = await unhandledDuring(async () => {
      await client.acquireToken(VAULT);
      now = NOW + 10 * MINUTE;
      await client.acquireToken(VAULT);
      await turn();
      now += 30 * SECOND;
      await client.acquireToken(VAULT);
    });
    assert.equal(fake.seen.length, 3);
    assert.deepEqual(unhandled, []);
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
  });

  test("acquireToken() leaves no unhandled rejection when a shared request fails after every waiter aborted", async () => {
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false });
    const unhandled = await unhandledDuring(async () => {
      for (const answer of [serverError, () => Promise.reject(new Error("handler rejected"))]) {
        const controllers = [new AbortController(), new AbortController()];
        const calls = controllers.map((controller) => client.acquireToken(STORAGE, { signal: controller.signal }));
        await turn();
        for (const controller of controllers) controller.abort();
        for (const call of calls) await rejectsWith(call, "aborted");
        endpoint.calls.at(-1)!.answer.resolve(answer() as Response);
      }
    });
    assert.equal(endpoint.seen.length, 2);
    assert.ok(endpoint.calls.every((call) => call.request.signal.aborted));
    assert.deepEqual(unhandled, []);
  });

  test("acquireToken() leaves no unhandled rejection when the handler throws", async () => {
    const thrower = () => {
      throw new TypeError("handler threw");
    };
    const client = testClient({ env: APP_SERVICE, fetch: thrower, retry: false });
    const unhandled = await unhandledDuring(async () => {
      const shared = Array.from({ length: 3 }, () => client.acquireToken(GRAPH));
      for (const call of shared) await rejectsWith(call, "unavailable");
      await rejectsWith(client.acquireToken(GRAPH, { claims: CLAIMS }), "unavailable");
      await rejectsWith(client.acquireToken(GRAPH, { forceRefresh: true }), "unavailable");
    });
    assert.deepEqual(unhandled, []);
  });
});

describe("ManagedIdentityClient results stay the caller's own", () => {
  test("acquireToken() gives each cache hit its own result and Date objects", async () => {
    const fake = recorder(() => tokenReply("own-dates"));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await client.acquireToken(VAULT);
    const a = await client.acquireToken(VAULT);
    const b = await client.acquireToken(VAULT);
    assert.equal(a.fromCache && b.fromCache, true);
    assert.notEqual(a, b);
    const expiry = b.expiresOn.getTime();
    a.expiresOn.setTime(0);
    assert.equal(b.expiresOn.getTime(), expiry);
    assert.equal((await client.acquireToken(VAULT)).expiresOn.getTime(), expiry);
  });

  test("an async onEvent listener that rejects causes no unhandled rejection", async () => {
    let calls = 0;
    const unhandled = await unhandledDuring(async () => {
      const fake = recorder(() => Response.json({ access_token: "t", expires_on: "garbage", expires_in: 3600 }));
      const client = testClient({
        env: APP_SERVICE,
        fetch: fake.fetch,
        onEvent: async () => {
          calls++;
          await Promise.resolve();
          throw new Error("listener failed");
        },
      });
      assert.equal((await client.acquireToken(VAULT)).accessToken, "t");
    });
    assert.equal(calls, 1);
    assert.deepEqual(unhandled, []);
  });
});

describe("ManagedIdentityClient promised defaults", () => {
  test("DEFAULT_TIMEOUT_MS, each attempt's default timeout, is 15 seconds", () => {
    // The README and the timeoutMs documentation promise 15000; a test must not import the value it checks.
    assert.equal(DEFAULT_TIMEOUT_MS, 15_000);
  });
});
