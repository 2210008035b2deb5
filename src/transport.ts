/**
 * The one way out to the network. Every request goes through `send`: the `Request` is built
 * afresh on each attempt (so a POST body is never lost), redirects are refused, each attempt
 * has its own timeout combined with the caller's signal, the body is read under a size cap, and
 * every failure becomes a {@linkcode ManagedIdentityError}.
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import { retriableStatus, retryAfterMs, retryDelay, type RetryPolicy } from "./retry.ts";
import type { HostRule, HttpReply, RequestSpec, RetryRules } from "./sources/source.ts";
import { endpointName, requestSecrets } from "./sources/source.ts";
import type { FetchLike, Source } from "./types.ts";

/** Bodies larger than this are refused: no managed identity endpoint sends one. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The `fetch` a source uses unless the caller gives one: for a `local` endpoint, HTTP/1.1 over a
 * socket of the client's own, which no proxy ever sees (src/direct_fetch.ts, loaded on the first
 * request); for Microsoft Entra ID (`authority`), the runtime's `fetch`, proxy and all.
 */
export function defaultFetch(source: Source, rule: HostRule = "local"): FetchLike {
  const key = rule === "local" ? source : "";
  let fetch = DEFAULT_FETCH.get(key);
  if (!fetch) {
    let direct: Promise<FetchLike> | undefined;
    fetch = rule === "local"
      ? async (request) => (await (direct ??= import("./direct_fetch.ts").then((m) => m.directFetch(source))))(request)
      : (request) => globalThis.fetch(request);
    DEFAULT_FETCH.set(key, fetch);
  }
  return fetch;
}

// One default fetch per source, so that what a cache knows through it (src/first_contact.ts) is shared.
const DEFAULT_FETCH = new Map<string, FetchLike>();

/** How one attempt is made. */
export interface AttemptOptions {
  readonly fetch: FetchLike;
  readonly source: Source;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * Settles like `promise`, or rejects with the signal's reason as soon as it aborts. Its listener
 * is removed once either happens, so that a long-lived signal (the caller's, an attempt's
 * `AbortSignal.timeout`, which Deno keeps the process alive for while it has a listener) is left
 * as it was found.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The `aborted` error for a caller's signal. */
export function abortedError(source: Source, signal: AbortSignal, endpoint?: string): ManagedIdentityError {
  return new ManagedIdentityError("aborted", `Token request to "${source}" was aborted by the caller`, {
    source,
    endpoint,
    cause: signal.reason,
  });
}

async function readCapped(response: Response, spec: RequestSpec, source: Source): Promise<string> {
  const tooLarge = () =>
    new ManagedIdentityError(
      "invalid_response",
      `Cannot use the response of "${source}": the body is larger than ${MAX_BODY_BYTES} bytes`,
      { source, status: response.status, endpoint: endpointName(spec.url) },
    );
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * Makes one attempt: sends `spec`, reads the body, and maps failures to errors:
 * the caller's abort to `aborted`, the attempt's timeout to `timeout`, a failed connection to
 * `unavailable`, the runtime's refusal to connect (Deno without `--allow-net`) to
 * `invalid_configuration`, a redirect to `request_failed`, an oversized body to `invalid_response`.
 */
export async function sendOnce(spec: RequestSpec, options: AttemptOptions): Promise<HttpReply> {
  const { source } = options;
  const endpoint = endpointName(spec.url);
  const secrets = requestSecrets(spec);
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let request: Request;
  try {
    request = new Request(spec.url, {
      method: spec.method,
      headers: spec.headers,
      body: spec.body,
      redirect: "manual",
      signal,
    });
  } catch {
    // Only a header value the Fetch standard refuses (a line break in a secret variable) gets
    // here; the runtime's message quotes the value, so it is not kept as `cause`.
    throw new ManagedIdentityError(
      "invalid_configuration",
      `Cannot build the request to "${source}" at ${endpoint}: a header value has characters HTTP refuses`,
      { source, endpoint },
    );
  }
  try {
    const attempt = async (): Promise<HttpReply> => {
      const response: unknown = await options.fetch(request);
      if (!(response instanceof Response)) {
        throw new ManagedIdentityError(
          "invalid_configuration",
          `The fetch option must return a Response: it returned ${
            response === null ? "null" : Array.isArray(response) ? "an array" : typeof response
          } for the request to "${source}"`,
          { source, endpoint },
        );
      }
      if ((response.status >= 300 && response.status < 400) || response.type === "opaqueredirect") {
        await response.body?.cancel().catch(() => {});
        throw new ManagedIdentityError(
          "request_failed",
          `Cannot acquire token from "${source}": endpoint answered a redirect (${response.status}), which is refused`,
          { source, status: response.status, endpoint },
        );
      }
      let body: string;
      try {
        body = await readCapped(response, spec, source);
      } catch (error) {
        if (error instanceof ManagedIdentityError || signal.aborted) throw error;
        const { summarize } = await import("./failure.ts");
        const cause = summarize(error, secrets, spec.url);
        // The endpoint answered, then the connection broke: not "unavailable", but worth a retry.
        throw transient(
          new ManagedIdentityError(
            "request_failed",
            `Cannot acquire token from "${source}": the connection broke while reading the ${response.status} answer (${cause.message})`,
            { source, status: response.status, endpoint, cause },
          ),
        );
      }
      return { status: response.status, headers: response.headers, body };
    };
    return await raceAbort(attempt(), signal);
  } catch (error) {
    if (options.signal?.aborted) throw abortedError(source, options.signal, endpoint);
    if (error instanceof ManagedIdentityError && !timeout.aborted) throw error;
    // A runtime's failure is summarised by src/failure.ts, which loads on the first failure only.
    const { refusedRequest, summarize } = await import("./failure.ts");
    if (timeout.aborted) {
      throw transient(
        new ManagedIdentityError("timeout", `Token request to "${source}" timed out after ${options.timeoutMs} ms`, {
          source,
          endpoint,
          cause: summarize(error, secrets),
        }),
      );
    }
    // The runtime refused the permission (Deno without --allow-net): a configuration error,
    // never retried, and never "unavailable", which would send a credential chain on silently.
    const refused = refusedRequest(error, spec.url, { source, endpoint }, secrets);
    if (refused) throw refused;
    const cause = summarize(error, secrets, spec.url);
    throw transient(
      new CredentialUnavailableError(`Cannot reach "${source}" at ${endpoint}: ${cause.message}`, {
        source,
        endpoint,
        cause,
      }),
    );
  }
}

// Failures where nothing, or not all, came back (no answer, a timeout, a broken body): worth
// another attempt, unlike an answer that refused.
const TRANSIENT = new WeakSet<ManagedIdentityError>();

function transient(error: ManagedIdentityError): ManagedIdentityError {
  TRANSIENT.add(error);
  return error;
}

/** How a request is retried. */
export interface SendOptions extends AttemptOptions {
  readonly rules: RetryRules;
  readonly policy: RetryPolicy;
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random: () => number;
  /** Endpoints that answered 429, with the time their `Retry-After` ends. */
  readonly throttled: Map<string, number>;
  readonly onRetry?: (attempt: number, delayMs: number, reason: string) => void;
}

/**
 * Sends `spec` under the source's retry rules (docs/retries.md) and returns the last
 * reply. Retried: the rules' statuses, network errors and attempt timeouts. Never retried: other
 * statuses, a request marked `retry: false` (Arc's challenge), a caller's abort. IMDS keeps
 * retrying a 410 until `imdsUpdateMs` have passed (IMDS answers 410 while it is updated, for up
 * to 70 seconds). A 429's `Retry-After` is remembered per endpoint, so that calls made before
 * it ends fail at once instead of hammering a throttled endpoint.
 */
export async function send(spec: RequestSpec, options: SendOptions): Promise<HttpReply> {
  const { rules, policy, source, signal } = options;
  const endpoint = endpointName(spec.url);
  const started = options.now();
  for (let retry = 0;; retry++) {
    // A remembered 429 stops new calls; this loop itself has waited its Retry-After already.
    const until = options.throttled.get(endpoint) ?? 0;
    if (retry === 0 && until > options.now()) {
      throw new ManagedIdentityError(
        "request_failed",
        `Cannot acquire token from "${source}": the endpoint answered 429 and asked for ${
          Math.ceil((until - options.now()) / 1000)
        } s more before another request`,
        { source, status: 429, endpoint },
      );
    }
    let reply: HttpReply | undefined;
    let failure: ManagedIdentityError | undefined;
    try {
      reply = await sendOnce(spec, options);
    } catch (error) {
      if (!(error instanceof ManagedIdentityError) || !TRANSIENT.has(error)) throw error;
      failure = error;
    }
    const retryAfter = reply ? retryAfterMs(reply.headers.get("retry-after"), options.now()) : undefined;
    if (reply?.status === 429 && retryAfter !== undefined) {
      options.throttled.set(endpoint, options.now() + Math.min(retryAfter, policy.maxRetryAfterMs));
    }
    if (reply && !retriableStatus(rules, reply.status)) return reply;
    // IMDS's 410 keeps retrying while it is updated, unless retries are off: `retry: false` is
    // exactly one request on every source and status.
    const updating = rules === "imds" && reply?.status === 410 && policy.maxRetries > 0 &&
      options.now() - started < policy.imdsUpdateMs;
    if (spec.retry === false || (retry >= policy.maxRetries && !updating)) {
      if (reply) return reply;
      throw failure!;
    }
    let delay = retryDelay(rules, retry + 1, policy, retryAfter, options.random);
    if (updating) delay = Math.min(delay, 10 * policy.delayMs);
    options.onRetry?.(retry + 1, delay, reply ? `status ${reply.status}` : failure!.code);
    try {
      await options.sleep(delay, signal);
    } catch {
      throw abortedError(source, signal!, endpoint);
    }
  }
}
