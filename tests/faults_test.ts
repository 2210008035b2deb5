/**
 * The fault matrix: every source against real loopback servers that refuse, reset, hang,
 * trickle, throttle, flood or answer garbage (docs/sources.md, docs/retries.md). Each test asserts
 * the outcome, the exact number of requests the server saw, and that the call ended in time.
 * Which statuses are retried depends on the source's rules ("imds", "standard", "servicefabric",
 * or "entra" for workload identity's Microsoft Entra ID): RETRIED below states them, independently
 * of src/.
 * Backoff never costs real time: `sleep` and `now` are a fake clock (tests/helpers/faults.ts).
 * The sources, the rig and the checks are in tests/helpers/fault_rig.ts; the faults that only
 * some sources have are in tests/faults_some_sources_test.ts.
 *
 * Every call goes through `settle()`, which bounds it at HANG_MS of real time, and every
 * rejection through `failure()` (or the garbage sweep), which fails the test unless it is a
 * ManagedIdentityError: together, the property that no fault on any source ends in anything
 * else, or hangs.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError } from "../mod.ts";
import { answer, answerJson, type FaultHandler, finish, head, stuckSleep, within } from "./helpers/faults.ts";
import {
  fails,
  failure,
  HANG_MS,
  ok,
  QUICK_MS,
  type RigSetup,
  type Rules,
  settle,
  type Settled,
  type SourceCase,
  SOURCES,
  status,
  succeeds,
  thenToken,
  TOKEN,
  VAULT,
  withRig,
} from "./helpers/fault_rig.ts";

const MiB = 1024 * 1024;

/**
 * The statuses each source's rules retry (docs/retries.md); 400, 401 and 403 are
 * never retried. IMDS: 404 while an identity propagates, 410 while it is updated, every 5xx;
 * Service Fabric: 429 and every 5xx, never a 404 (the application's setup is wrong) nor another
 * 4xx, as Microsoft's page says
 * (https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling);
 * Entra ID: throttling and every 5xx, never a 404 or 408.
 */
const RETRIED: Readonly<Record<Rules, readonly number[]>> = {
  imds: [404, 408, 410, 429, 500, 501, 502, 503, 504],
  standard: [404, 408, 429, 500, 502, 503, 504],
  servicefabric: [429, 500, 501, 502, 503, 504],
  entra: [429, 500, 501, 502, 503, 504],
};

/** Whether the source's rules retry `status`. */
function retried(kase: SourceCase, status: number): boolean {
  return RETRIED[kase.rules].includes(status);
}

/** The delays of the first `count` retries under the source's rules, without jitter. */
function delays(kase: SourceCase, count: number): number[] {
  const doubling = kase.rules === "imds" || kase.rules === "servicefabric";
  return Array.from({ length: count }, (_, i) => doubling ? 1000 * 2 ** i : 1000);
}

/** Status line, headers promising 1000 bytes, part of the body, then the connection is destroyed. */
const resetMidBody: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "content-length": 1000 }));
  socket.write('{"access_token":"fault-tok', () => socket.destroy());
};

/** Reads the request and never answers. */
const silent: FaultHandler = () => {};

/** Headers at once, then one byte of a valid token body every 50 ms (5 s in all). */
const trickle: FaultHandler = (_request, socket) => {
  const body = JSON.stringify(TOKEN).padEnd(100, " ");
  socket.write(head(200, { "content-type": "application/json", "content-length": body.length }));
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < body.length) socket.write(body[sent++]!);
    else clearInterval(timer);
  }, 50);
  socket.on("close", () => clearInterval(timer));
};

/** A 5 MiB body with a Content-Length. */
const hugeSized: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "content-length": 5 * MiB }));
  socket.end(new Uint8Array(5 * MiB).fill(0x61));
};

function chunks(total: number): Uint8Array {
  const size = 64 * 1024;
  const chunk = new TextEncoder().encode(`${size.toString(16)}\r\n${"a".repeat(size)}\r\n`);
  const out = new Uint8Array(chunk.length * (total / size));
  for (let at = 0; at < out.length; at += chunk.length) out.set(chunk, at);
  return out;
}

/** A 5 MiB chunked body, no Content-Length. */
const hugeChunked: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "transfer-encoding": "chunked" }));
  socket.write(chunks(5 * MiB));
  socket.end("0\r\n\r\n");
};

/** 2 MiB of chunks, no Content-Length, and the rest never comes: only a client that stops reading ends. */
const hugeChunkedStalled: FaultHandler = (_request, socket) => {
  socket.write(head(200, { "content-type": "application/json", "transfer-encoding": "chunked" }));
  socket.write(chunks(2 * MiB));
};

/** What one call through a rig saw, kept after the rig is gone. */
interface Observed extends Settled<unknown> {
  readonly tokenRequests: number;
  readonly challenges: number;
  readonly retries: readonly string[];
}

async function observe(kase: SourceCase, fault: FaultHandler, setup: RigSetup): Promise<Observed> {
  let observed: Observed | undefined;
  await withRig(kase, fault, async (rig) => {
    const settled = await settle(rig.client.acquireToken(VAULT));
    observed = {
      ...settled,
      tokenRequests: rig.tokenRequests().length,
      challenges: rig.challenges().length,
      retries: rig.retries(),
    };
  }, setup);
  return observed!;
}

let timed: Map<string, Promise<Observed>> | undefined;

/**
 * The faults that cost real time (every attempt waits out its timeout) run for all sources at
 * once, started by the first test that needs one: the suite pays about 300 ms for all of them.
 */
function timedFault(name: "silent" | "trickle", kase: SourceCase): Promise<Observed> {
  timed ??= new Map(SOURCES.flatMap((each) => {
    const runs: [string, Promise<Observed>][] = [
      [`silent ${each.source}`, observe(each, silent, { client: { timeoutMs: 100, retry: { maxRetries: 2 } } })],
      [`trickle ${each.source}`, observe(each, trickle, { client: { timeoutMs: 150, retry: { maxRetries: 1 } } })],
    ];
    // Each is awaited by its own test; none may reject unhandled before then.
    for (const [, run] of runs) run.catch(() => {});
    return runs;
  }));
  return timed.get(`${name} ${kase.source}`)!;
}

/** Answers no endpoint should give: broken HTTP, odd statuses, bodies that are not tokens, noise. */
function garbage(): (string | Uint8Array)[] {
  const close = "Connection: close\r\n";
  const sized = (statusLine: string, body: string) =>
    `${statusLine}\r\nContent-Length: ${new TextEncoder().encode(body).length}\r\n${close}\r\n${body}`;
  const replies: (string | Uint8Array)[] = [
    "",
    "garbage\r\n\r\n",
    "HTTP/1.1 200 OK\r\n",
    sized("HTTP/1.1 999 Odd", "ok"),
    sized("HTTP/1.1 200 OK", "null"),
    sized("HTTP/1.1 200 OK", "[]"),
    sized("HTTP/1.1 200 OK", '{"access_token":42,"expires_in":"soon"}'),
    sized("HTTP/1.1 200 OK", '{"access_token":"fault-token","expires_on":"nope"}'),
    `HTTP/1.1 200 OK\r\nContent-Length: abc\r\n${close}\r\n{}`,
    `HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n${close}\r\n{}`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n${close}\r\nzz\r\n`,
    `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n${close}\r\n`,
    `HTTP/1.1 204 No Content\r\n${close}\r\n`,
    // A valid token that lives too briefly to be cached: the sweep also sees a success.
    sized("HTTP/1.1 200 OK", '{"access_token":"fault-token","expires_in":60}'),
  ];
  // Seeded noise, half of it behind a plausible status line.
  let seed = 0x2545f491;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < 6; i++) {
    const noise = Uint8Array.from({ length: 48 }, next);
    const prefix = new TextEncoder().encode(i % 2 ? "HTTP/1.1 200 OK\r\n" : "");
    const reply = new Uint8Array(prefix.length + noise.length);
    reply.set(prefix);
    reply.set(noise, prefix.length);
    replies.push(reply);
  }
  return replies;
}

for (const kase of SOURCES) {
  const { label } = kase;
  const arc = kase.source === "AzureArc";

  describe(`faults on ${label}`, () => {
    test(`acquireToken() retries a refused connection 3 times, then fails "unavailable" on ${label}`, async () => {
      await withRig(kase, ok, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "unavailable", undefined);
        assert.equal(error.source, kase.source);
        // Nobody listens, so the server counts nothing: the waits count the attempts.
        assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        assert.deepEqual(rig.retries(), ["unavailable", "unavailable", "unavailable"]);
        assert.equal(rig.tokenRequests().length, 0);
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      }, { refuse: true });
    });

    test(`acquireToken() retries a connection reset mid-body, then fails "request_failed" 200 on ${label}`, async () => {
      await withRig(kase, resetMidBody, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 200);
        assert.equal(error.source, kase.source);
        assert.equal(rig.tokenRequests().length, 4);
        assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      });
    });

    test(`acquireToken() gets the token when the retry after a reset mid-body succeeds on ${label}`, async () => {
      await withRig(kase, thenToken(resetMidBody), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.time.sleeps, delays(kase, 1));
      });
    });

    test(`acquireToken() times out on a server that never answers, retried 2 times, on ${label}`, async () => {
      // timeoutMs 100, retry { maxRetries: 2 }: three attempts of 100 ms, well within 2 s.
      const seen = await timedFault("silent", kase);
      const error = failure(seen, "timeout", undefined, 2000);
      assert.match(error.message, /timed out after 100 ms/);
      assert.equal(seen.tokenRequests, 3);
      assert.deepEqual(seen.retries, ["timeout", "timeout"]);
      assert.equal(seen.challenges, arc ? 1 : 0);
    });

    test(`acquireToken() times out on a body that trickles slower than timeoutMs on ${label}`, async () => {
      // timeoutMs 150, retry { maxRetries: 1 }; the whole body would take 5 s.
      const seen = await timedFault("trickle", kase);
      const error = failure(seen, "timeout", undefined, 2000);
      assert.match(error.message, /timed out after 150 ms/);
      assert.equal(seen.tokenRequests, 2);
      assert.deepEqual(seen.retries, ["timeout"]);
    });

    test(`acquireToken() retries a 500 once and gets the token on ${label}`, async () => {
      await withRig(kase, thenToken(status(500)), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.events, [
          { type: "retry", source: kase.source, attempt: 1, delayMs: 1000, reason: "status 500" },
        ]);
        assert.deepEqual(rig.time.sleeps, [1000]);
        assert.equal(rig.challenges().length, arc ? 1 : 0);
      });
    });

    for (const code of [429, 500, 502, 503, 504]) {
      test(`acquireToken() retries a ${code} 3 times, then fails "request_failed" ${code}, on ${label}`, async () => {
        assert.ok(retried(kase, code));
        await withRig(kase, status(code, { error: `status_${code}` }), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", code);
          assert.equal(rig.tokenRequests().length, 4);
          assert.deepEqual(rig.retries(), [`status ${code}`, `status ${code}`, `status ${code}`]);
          assert.deepEqual(rig.time.sleeps, delays(kase, 3));
        });
      });
    }

    if (kase.rules === "imds") {
      test(`acquireToken() keeps retrying a 410 for 70 s of the clock on ${label}`, async () => {
        await withRig(kase, status(410), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", 410);
          const requests = rig.tokenRequests().length;
          const { sleeps } = rig.time;
          assert.ok(requests > 4, `only ${requests} requests: a 410 must outlast the 3 retries`);
          assert.equal(sleeps.length, requests - 1);
          assert.ok(rig.time.elapsed() >= 70_000, `gave up after ${rig.time.elapsed()} ms of the clock`);
          // It stops at the first answer after the 70 s, and no wait grew past 10 * delayMs.
          assert.ok(sleeps.slice(0, -1).reduce((sum, ms) => sum + ms, 0) < 70_000, `${sleeps}`);
          assert.ok(sleeps.at(-1)! <= 10_000, `the last wait was ${sleeps.at(-1)} ms`);
          assert.ok(sleeps.every((ms) => ms <= 10_000), `${sleeps}`);
        });
      });
    } else {
      test(`acquireToken() does not retry a 410 on ${label}`, async () => {
        await withRig(kase, status(410), async (rig) => {
          await fails(rig.client.acquireToken(VAULT), "request_failed", 410);
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    test(`acquireToken() waits the 2 s of a 429's Retry-After, then gets the token on ${label}`, async () => {
      await withRig(kase, thenToken(status(429, { error: "throttled" }, { "retry-after": "2" })), async (rig) => {
        await succeeds(rig.client.acquireToken(VAULT));
        assert.deepEqual(rig.time.sleeps, [2000]);
        assert.equal(rig.tokenRequests().length, 2);
        assert.deepEqual(rig.retries(), ["status 429"]);
      });
    });

    test(`acquireToken() fails at once while a 429's Retry-After runs, then asks again on ${label}`, async () => {
      let throttling = true;
      const throttle: FaultHandler = (request, socket, index) =>
        throttling
          ? answerJson(socket, 429, { error: "throttled" }, { "retry-after": "30" })
          : ok(request, socket, index);
      await withRig(kase, throttle, async (rig) => {
        await fails(rig.client.acquireToken(VAULT), "request_failed", 429);
        assert.equal(rig.tokenRequests().length, 4);
        assert.deepEqual(rig.time.sleeps, [30_000, 30_000, 30_000]);
        const seen = rig.server.requests.length;

        rig.time.advance(10_000);
        const early = await fails(rig.client.acquireToken(VAULT), "request_failed", 429, 500);
        assert.match(early.message, /429/);
        assert.equal(rig.server.requests.length, seen, "a throttled endpoint must see no request");
        assert.equal(rig.time.sleeps.length, 3);

        rig.time.advance(21_000);
        throttling = false;
        await succeeds(rig.client.acquireToken(VAULT));
        assert.equal(rig.tokenRequests().length, 5);
        assert.equal(rig.challenges().length, arc ? 2 : 0);
      });
    });

    test(`acquireToken() does not retry an HTML 200 and fails "invalid_response" on ${label}`, async () => {
      const html: FaultHandler = (_request, socket) =>
        answer(socket, 200, "<html><body><h1>Gateway</h1></body></html>", { "content-type": "text/html" });
      await withRig(kase, html, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", undefined);
        assert.match(error.message, /not a JSON object/);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    test(`acquireToken() does not retry a truncated JSON 200 and fails "invalid_response" on ${label}`, async () => {
      const truncated: FaultHandler = (_request, socket) =>
        answer(socket, 200, '{"access_token":"fault-tok', { "content-type": "application/json" });
      await withRig(kase, truncated, async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", undefined);
        assert.match(error.message, /not a JSON object/);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    for (
      const [name, handler] of [
        ["a 5 MiB body with a Content-Length", hugeSized],
        ["a 5 MiB chunked body", hugeChunked],
        ["a chunked body that stalls after 2 MiB", hugeChunkedStalled],
      ] as const
    ) {
      test(`acquireToken() refuses ${name} at the 1048576-byte limit, without retry, on ${label}`, async () => {
        await withRig(kase, handler, async (rig) => {
          const error = await fails(rig.client.acquireToken(VAULT), "invalid_response", 200);
          assert.match(error.message, /1048576 bytes/);
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    test(`acquireToken() fails "request_failed" on a 400 with ${label}'s error body, without retry`, async () => {
      await withRig(kase, status(400, kase.errorBody), async (rig) => {
        const error = await fails(rig.client.acquireToken(VAULT), "request_failed", 400);
        assert.equal(error.error, kase.errorFields.error);
        assert.equal(error.errorDescription, kase.errorFields.errorDescription);
        assert.equal(error.correlationId, kase.errorFields.correlationId);
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(rig.time.sleeps, []);
      });
    });

    for (const code of [401, 403]) {
      test(`acquireToken() does not retry a ${code} on ${label}`, async () => {
        await withRig(kase, status(code, { error: "access_denied" }), async (rig) => {
          const error = await fails(rig.client.acquireToken(VAULT), "request_failed", code);
          assert.equal(error.error, "access_denied");
          assert.equal(rig.tokenRequests().length, 1);
          assert.deepEqual(rig.time.sleeps, []);
        });
      });
    }

    // The statuses on which the rules differ: 404 and 408 (retried except by Service Fabric's and
    // Entra ID's rules) and 501 (a 5xx that the standard rules leave alone).
    for (const code of [404, 408, 501]) {
      if (retried(kase, code)) {
        test(`acquireToken() retries a ${code} 3 times on ${label} (${kase.rules} rules)`, async () => {
          await withRig(kase, status(code, { error: "not_found" }), async (rig) => {
            await fails(rig.client.acquireToken(VAULT), "request_failed", code);
            assert.equal(rig.tokenRequests().length, 4);
            assert.deepEqual(rig.retries(), [`status ${code}`, `status ${code}`, `status ${code}`]);
          });
        });
      } else {
        test(`acquireToken() does not retry a ${code} on ${label} (${kase.rules} rules)`, async () => {
          await withRig(kase, status(code, { error: "not_found" }), async (rig) => {
            await fails(rig.client.acquireToken(VAULT), "request_failed", code);
            assert.equal(rig.tokenRequests().length, 1);
            assert.deepEqual(rig.retries(), []);
            assert.deepEqual(rig.time.sleeps, []);
          });
        });
      }
    }

    test(`acquireToken() ends with "aborted" when the caller aborts during the wait between attempts on ${label}`, async () => {
      const stuck = stuckSleep();
      await withRig(kase, status(500), async (rig) => {
        const controller = new AbortController();
        const call = rig.client.acquireToken(VAULT, { signal: controller.signal });
        assert.equal(await within(HANG_MS, stuck.started), 1000);
        const reason = new Error("the caller left");
        controller.abort(reason);
        const error = await fails(call, "aborted", undefined, 500);
        assert.equal(error.cause, reason);
        // Give a wrongly continuing loop the time to send another request.
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(rig.tokenRequests().length, 1);
        assert.deepEqual(stuck.sleeps, [1000]);
      }, { internal: { sleep: stuck.sleep } });
    });

    test(`acquireToken() gives a token or a ManagedIdentityError, and never hangs, on any garbage on ${label}`, async () => {
      const replies = garbage();
      let current = 0;
      await withRig(kase, (_request, socket) => {
        finish(socket, replies[current]);
      }, async (rig) => {
        for (; current < replies.length; current++) {
          const before = rig.tokenRequests().length;
          const { value, error, elapsed } = await settle(rig.client.acquireToken(VAULT, { forceRefresh: true }));
          const shown = JSON.stringify(String(replies[current]).slice(0, 60));
          assert.ok(elapsed < QUICK_MS, `${shown} took ${Math.round(elapsed)} ms`);
          if (error !== undefined) {
            assert.ok(error instanceof ManagedIdentityError, `${shown} gave ${String(error)}`);
            assert.equal(error.source, kase.source);
            // Every garbage answer ends the connection: no call has to wait out its timeout.
            assert.notEqual(error.code, "timeout", `${shown}: ${error.message}`);
          } else {
            assert.equal((value as { accessToken?: string } | undefined)?.accessToken, TOKEN.access_token, shown);
          }
          const attempts = rig.tokenRequests().length - before;
          assert.ok(attempts === 1 || attempts === 2, `${shown} made ${attempts} requests`);
        }
      }, { client: { retry: { maxRetries: 1 }, timeoutMs: 500 } });
    });
  });
}
