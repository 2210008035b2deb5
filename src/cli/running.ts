/**
 * What the commands that keep running share (`azmi emulate`, and its relay of real tokens): a
 * value quoted for a POSIX shell's export line, and the wait for a stop (a signal, or the
 * caller's `until`).
 * @module
 */

/** A value for a POSIX shell: single-quoted, with embedded single quotes closed and escaped. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Resolves when the signal aborts, or (without one) on SIGINT or SIGTERM; then removes its listeners. */
export function stopped(until: AbortSignal | undefined): Promise<string> {
  if (until) {
    return new Promise((resolve) => {
      if (until.aborted) return resolve("stopped");
      until.addEventListener("abort", () => resolve("stopped"), { once: true });
    });
  }
  type Listener = () => void;
  const runtime = globalThis as {
    Deno?: {
      addSignalListener(signal: string, listener: Listener): void;
      removeSignalListener(signal: string, listener: Listener): void;
    };
    process?: { on(signal: string, listener: Listener): unknown; off(signal: string, listener: Listener): unknown };
  };
  return new Promise((resolve) => {
    const removals: (() => void)[] = [];
    for (const signal of ["SIGINT", "SIGTERM"]) {
      const listener = () => {
        for (const remove of removals) remove();
        resolve(signal);
      };
      try {
        if (runtime.Deno) {
          runtime.Deno.addSignalListener(signal, listener);
          removals.push(() => runtime.Deno!.removeSignalListener(signal, listener));
        } else if (runtime.process) {
          runtime.process.on(signal, listener);
          removals.push(() => runtime.process!.off(signal, listener));
        }
      } catch {
        // Deno on Windows has no SIGTERM listener: SIGINT (Ctrl+C) still stops it.
      }
    }
  });
}
