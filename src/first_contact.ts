/**
 * The first contact with IMDS: "is there a managed identity endpoint here at all?", answered
 * in about a second. IMDS is what detection assumes on every machine that is not on Azure (a
 * laptop, CI, a container elsewhere), where nothing answers 169.254.169.254: a refused
 * connection, or (behind a firewall) an address that swallows packets. Until IMDS has answered
 * once, a probe goes first: the token request without `Metadata: true`, which real IMDS answers
 * at once with 400 (as `@azure/identity`'s DefaultAzureCredential probes). A probe rather than a
 * short first attempt, because a real token request may take IMDS seconds (it fetches the token
 * from Microsoft Entra ID on a cache miss): cutting it at one second would call a slow VM
 * "absent". The probe costs one small request per endpoint and process.
 *
 * Any HTTP answer proves IMDS is there, from then on for good: the full retry and timeout rules
 * apply, so a blip on a real VM is retried. No answer within the probe's time, a failed
 * connection, or Docker Desktop's 403 "unreachable" proves it absent: the call ends at once
 * with `unavailable`, and the absence is remembered for {@linkcode ABSENCE_REMEMBERED_MS}, so
 * calls soon after fail at once too (saying so). Concurrent first calls share one probe.
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import type { HttpReply, RequestSpec } from "./sources/source.ts";
import type { Source } from "./types.ts";

/** How long the probe waits for an answer. */
export const PROBE_TIMEOUT_MS = 1000;

/** How long an absence is remembered before the next call probes again. */
export const ABSENCE_REMEMBERED_MS = 10_000;

/** What this process knows of an endpoint: it answered, it is being probed, or it was absent. */
export type Contact =
  | { readonly answered: true }
  | { readonly probing: Promise<void> }
  | { readonly absent: string; readonly since: number };

/**
 * What the first contact needs from the client. The transport's functions are handed over
 * rather than imported, so that this module loads on its own (only until IMDS has answered)
 * without splitting the eager bundle.
 */
export interface ContactOptions {
  readonly source: Source;
  /** The endpoint's origin and path, the key of what is known. */
  readonly endpoint: string;
  /** What is known, by endpoint: shared by every client of a cache, like the 429 memory. */
  readonly contacts: Map<string, Contact>;
  readonly now: () => number;
  /** How long the probe may take: {@linkcode PROBE_TIMEOUT_MS}, or the client's shorter timeout. */
  readonly timeoutMs: number;
  /** Sends one request with `timeoutMs` and no retry (the transport's `sendOnce`). */
  readonly send: (spec: RequestSpec) => Promise<HttpReply>;
  /** Waits for the shared probe; ends this caller's wait alone when its signal aborts. */
  readonly wait: (probing: Promise<void>) => Promise<void>;
}

function absence(endpoint: string, reason: string, options: ContactOptions, since?: number): ManagedIdentityError {
  const remembered = since === undefined
    ? ""
    : ` (found ${Math.round((options.now() - since) / 100) / 10} s ago; asked again ${
      ABSENCE_REMEMBERED_MS / 1000
    } s after that)`;
  return new CredentialUnavailableError(
    `No managed identity endpoint here: IMDS at ${endpoint} ${reason}${remembered}`,
    { source: options.source, endpoint },
  );
}

async function probe(spec: RequestSpec, endpoint: string, options: ContactOptions): Promise<string | undefined> {
  // The token request without `Metadata: true`: real IMDS refuses it at once, without token work.
  const { Metadata: _left, ...headers } = spec.headers;
  try {
    const reply = await options.send({ method: "GET", url: spec.url, headers });
    // In the body's first 16 KiB, as httpError() reads it (src/failure.ts), not in all of a body
    // that may run to the read cap.
    if (reply.status === 403 && /unreachable/i.test(reply.body.slice(0, 16 * 1024))) {
      return "is unreachable (Docker Desktop's answer)";
    }
    options.contacts.set(endpoint, { answered: true });
    return undefined;
  } catch (error) {
    if (!(error instanceof ManagedIdentityError)) throw error;
    if (error.code === "timeout") return `did not answer within ${options.timeoutMs} ms`;
    if (error.code === "unavailable") return `cannot be reached (${(error.cause as Error | undefined)?.message})`;
    // It answered something (a redirect, a broken body): it is there.
    if (error.status !== undefined) {
      options.contacts.set(endpoint, { answered: true });
      return undefined;
    }
    throw error;
  }
}

/**
 * Resolves once the endpoint of `spec` is known to answer; rejects with `unavailable` when it
 * does not (now, or within the remembered window), or with `aborted` when the caller's signal
 * ends this caller's wait (the shared probe goes on for the others).
 */
export async function firstContact(spec: RequestSpec, options: ContactOptions): Promise<void> {
  const { endpoint } = options;
  const known = options.contacts.get(endpoint);
  if (known && "answered" in known) return;
  if (known && "absent" in known && options.now() - known.since < ABSENCE_REMEMBERED_MS) {
    throw absence(endpoint, known.absent, options, known.since);
  }
  let probing = known && "probing" in known ? known.probing : undefined;
  if (!probing) {
    const since = options.now();
    probing = probe(spec, endpoint, options).then((reason) => {
      if (reason === undefined) return;
      options.contacts.set(endpoint, { absent: reason, since });
      throw absence(endpoint, reason, options);
    }, (error) => {
      options.contacts.delete(endpoint);
      throw error;
    });
    options.contacts.set(endpoint, { probing });
    probing.catch(() => {});
  }
  await options.wait(probing);
}
