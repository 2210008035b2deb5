import { describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  type EnvRecord,
  ManagedIdentityError,
  type ManagedIdentityEvent,
  TokenCache,
  type TokenResult,
} from "../mod.ts";
import { DEFAULT_TIMEOUT_MS } from "../src/client.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { type Deferred, deferred, rejectsWith } from "./helpers/checks.ts";

const NOW = 1_700_000_000_000;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const VAULT = "https://vault.azure.net";
const STORAGE = "https://storage.azure.com";
const GRAPH = "https://graph.microsoft.com";
const CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';

const APP_SERVICE: EnvRecord = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };

/**
 * A fake endpoint that holds every request until the test answers it: `calls[i].answer` is the
 * gate of the i-th request, `calls[i].request` the `Request` the handler saw (with its signal).
 */
function heldEndpoint() {
  const calls: { request: Request; answer: Deferred<Response> }[] = [];
  const fake = recorder((request) => {
    const answer = deferred<Response>();
    calls.push({ request, answer });
    return answer.promise;
  });
  return { fetch: fake.fetch, seen: fake.seen, calls };
}

/** A token body; `refresh_in` and other fields through `extra`. */
function tokenReply(accessToken: string, extra: Record<string, unknown> = {}): Response {
  return Response.json({ access_token: accessToken, expires_in: 3600, ...extra });
}

function serverError(): Response {
  return Response.json({ statusCode: 500, message: "Internal error" }, { status: 500 });
}

/** Lets pending requests reach the fake endpoint and settled ones finish (one macrotask turn). */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

type State = "pending" | "fulfilled" | "rejected";

/** Where a promise stands after one turn of the event loop. */
async function state(promise: Promise<unknown>): Promise<State> {
  let seen: State = "pending";
  promise.then(() => seen = "fulfilled", () => seen = "rejected");
  await turn();
  return seen;
}

/** Runs `body` while collecting unhandled rejections, lets the event loop turn, returns them. */
async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (error: unknown) => seen.push(error);
  process.on("unhandledRejection", listener);
  try {
    await body();
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}

function tokens(results: readonly TokenResult[]): Set<string> {
  return new Set(results.map((result) => result.accessToken));
}

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

describe("ManagedIdentityClient proactive refresh", () => {
  test("acquireToken() past refreshOn serves the cached token and refreshes once in the background", async () => {
    let now = NOW;
    const endpoint = heldEndpoint();
    const client = testClient({ env: APP_SERVICE, fetch: endpoint.fetch, retry: false }, { now: () => now });
    const first = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0", { refresh_in: 600 }));
    const issued = await first;
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
    const first = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0", { refresh_in: 600 }));
    await first;
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
    const first = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0", { refresh_in: 600 }));
    await first;

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
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const fake = recorder(() => Response.json({ access_token: "t", expires_on: "garbage", expires_in: 3600 }));
      let calls = 0;
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
      for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(calls, 1);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
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
    const first = client.acquireToken(VAULT);
    await turn();
    endpoint.calls[0]!.answer.resolve(tokenReply("token-0", { refresh_in: 600 }));
    await first;
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

describe("ManagedIdentityClient promised defaults", () => {
  test("DEFAULT_TIMEOUT_MS, each attempt's default timeout, is 15 seconds", () => {
    // The README and the timeoutMs documentation promise 15000; a test must not import the value it checks.
    assert.equal(DEFAULT_TIMEOUT_MS, 15_000);
  });
});
