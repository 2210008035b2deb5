/**
 * ManagedIdentityClient's proactive refresh: past refreshOn a cached token is still served while
 * one background request renews it; a failed refresh keeps the cached token and is retried 30 s
 * later; and background refreshes never come more often than one per 30 s, whatever they return.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError, type ManagedIdentityEvent } from "../mod.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { rejectsWith, state, turn } from "./helpers/checks.ts";
import {
  APP_SERVICE,
  firstToken,
  heldEndpoint,
  HOUR,
  MINUTE,
  NOW,
  SECOND,
  serverError,
  tokenReply,
  tokens,
  VAULT,
} from "./helpers/lifecycle.ts";

describe("ManagedIdentityClient proactive refresh", () => {
  test("acquireToken() past refreshOn serves the cached token and refreshes once in the background", async () => {
    let now = NOW;
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false }, { now: () => now });
    const issued = await firstToken(client, endpoint);
    assert.equal(issued.refreshOn?.getTime(), NOW + 10 * MINUTE);
    assert.equal(issued.expiresOn.getTime(), NOW + HOUR);

    now = NOW + 10 * MINUTE - 1;
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    await turn();
    assert.equal(endpoint.seen.length, 1);

    now = NOW + 10 * MINUTE;
    // Resolves with the old token while the background request is still held.
    const served = await client.acquireToken(VAULT);
    assert.equal(served.accessToken, "token-0");
    assert.equal(served.fromCache, true);
    await turn();
    assert.equal(endpoint.seen.length, 2);
    assert.equal(endpoint.seen[1]?.url.searchParams.get("resource"), VAULT);

    const many = await Promise.all(Array.from({ length: 50 }, () => client.acquireToken(VAULT)));
    assert.deepEqual(tokens(many), new Set(["token-0"]));
    assert.ok(many.every((result) => result.fromCache));
    await turn();
    assert.equal(endpoint.seen.length, 2);

    now = NOW + 11 * MINUTE;
    endpoint.calls[1]!.answer.resolve(tokenReply("token-1", { refresh_in: 600 }));
    await turn();
    const refreshed = await client.acquireToken(VAULT);
    assert.equal(refreshed.accessToken, "token-1");
    assert.equal(refreshed.fromCache, true);
    assert.equal(refreshed.refreshOn?.getTime(), NOW + 21 * MINUTE);
    assert.equal(refreshed.expiresOn.getTime(), NOW + 11 * MINUTE + HOUR);
    await turn();
    assert.equal(endpoint.seen.length, 2);
  });

  test("acquireToken() refreshes a token without refresh_in living 8 hours after 4 hours, not before", async () => {
    let now = NOW;
    const fake = recorder((_request, index) => tokenReply(`token-${index}`, { expires_in: 8 * 3600 }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false }, { now: () => now });
    const issued = await client.acquireToken(VAULT);
    assert.equal(issued.refreshOn?.getTime(), NOW + 4 * HOUR);

    now = NOW + 4 * HOUR - 1;
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
    await turn();
    assert.equal(fake.seen.length, 1);

    now = NOW + 4 * HOUR;
    const served = await client.acquireToken(VAULT);
    assert.equal(served.accessToken, "token-0");
    assert.equal(served.fromCache, true);
    await turn();
    assert.equal(fake.seen.length, 2);
    const refreshed = await client.acquireToken(VAULT);
    assert.equal(refreshed.accessToken, "token-1");
    assert.equal(refreshed.fromCache, true);
    assert.equal(refreshed.refreshOn?.getTime(), now + 4 * HOUR);
  });

  test("acquireToken() sets no refresh time for a token living 2 hours without refresh_in", async () => {
    let now = NOW;
    const fake = recorder((_request, index) => tokenReply(`token-${index}`, { expires_in: 2 * 3600 }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false }, { now: () => now });
    const issued = await client.acquireToken(VAULT);
    assert.equal(issued.refreshOn, undefined);
    now = NOW + 2 * HOUR - 5 * MINUTE - 1;
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    await turn();
    assert.equal(fake.seen.length, 1);
  });

  test("acquireToken() past expiry joins the background refresh, and its only waiter leaving does not abort it", async () => {
    let now = NOW;
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false }, { now: () => now });
    await firstToken(client, endpoint);
    now = NOW + 10 * MINUTE;
    await client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 2);

    // The cached token is now too close to expiry: a caller waits for the refresh already running.
    now = NOW + HOUR - 5 * MINUTE;
    const controller = new AbortController();
    const leaving = client.acquireToken(VAULT, { signal: controller.signal });
    await turn();
    assert.equal(endpoint.seen.length, 2);
    controller.abort();
    await rejectsWith(leaving, "aborted");
    assert.equal(endpoint.calls[1]!.request.signal.aborted, false);
    // The background request is still the one in flight: the next caller joins it too.
    const staying = client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[1]!.answer.resolve(tokenReply("token-1"));
    const result = await staying;
    assert.equal(result.accessToken, "token-1");
    assert.equal(result.fromCache, false);
    const cached = await client.acquireToken(VAULT);
    assert.equal(cached.accessToken, "token-1");
    assert.equal(cached.fromCache, true);
    assert.equal(endpoint.seen.length, 2);
  });
});

describe("ManagedIdentityClient refresh failure", () => {
  test("acquireToken() keeps serving the cached token after a failed refresh and retries it 30 s later, not 29.999 s", async () => {
    let now = NOW;
    const events: ManagedIdentityEvent[] = [];
    const endpoint = heldEndpoint();
    const client = testClient(
      { env: APP_SERVICE, fetch: endpoint.fetch, retry: false, onEvent: (event) => events.push(event) },
      { now: () => now },
    );
    await firstToken(client, endpoint);

    const failedAt = NOW + 10 * MINUTE;
    now = failedAt;
    // Several calls while the refresh is held: all served from the cache, one refresh.
    for (let i = 0; i < 3; i++) {
      const served = await client.acquireToken(VAULT);
      assert.equal(served.accessToken, "token-0");
      assert.equal(served.fromCache, true);
    }
    await turn();
    assert.equal(endpoint.seen.length, 2);
    endpoint.calls[1]!.answer.resolve(serverError());
    await turn();
    assert.equal(events.length, 1);
    const event = events[0]!;
    assert.ok(event.type === "refresh_failed");
    assert.deepEqual(event, { type: "refresh_failed", source: "AppService", resource: VAULT, error: event.error });
    assert.ok(event.error instanceof ManagedIdentityError);
    assert.equal(event.error.code, "request_failed");
    assert.equal(event.error.status, 500);

    // Right after the failure, and until 30 seconds have passed, no new refresh starts.
    const again = await client.acquireToken(VAULT);
    assert.equal(again.accessToken, "token-0");
    assert.equal(again.fromCache, true);
    now = failedAt + 29_999;
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
    await turn();
    assert.equal(endpoint.seen.length, 2);

    now = failedAt + 30_000;
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
    await turn();
    assert.equal(endpoint.seen.length, 3);
    endpoint.calls[2]!.answer.resolve(serverError());
    await turn();
    assert.equal(events.length, 2);
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");

    // Within 5 minutes of expiry the cached token is no longer served: the caller waits.
    now = NOW + HOUR - 5 * MINUTE;
    const waiting = client.acquireToken(VAULT);
    await turn();
    assert.equal(endpoint.seen.length, 4);
    assert.equal(await state(waiting), "pending");
    endpoint.calls[3]!.answer.resolve(tokenReply("token-1", { refresh_in: 600 }));
    const waited = await waiting;
    assert.equal(waited.accessToken, "token-1");
    assert.equal(waited.fromCache, false);
    assert.equal(events.length, 2);
  });

  test("acquireToken() is not broken by an onEvent listener that throws", async () => {
    let now = NOW;
    let heard = 0;
    const answers = [() => tokenReply("token-0", { refresh_in: 600 }), serverError];
    const fake = recorder((_request, index) => answers[index]!());
    const onEvent = () => {
      heard++;
      throw new Error("listener broke");
    };
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false, onEvent }, { now: () => now });
    await client.acquireToken(VAULT);
    now = NOW + 10 * MINUTE;
    assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
    await turn();
    assert.equal(fake.seen.length, 2);
    assert.equal(heard, 1);
    // The failed refresh was still postponed, and the cached token is still served.
    const next = await client.acquireToken(VAULT);
    assert.equal(next.accessToken, "token-0");
    await turn();
    assert.equal(fake.seen.length, 2);

    const fallback = testClient({
      env: APP_SERVICE,
      fetch: () => Response.json({ access_token: "fallback-token", expires_on: "garbage", expires_in: 3600 }),
      retry: false,
      onEvent,
    });
    assert.equal((await fallback.acquireToken(VAULT)).accessToken, "fallback-token");
    assert.equal(heard, 2);
  });
});

describe("ManagedIdentityClient background refresh rate", () => {
  // Every background refresh that does not yield a token cached until later holds off the next
  // one for 30 s, as a failure does: IMDS throttles at about 5 requests per second.
  const outcomes: [string, (index: number) => Response][] = [
    ["a token expiring within 5 minutes", (index) => tokenReply(`token-${index}`, { expires_in: 240 })],
    ["a token with refresh_in 1, cached", (index) => tokenReply(`token-${index}`, { refresh_in: 1 })],
    ["a failure", serverError],
  ];
  for (const [outcome, answer] of outcomes) {
    test(`acquireToken() makes 1 background request in 30 s of 50 hits past refreshOn when each refresh returns ${outcome}`, async () => {
      let now = NOW;
      const fake = recorder((_request, index) =>
        index === 0 ? tokenReply("token-0", { refresh_in: 600 }) : answer(index)
      );
      const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false }, { now: () => now });
      await client.acquireToken(VAULT);
      const started = NOW + 10 * MINUTE;
      for (let i = 0; i < 50; i++) {
        now = started + i * 600;
        const served = await client.acquireToken(VAULT);
        assert.equal(served.fromCache, true);
        await turn();
      }
      now = started + 29_999;
      await client.acquireToken(VAULT);
      await turn();
      assert.equal(fake.seen.length, 2);
      now = started + 30_000;
      assert.equal((await client.acquireToken(VAULT)).fromCache, true);
      await turn();
      assert.equal(fake.seen.length, 3);
      for (let i = 0; i < 50; i++) {
        now = started + 30_000 + i * 500;
        await client.acquireToken(VAULT);
        await turn();
      }
      assert.equal(fake.seen.length, 3);
    });
  }

  test("acquireToken() starts no second background refresh within 30 s even after a forceRefresh caches a token due at once", async () => {
    let now = NOW;
    const fake = recorder((_request, index) => tokenReply(`token-${index}`, { refresh_in: index === 0 ? 600 : 1 }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, retry: false }, { now: () => now });
    await client.acquireToken(VAULT);
    const started = NOW + 10 * MINUTE;
    now = started;
    await client.acquireToken(VAULT);
    await turn();
    assert.equal(fake.seen.length, 2);
    now = started + SECOND;
    assert.equal((await client.acquireToken(VAULT, { forceRefresh: true })).accessToken, "token-2");
    for (let i = 0; i < 20; i++) {
      now = started + 2 * SECOND + i * SECOND;
      assert.equal((await client.acquireToken(VAULT)).accessToken, "token-2");
      await turn();
    }
    assert.equal(fake.seen.length, 3);
    now = started + 30 * SECOND;
    await client.acquireToken(VAULT);
    await turn();
    assert.equal(fake.seen.length, 4);
  });
});
