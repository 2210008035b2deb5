/**
 * Fakes that never answer, holding the event loop open as the real thing does: a connection
 * nobody answers is a socket, a file open that never returns is a request in the runtime's I/O
 * pool, and both keep a process alive until they end. A bare `new Promise(() => {})` holds
 * nothing, so a runtime may decide the test is over while it waits (Node 22's test runner
 * cancels such a test and every one after it in the file).
 */

const holds = new Set<ReturnType<typeof setInterval>>();

function hold(): () => void {
  // A ref'd interval: it never fires anything, and stops when released.
  const timer = setInterval(() => {}, 2 ** 30);
  holds.add(timer);
  return () => {
    clearInterval(timer);
    holds.delete(timer);
  };
}

/**
 * A promise that never resolves. When `signal` aborts it rejects with the signal's reason, as
 * `fetch` does, and lets go of the event loop; with no signal it holds on until
 * {@link releaseStalls}, which the test file calls in an `after` hook.
 */
export function stall<T = never>(signal?: AbortSignal): Promise<T> {
  return new Promise<T>((_resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const release = hold();
    signal?.addEventListener("abort", () => {
      release();
      reject(signal.reason);
    }, { once: true });
  });
}

/** A `fetch` fake for an endpoint that accepts the request and never answers it. */
export const neverAnswers = (request: Request): Promise<Response> => stall(request.signal);

/** Lets go of every stall no signal ended (for an `after` hook). */
export function releaseStalls(): void {
  for (const timer of holds) clearInterval(timer);
  holds.clear();
}

/** How many stalls still hold the event loop (a test asserts that a signal released its own). */
export function stallsHeld(): number {
  return holds.size;
}
