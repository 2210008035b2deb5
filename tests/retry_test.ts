import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_RETRY,
  retriableStatus,
  retryAfterMs,
  retryDelay,
  type RetryPolicy,
  retryPolicy,
  sleep,
} from "../src/retry.ts";

const NOW = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
const zero = () => 0;
const one = () => 1;

describe("retryPolicy()", () => {
  test("retryPolicy(false) is a single attempt with the other defaults", () => {
    assert.deepEqual(retryPolicy(false), { ...DEFAULT_RETRY, maxRetries: 0 });
  });

  test("retryPolicy() defaults to 3 retries after 1 s, Retry-After capped at 60 s, 410 retried for 70 s", () => {
    const expected = { maxRetries: 3, delayMs: 1000, maxRetryAfterMs: 60_000, imdsUpdateMs: 70_000 };
    assert.deepEqual(DEFAULT_RETRY, expected);
    assert.deepEqual(retryPolicy(undefined), expected);
    assert.deepEqual(retryPolicy({}), expected);
  });

  test("retryPolicy() keeps the options given and fills the rest", () => {
    assert.deepEqual(retryPolicy({ maxRetries: 0, delayMs: 5 }), {
      maxRetries: 0,
      delayMs: 5,
      maxRetryAfterMs: 60_000,
      imdsUpdateMs: 70_000,
    });
  });

  for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1.5, 0.1, Number.NEGATIVE_INFINITY]) {
    test(`retryPolicy() refuses maxRetries ${value} with a RangeError naming the option`, () => {
      assert.throws(() => retryPolicy({ maxRetries: value }), (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.match(error.message, /"retry\.maxRetries"/);
        assert.ok(error.message.includes(String(value)), error.message);
        return true;
      });
    });
  }

  test("retryPolicy() refuses a maxRetries that is not a number, naming it", () => {
    assert.throws(() => retryPolicy({ maxRetries: "3" as unknown as number }), /"retry\.maxRetries"/);
  });

  for (const name of ["delayMs", "maxRetryAfterMs", "imdsUpdateMs"] as const) {
    test(`retryPolicy() refuses a negative or NaN ${name} with a RangeError naming it`, () => {
      for (const value of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => retryPolicy({ [name]: value }), (error: unknown) => {
          assert.ok(error instanceof RangeError);
          assert.match(error.message, new RegExp(`"retry\\.${name}"`));
          return true;
        });
      }
    });
  }
});

describe("retriableStatus()", () => {
  const imdsRetried = [404, 408, 410, 429, ...Array.from({ length: 100 }, (_, i) => 500 + i)];
  const standardRetried = [404, 408, 429, 500, 502, 503, 504];
  const neverRetried = [200, 202, 400, 401, 403, 405, 409];

  test("retriableStatus() retries 404, 408, 410, 429 and every 5xx on IMDS", () => {
    for (const status of imdsRetried) assert.equal(retriableStatus("imds", status), true, `IMDS ${status}`);
  });

  test("retriableStatus() retries 404, 408, 429, 500, 502, 503 and 504 on the other sources", () => {
    for (const status of standardRetried) assert.equal(retriableStatus("standard", status), true, `${status}`);
  });

  test("retriableStatus() never retries success, 400, 401, 403, 405 or 409", () => {
    for (const status of neverRetried) {
      assert.equal(retriableStatus("imds", status), false, `IMDS ${status}`);
      assert.equal(retriableStatus("standard", status), false, `standard ${status}`);
    }
  });

  test("retriableStatus() does not retry 410, 501, 505 or other 5xx on the standard rules", () => {
    for (const status of [410, 501, 505, 506, 507, 508, 511, 599]) {
      assert.equal(retriableStatus("standard", status), false, `standard ${status}`);
    }
  });

  // https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling
  test("retriableStatus() retries 429 and every 5xx on Service Fabric, never 404 nor another 4xx", () => {
    for (const status of [429, ...Array.from({ length: 100 }, (_, i) => 500 + i)]) {
      assert.equal(retriableStatus("servicefabric", status), true, `Service Fabric ${status}`);
    }
    for (const status of [...neverRetried, 404, 408, 410, 412, 499]) {
      assert.equal(retriableStatus("servicefabric", status), false, `Service Fabric ${status}`);
    }
  });

  test("retriableStatus() does not retry statuses outside 4xx and 5xx, nor a status with extra digits", () => {
    for (const status of [100, 301, 302, 600, 4040, 5000, 0]) {
      assert.equal(retriableStatus("imds", status), false, `IMDS ${status}`);
      assert.equal(retriableStatus("standard", status), false, `standard ${status}`);
      assert.equal(retriableStatus("servicefabric", status), false, `Service Fabric ${status}`);
    }
  });
});

describe("retryAfterMs()", () => {
  test("retryAfterMs() reads whole seconds", () => {
    assert.equal(retryAfterMs("3", NOW), 3000);
    assert.equal(retryAfterMs("0", NOW), 0);
    assert.equal(retryAfterMs(" 30 ", NOW), 30_000);
  });

  test("retryAfterMs() reads fractional seconds without a leading digit, or with a trailing point", () => {
    assert.equal(retryAfterMs(".03", NOW), 30);
    assert.equal(retryAfterMs(" .5 ", NOW), 500);
    assert.equal(retryAfterMs("1.", NOW), 1000);
    assert.equal(retryAfterMs(".", NOW), undefined);
  });

  test("retryAfterMs() reads fractional seconds", () => {
    assert.equal(retryAfterMs("0.5", NOW), 500);
    assert.equal(retryAfterMs("1.25", NOW), 1250);
  });

  test("retryAfterMs() reads an HTTP date in the future as the time until it", () => {
    assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:28:07 GMT", NOW), 7000);
    assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:28:07 GMT", NOW - 500), 7500);
  });

  test("retryAfterMs() reads an HTTP date in the past as 0", () => {
    assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:27:00 GMT", NOW), 0);
    assert.equal(retryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", NOW), 0);
  });

  test("retryAfterMs() gives undefined for garbage, empty and a missing header", () => {
    for (const value of ["soon", "three seconds", "3s", "1e3", "0x10", "", "   ", null]) {
      assert.equal(retryAfterMs(value, NOW), undefined, JSON.stringify(value));
    }
  });
});

describe("retryDelay()", () => {
  const policy: RetryPolicy = DEFAULT_RETRY;

  test("retryDelay() backs off 1 s, 2 s, 4 s on IMDS without jitter", () => {
    assert.deepEqual([1, 2, 3].map((retry) => retryDelay("imds", retry, policy, undefined, zero)), [1000, 2000, 4000]);
  });

  test("retryDelay() adds up to 25% jitter on IMDS", () => {
    assert.deepEqual([1, 2, 3].map((retry) => retryDelay("imds", retry, policy, undefined, one)), [1250, 2500, 5000]);
    assert.equal(retryDelay("imds", 1, policy, undefined, () => 0.5), 1125);
  });

  test("retryDelay() doubles delayMs on IMDS", () => {
    const small = { ...policy, delayMs: 10 };
    assert.deepEqual([1, 2, 3, 4].map((retry) => retryDelay("imds", retry, small, undefined, zero)), [10, 20, 40, 80]);
  });

  test("retryDelay() backs off 1 s, 2 s, 4 s, 8 s, 16 s on Service Fabric, as Microsoft's page advises", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((retry) => retryDelay("servicefabric", retry, policy, undefined, zero)),
      [1000, 2000, 4000, 8000, 16_000],
    );
    assert.equal(retryDelay("servicefabric", 2, policy, 5000, zero), 5000);
    assert.equal(retryDelay("servicefabric", 1, policy, undefined, one), 1250);
  });

  test("retryDelay() waits delayMs on every retry on the other sources, without jitter", () => {
    for (const retry of [1, 2, 3, 10]) {
      assert.equal(retryDelay("standard", retry, policy, undefined, one), 1000);
    }
    assert.equal(retryDelay("standard", 2, { ...policy, delayMs: 7 }, undefined, zero), 7);
  });

  test("retryDelay() waits for Retry-After when it is longer", () => {
    assert.equal(retryDelay("standard", 1, policy, 2000, zero), 2000);
    assert.equal(retryDelay("imds", 1, policy, 3000, zero), 3000);
    assert.equal(retryDelay("imds", 3, policy, 5000, zero), 5000);
  });

  test("retryDelay() keeps its own delay when Retry-After is shorter", () => {
    assert.equal(retryDelay("standard", 1, policy, 500, zero), 1000);
    assert.equal(retryDelay("standard", 1, policy, 0, zero), 1000);
    assert.equal(retryDelay("imds", 3, policy, 3000, zero), 4000);
  });

  test("retryDelay() caps Retry-After at maxRetryAfterMs", () => {
    assert.equal(retryDelay("standard", 1, policy, 3_600_000, zero), 60_000);
    assert.equal(retryDelay("imds", 1, policy, 3_600_000, zero), 60_000);
    assert.equal(retryDelay("standard", 1, { ...policy, maxRetryAfterMs: 5000 }, 30_000, zero), 5000);
  });

  test("retryDelay() never waits longer than maxRetryAfterMs on a long IMDS backoff", () => {
    assert.equal(retryDelay("imds", 8, policy, undefined, one), 60_000);
    assert.equal(retryDelay("imds", 60, policy, undefined, one), 60_000);
  });

  test("retryDelay() never cuts delayMs below itself when delayMs exceeds the cap", () => {
    assert.equal(retryDelay("standard", 1, { ...policy, delayMs: 90_000 }, undefined, zero), 90_000);
  });
});

describe("sleep()", () => {
  test("sleep() resolves after the time", async () => {
    const started = performance.now();
    assert.equal(await sleep(20), undefined);
    // Timers may fire a millisecond early after rounding.
    assert.ok(performance.now() - started >= 18, `resolved after ${performance.now() - started} ms`);
  });

  test("sleep() resolves with a signal that never aborts, and leaves no listener on it", async () => {
    const controller = new AbortController();
    const { signal } = controller;
    const listening = new Set<unknown>();
    // Counts the listeners on this one signal (an instance property, no global is touched).
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((type: string, listener: EventListener, options?: AddEventListenerOptions) => {
      listening.add(listener);
      add(type, listener, options);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((type: string, listener: EventListener) => {
      listening.delete(listener);
      remove(type, listener);
    }) as typeof signal.removeEventListener;
    const waited = sleep(1, signal);
    assert.equal(listening.size, 1, "sleep() listens for the abort while it waits");
    assert.equal(await waited, undefined);
    assert.equal(listening.size, 0, "the listener is removed once the wait is over");
    controller.abort();
  });

  test("sleep() rejects at once with the reason when the signal aborts", async () => {
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const started = performance.now();
    const waiting = sleep(60_000, controller.signal);
    setTimeout(() => controller.abort(reason), 5);
    await assert.rejects(waiting, (error) => error === reason);
    assert.ok(performance.now() - started < 1000, "the 60 s wait must end when the signal aborts");
  });

  test("sleep() rejects at once with the reason when the signal has already aborted", async () => {
    const reason = new Error("already gone");
    const started = performance.now();
    await assert.rejects(sleep(60_000, AbortSignal.abort(reason)), (error) => error === reason);
    assert.ok(performance.now() - started < 1000);
  });
});

describe("retryAfterMs() with values that are neither seconds nor a date", () => {
  for (const value of ["-1", "1,5", "12 34"]) {
    test(`retryAfterMs() ignores ${JSON.stringify(value)} instead of reading it as a date`, () => {
      assert.equal(retryAfterMs(value, Date.UTC(2026, 0, 1)), undefined);
    });
  }
});
