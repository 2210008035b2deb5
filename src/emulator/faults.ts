/**
 * Fault injection: a script of answers per source, each used by one request, in order, before
 * the emulator goes back to behaving.
 * @module
 */

/** One scripted answer. */
export interface Fault {
  /** Wait this long before answering (or dropping). */
  readonly delayMs?: number;
  /** Answer with this status (and `body`, default an error body of the source's shape). */
  readonly status?: number;
  /** The body to send, as is: use it for malformed bodies (`"{\"access_token\":"`, HTML, ...). */
  readonly body?: string;
  /** Extra response headers, such as `{ "Retry-After": "2" }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Send the headers, then break the connection before the body is complete. */
  readonly drop?: boolean;
  /** Never answer (the client's timeout must end the wait). */
  readonly hang?: boolean;
}

/** Waits `ms`, ending early (quietly) when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** A response whose body breaks after its first bytes: the connection drops mid-body. */
export function droppedResponse(status = 200): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"access_token":"'));
    },
    pull(controller) {
      controller.error(new Error("emulated dropped connection"));
    },
  });
  return new Response(stream, { status, headers: { "content-type": "application/json" } });
}
