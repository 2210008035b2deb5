import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Flight, flight, type Flights, join } from "../src/flight.ts";
import { type Deferred, deferred, state, unhandledDuring } from "./helpers/checks.ts";

const KEY = "key";

/** A run that counts its calls, keeps each call's signal and waits for the test to answer it. */
function heldRun<T>() {
  const calls: { signal: AbortSignal; answer: Deferred<T> }[] = [];
  return {
    calls,
    run: (signal: AbortSignal): Promise<T> => {
      const answer = deferred<T>();
      calls.push({ signal, answer });
      return answer.promise;
    },
  };
}

/** Awaits a rejection and returns its reason. */
async function reason(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

describe("flight()", () => {
  test("flight() returns the running flight for a key, so concurrent join() calls share one run", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const waits: Promise<string>[] = [];
    const started: Flight<string>[] = [];
    for (let i = 0; i < 5; i++) {
      const shared = flight(flights, KEY, held.run);
      started.push(shared);
      waits.push(join(flights, KEY, shared));
    }
    assert.equal(held.calls.length, 1);
    assert.ok(started.every((shared) => shared === started[0]));
    assert.equal(started[0]!.waiters, 5);
    assert.equal(flights.size, 1);
    held.calls[0]!.answer.resolve("value");
    assert.deepEqual(await Promise.all(waits), ["value", "value", "value", "value", "value"]);
    assert.equal(started[0]!.waiters, 0);
    assert.equal(held.calls.length, 1);
  });

  test("flight() starts one run per key", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const a = flight(flights, "a", held.run);
    const b = flight(flights, "b", held.run);
    assert.notEqual(a, b);
    assert.equal(held.calls.length, 2);
    assert.equal(flight(flights, "a", held.run), a);
    assert.equal(held.calls.length, 2);
    held.calls[0]!.answer.resolve("for a");
    held.calls[1]!.answer.resolve("for b");
    assert.equal(await join(flights, "a", a), "for a");
    assert.equal(await join(flights, "b", b), "for b");
  });

  test("flight() gives the run the flight's own signal, not a caller's", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const caller = new AbortController();
    const shared = flight(flights, KEY, held.run);
    const aborting = join(flights, KEY, shared, caller.signal);
    const staying = join(flights, KEY, shared);
    const { signal } = held.calls[0]!;
    assert.equal(signal, shared.controller.signal);
    assert.notEqual(signal, caller.signal);
    caller.abort(new Error("caller left"));
    await reason(aborting);
    assert.equal(signal.aborted, false);
    held.calls[0]!.answer.resolve("value");
    assert.equal(await staying, "value");
  });

  test("flight() removes a flight from the map once it succeeds, so the next flight() runs again", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const first = flight(flights, KEY, held.run);
    held.calls[0]!.answer.resolve("first");
    assert.equal(await join(flights, KEY, first), "first");
    assert.equal(flights.has(KEY), false);
    const second = flight(flights, KEY, held.run);
    assert.notEqual(second, first);
    assert.equal(held.calls.length, 2);
    held.calls[1]!.answer.resolve("second");
    assert.equal(await join(flights, KEY, second), "second");
  });

  test("flight() removes a failed flight from the map, so the next flight() runs again", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const first = flight(flights, KEY, held.run);
    const waits = [join(flights, KEY, first), join(flights, KEY, first), join(flights, KEY, first)];
    const failure = new Error("endpoint failed");
    held.calls[0]!.answer.reject(failure);
    for (const wait of waits) assert.equal(await reason(wait), failure);
    assert.equal(flights.has(KEY), false);
    assert.equal(first.waiters, 0);
    const second = flight(flights, KEY, held.run);
    assert.notEqual(second, first);
    assert.equal(held.calls.length, 2);
    held.calls[1]!.answer.resolve("recovered");
    assert.equal(await join(flights, KEY, second), "recovered");
  });

  test("flight() does not let an older flight's settling remove a newer flight under the same key", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const caller = new AbortController();
    const old = flight(flights, KEY, held.run);
    const wait = join(flights, KEY, old, caller.signal);
    caller.abort(new Error("left"));
    await reason(wait);
    const current = flight(flights, KEY, held.run);
    // The old run ends late (it ignored its signal); the current flight must stay in the map.
    held.calls[0]!.answer.reject(new Error("late failure"));
    await state(old.promise);
    assert.equal(flights.get(KEY), current);
    held.calls[1]!.answer.resolve("current");
    assert.equal(await join(flights, KEY, current), "current");
    assert.equal(flights.has(KEY), false);
  });

  test("flight() leaves no unhandled rejection when a flight with no waiters rejects", async () => {
    const flights: Flights<string> = new Map();
    const unhandled = await unhandledDuring(async () => {
      // Rejected later, with no waiter ever.
      const held = heldRun<string>();
      flight(flights, "later", held.run);
      flight(flights, "background", held.run, true);
      held.calls[0]!.answer.reject(new Error("nobody waits"));
      held.calls[1]!.answer.reject(new Error("nobody waits in the background"));
      // Rejected at once by an async run.
      flight(flights, "at once", () => Promise.reject(new Error("immediate")));
      // Every waiter left, then the aborted run rejects with the abort reason.
      const caller = new AbortController();
      const aborted = flight(flights, "aborted", (signal) =>
        new Promise<string>((_resolve, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }));
      const wait = join(flights, "aborted", aborted, caller.signal);
      caller.abort(new Error("left"));
      await reason(wait);
      await reason(aborted.promise);
    });
    assert.deepEqual(unhandled, []);
    assert.equal(flights.size, 0);
  });
});

describe("join()", () => {
  test("join() rejects only the aborting caller's wait, with the signal's reason", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const caller = new AbortController();
    const shared = flight(flights, KEY, held.run);
    const first = join(flights, KEY, shared);
    const aborting = join(flights, KEY, shared, caller.signal);
    const third = join(flights, KEY, shared, new AbortController().signal);
    assert.equal(shared.waiters, 3);
    const why = new Error("caller gave up");
    caller.abort(why);
    // Rejected promptly, while the run is still pending.
    assert.equal(await state(aborting), "rejected");
    assert.equal(await reason(aborting), why);
    assert.equal(await state(first), "pending");
    assert.equal(await state(third), "pending");
    assert.equal(shared.waiters, 2);
    assert.equal(shared.controller.signal.aborted, false);
    assert.equal(flights.get(KEY), shared);
    held.calls[0]!.answer.resolve("value");
    assert.equal(await first, "value");
    assert.equal(await third, "value");
    assert.equal(held.calls.length, 1);
  });

  test("join() aborts the flight and removes it at once when the last waiter aborts", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const one = new AbortController();
    const two = new AbortController();
    const shared = flight(flights, KEY, held.run);
    const first = join(flights, KEY, shared, one.signal);
    const second = join(flights, KEY, shared, two.signal);
    one.abort(new Error("one left"));
    await reason(first);
    assert.equal(shared.controller.signal.aborted, false);
    assert.equal(flights.get(KEY), shared);
    const last = new Error("two left");
    two.abort(last);
    assert.equal(await reason(second), last);
    // The run has not settled (it ignores its signal here), yet the flight is gone and aborted.
    assert.equal(await state(shared.promise), "pending");
    assert.equal(flights.has(KEY), false);
    assert.equal(held.calls[0]!.signal.aborted, true);
    assert.equal(held.calls[0]!.signal.reason, last);
    // A new caller starts a new run.
    const fresh = flight(flights, KEY, held.run);
    assert.notEqual(fresh, shared);
    assert.equal(held.calls.length, 2);
    assert.equal(held.calls[1]!.signal.aborted, false);
    held.calls[1]!.answer.resolve("fresh");
    assert.equal(await join(flights, KEY, fresh), "fresh");
    held.calls[0]!.answer.reject(held.calls[0]!.signal.reason);
  });

  test("join() with an already-aborted signal rejects at once and aborts a flight nobody else waits for", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const shared = flight(flights, KEY, held.run);
    const why = new Error("already gone");
    assert.equal(await reason(join(flights, KEY, shared, AbortSignal.abort(why))), why);
    assert.equal(shared.controller.signal.aborted, true);
    assert.equal(flights.has(KEY), false);
    assert.equal(shared.waiters, 0);
  });

  test("join() does not abort the flight when a waiter aborts after it settled", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const caller = new AbortController();
    const shared = flight(flights, KEY, held.run);
    const wait = join(flights, KEY, shared, caller.signal);
    held.calls[0]!.answer.resolve("value");
    assert.equal(await wait, "value");
    caller.abort(new Error("too late"));
    assert.equal(shared.controller.signal.aborted, false);
    assert.equal(shared.waiters, 0);
  });

  test("join() does not abort a background flight when its last waiter leaves", async () => {
    const flights: Flights<string> = new Map();
    const held = heldRun<string>();
    const caller = new AbortController();
    const shared = flight(flights, KEY, held.run, true);
    assert.equal(shared.background, true);
    const wait = join(flights, KEY, shared, caller.signal);
    caller.abort(new Error("left"));
    await reason(wait);
    assert.equal(shared.waiters, 0);
    assert.equal(held.calls[0]!.signal.aborted, false);
    assert.equal(flights.get(KEY), shared);
    // A later caller joins the same background run instead of starting another.
    assert.equal(flight(flights, KEY, held.run), shared);
    assert.equal(held.calls.length, 1);
    held.calls[0]!.answer.resolve("refreshed");
    assert.equal(await shared.promise, "refreshed");
    await state(shared.promise);
    assert.equal(flights.has(KEY), false);
  });
});
