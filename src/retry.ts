/**
 * Retry rules per source (docs/retries.md) and the wait between attempts.
 * @module
 */

import { MAX_TIMER_MS, numberOption } from "./options.ts";
import type { RetryRules } from "./sources/source.ts";

/**
 * Retry settings of a client. Which statuses are retried depends on the source (docs/retries.md).
 *
 * @example Fewer, shorter retries, and a listener that sees them
 * ```ts
 * import { ManagedIdentityClient, TokenCache } from "@azmi/managed-identity";
 *
 * const statuses = [503, 200];
 * const client = new ManagedIdentityClient({
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
 *   // A fake endpoint that is unavailable once, then answers.
 *   fetch: () =>
 *     statuses.shift() === 503
 *       ? new Response(null, { status: 503 })
 *       : Response.json({ access_token: "t", expires_in: 3600 }),
 *   retry: { maxRetries: 2, delayMs: 10, maxRetryAfterMs: 5_000 },
 *   cache: new TokenCache(),
 *   onEvent: (event) => {
 *     if (event.type === "retry") console.log(event.attempt, event.reason, event.delayMs); // 1 "status 503" 10
 *   },
 * });
 * await client.acquireToken("https://vault.azure.net");
 * ```
 */
export interface RetryOptions {
  /** Retries after the first attempt. Default 3. */
  readonly maxRetries?: number;
  /** The first delay in milliseconds; IMDS and Service Fabric double it on each retry. Default 1000. */
  readonly delayMs?: number;
  /** The longest wait a `Retry-After` may ask for, in milliseconds. Default 60000. */
  readonly maxRetryAfterMs?: number;
  /** How long IMDS is retried while it answers 410 (being updated), in milliseconds. Default 70000. */
  readonly imdsUpdateMs?: number;
}

/** Resolved settings; `maxRetries` 0 is a single attempt. */
export type RetryPolicy = { -readonly [K in keyof RetryOptions]-?: number };

/** The default policy. */
export const DEFAULT_RETRY: RetryPolicy = {
  maxRetries: 3,
  delayMs: 1000,
  maxRetryAfterMs: 60_000,
  imdsUpdateMs: 70_000,
};

/** Validates retry options; `false` is a single attempt. */
export function retryPolicy(options: false | RetryOptions | undefined): RetryPolicy {
  if (options === false) return { ...DEFAULT_RETRY, maxRetries: 0 };
  const policy = { ...DEFAULT_RETRY };
  for (const name of Object.keys(policy) as (keyof RetryPolicy)[]) {
    const count = name === "maxRetries";
    // Every setting but the count is a wait in milliseconds, which a timer must be able to hold.
    policy[name] = numberOption(`retry.${name}`, options?.[name], policy[name], 0, count, count ? 100 : MAX_TIMER_MS);
  }
  return policy;
}

// IMDS: 404 while a new identity propagates, 410 while IMDS is updated, and every 5xx.
const IMDS_STATUSES = /^(404|408|410|429|5\d\d)$/;
const STANDARD_STATUSES = /^(404|408|429|500|502|503|504)$/;
// Microsoft Entra ID (workload identity): throttling and server errors, never 400 or 401. Service
// Fabric the same: its page calls 404 a setup to rectify and other 4xx errors not to retry.
const THROTTLED_OR_SERVER = /^(429|5\d\d)$/;

/** Whether an HTTP status is retried under these rules. */
export function retriableStatus(rules: RetryRules, status: number): boolean {
  return (rules === "imds" ? IMDS_STATUSES : rules === "standard" ? STANDARD_STATUSES : THROTTLED_OR_SERVER).test(
    String(status),
  );
}

/**
 * `Retry-After` in milliseconds: delta seconds (also fractional, as some proxies send) or an
 * HTTP date; `undefined` when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const text = value.trim();
  // Delta seconds, also fractional with or without a leading digit (".03", "0.03", "1.").
  if (/^(\d+\.?\d*|\.\d+)$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day or month ("Wed, 21 Oct 2015 07:28:00 GMT"); without letters,
  // Date.parse would read "-1" or "1,5" as dates in 2001.
  const date = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retry number `retry` (1 for the first): IMDS and Service Fabric back off
 * exponentially with up to 25% jitter; the other sources wait `delayMs`. A longer `Retry-After`
 * wins, capped.
 */
export function retryDelay(
  rules: RetryRules,
  retry: number,
  policy: RetryPolicy,
  retryAfter: number | undefined,
  random: () => number,
): number {
  const base = rules === "imds" || rules === "servicefabric"
    ? policy.delayMs * 2 ** (retry - 1) * (1 + random() / 4)
    : policy.delayMs;
  return Math.min(Math.max(base, retryAfter ?? 0), Math.max(policy.maxRetryAfterMs, policy.delayMs));
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
