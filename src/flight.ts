/**
 * Single flight: concurrent callers for one key share one request, like jose's remote JWKS.
 * The shared request runs on its own signal, not any caller's: a caller's abort ends only that
 * caller's wait, and the request is aborted only when every waiter has left. A failed request
 * is dropped from the map, so the next caller tries again. No rejection can go unhandled.
 * @module
 */

import { raceAbort } from "./transport.ts";

/** One shared request. */
export interface Flight<T> {
  readonly promise: Promise<T>;
  readonly controller: AbortController;
  /** Callers waiting now; a background flight is never aborted for lack of them. */
  waiters: number;
  readonly background: boolean;
}

/** The in-flight requests by key. */
export type Flights<T> = Map<string, Flight<T>>;

/** The flight under `key`, or a new one running `run` with the flight's own signal. */
export function flight<T>(
  flights: Flights<T>,
  key: string,
  run: (signal: AbortSignal) => Promise<T>,
  background = false,
): Flight<T> {
  const existing = flights.get(key);
  if (existing) return existing;
  const controller = new AbortController();
  const promise = run(controller.signal);
  const created: Flight<T> = { promise, controller, waiters: 0, background };
  flights.set(key, created);
  const settle = () => {
    if (flights.get(key) === created) flights.delete(key);
  };
  // Handles the rejection as well: a flight nobody waits for must not reject unhandled.
  promise.then(settle, settle);
  return created;
}

/**
 * Waits for a flight, ending this caller's wait (only) when `signal` aborts; rejects with the
 * signal's reason then. The last waiter to abort also aborts the shared request.
 */
export async function join<T>(flights: Flights<T>, key: string, shared: Flight<T>, signal?: AbortSignal): Promise<T> {
  shared.waiters++;
  try {
    return await (signal ? raceAbort(shared.promise, signal) : shared.promise);
  } finally {
    shared.waiters--;
    if (shared.waiters === 0 && signal?.aborted && !shared.background) {
      // Nobody is left: forget the flight at once (a new caller starts afresh) and stop it.
      if (flights.get(key) === shared) flights.delete(key);
      shared.controller.abort(signal.reason);
    }
  }
}
