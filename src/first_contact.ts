/**
 * The first contact with IMDS: "is there a managed identity endpoint here at all?", answered
 * in about a second. IMDS is what detection assumes on every machine that is not on Azure (a
 * laptop, CI, a container elsewhere), where nothing answers 169.254.169.254 (a refused
 * connection, or an address that swallows packets) or something else does: AWS's and Google's
 * metadata services, Docker Desktop, a corporate proxy or device. Until IMDS has answered once,
 * a probe goes first: the token request without `Metadata: true`, which real IMDS answers at
 * once with 400 and a JSON error, without token work (as `@azure/identity`'s
 * DefaultAzureCredential probes). A probe rather than a short first attempt, because a real
 * token request may take IMDS seconds (it fetches the token from Microsoft Entra ID on a cache
 * miss): cutting it at one second would call a slow VM "absent".
 *
 * IMDS's answer ({@linkcode isImdsAnswer}) proves IMDS is there, from then on for good: the full
 * retry and timeout rules apply, so a blip on a real VM is retried. No answer within the probe's
 * time, a failed connection, or any other answer proves it absent: the call ends at once with
 * `unavailable`, and the absence is remembered for {@linkcode ABSENCE_REMEMBERED_MS}, so calls
 * soon after fail at once too (saying so). What is known is kept per `fetch` (a client's failing
 * custom `fetch` says nothing of another's), and an absence found within a probe budget applies
 * only to clients whose budget is no larger. Concurrent first calls share one probe.
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import type { HttpReply, RequestSpec } from "./sources/source.ts";
import type { Source } from "./types.ts";

/** How long the probe waits for an answer. */
export const PROBE_TIMEOUT_MS = 1000;

/** How long an absence is remembered before the next call probes again. */
export const ABSENCE_REMEMBERED_MS = 10_000;

/**
 * What this process knows of an endpoint through one `fetch`: it answered, it is being probed,
 * or it was absent; the last two with the probe's budget.
 */
export type Contact =
  | { readonly answered: true }
  | { readonly probing: Promise<void>; readonly timeoutMs: number }
  | { readonly absent: string; readonly since: number; readonly timeoutMs: number; readonly status?: number };

/**
 * What the first contact needs from the client. The transport's functions are handed over
 * rather than imported, so that this module loads on its own (only until IMDS has answered)
 * without splitting the eager bundle.
 */
export interface ContactOptions {
  readonly source: Source;
  /** The endpoint's origin and path, the key of what is known. */
  readonly endpoint: string;
  /** What is known through this client's `fetch`, by endpoint: shared by the clients of a cache that use it. */
  readonly contacts: Map<string, Contact>;
  readonly now: () => number;
  /** How long the probe may take: {@linkcode PROBE_TIMEOUT_MS}, or the client's shorter timeout. */
  readonly timeoutMs: number;
  /** Sends one request with `timeoutMs` and no retry (the transport's `sendOnce`). */
  readonly send: (spec: RequestSpec) => Promise<HttpReply>;
  /** Waits for the shared probe; ends this caller's wait alone when its signal aborts. */
  readonly wait: (probing: Promise<void>) => Promise<void>;
}

function absence(
  endpoint: string,
  reason: string,
  options: ContactOptions,
  status?: number,
  since?: number,
): ManagedIdentityError {
  const remembered = since === undefined
    ? ""
    : ` (found ${Math.round((options.now() - since) / 100) / 10} s ago; asked again ${
      ABSENCE_REMEMBERED_MS / 1000
    } s after that)`;
  return new CredentialUnavailableError(
    `No managed identity endpoint here: IMDS at ${endpoint} ${reason}${remembered}`,
    { source: options.source, endpoint, status },
  );
}

/**
 * Whether an answer to the probe is Azure IMDS's: a `Server` header naming IMDS (real IMDS sends
 * `Server: IMDS/150.870.65.1854`, as azure-sdk-for-go's live recording of
 * `TestDefaultAzureCredential_IMDSLive` shows), or a body that is a JSON object with a string
 * `error`, the shape of every IMDS error (to the probe: 400 `{"error":"invalid_request",
 * "error_description":"Required metadata header not specified"}`). Anything else answering at
 * the address is something other than IMDS (docs/retries.md, first contact): AWS's metadata
 * service (401, HTML), Google's (403 or 404, text), Docker Desktop (403 "...unreachable
 * network"), a proxy's or a device's page. The Azure SDKs moved on from such answers after
 * users met them (azure-sdk-for-python #20554 and PR #36016, azure-sdk-for-go #23250 and PR
 * #23273, azure-sdk-for-net #41657 and #44999).
 */
export function isImdsAnswer(reply: HttpReply): boolean {
  if (/^IMDS\//i.test(reply.headers.get("server") ?? "")) return true;
  // JSON.parse is linear; a body that is not an object (or not JSON) is not IMDS's.
  try {
    const body: unknown = JSON.parse(reply.body);
    return body !== null && typeof body === "object" && typeof (body as { error?: unknown }).error === "string";
  } catch {
    return false;
  }
}

/** What the probe found: `undefined` when IMDS answered, else why it is absent. */
type Verdict = undefined | { readonly reason: string; readonly status?: number };

async function probe(spec: RequestSpec, endpoint: string, options: ContactOptions): Promise<Verdict> {
  // The token request without `Metadata: true`: real IMDS refuses it at once, without token work.
  const { Metadata: _left, ...headers } = spec.headers;
  try {
    const reply = await options.send({ method: "GET", url: spec.url, headers });
    if (isImdsAnswer(reply)) {
      options.contacts.set(endpoint, { answered: true });
      return undefined;
    }
    // What answered is shown, cut short and through the redaction gate (it loads on this path only).
    const { endpointText } = await import("./redact.ts");
    const said = endpointText(reply.body, [], 100);
    return {
      reason: `answered ${reply.status}, which is not Azure IMDS's answer${said ? ` ("${said}")` : ""}`,
      status: reply.status,
    };
  } catch (error) {
    if (!(error instanceof ManagedIdentityError)) throw error;
    if (error.code === "timeout") return { reason: `did not answer within ${options.timeoutMs} ms` };
    if (error.code === "unavailable") {
      return { reason: `cannot be reached (${(error.cause as Error | undefined)?.message})` };
    }
    // Something answered, but not as IMDS would (a redirect, a broken or oversized body).
    if (error.status !== undefined || error.code === "invalid_response") {
      return { reason: `answered what is not Azure IMDS's answer (${error.message})`, status: error.status };
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
  const { endpoint, timeoutMs } = options;
  const known = options.contacts.get(endpoint);
  if (known && "answered" in known) return;
  // An absence found within a larger probe budget than this client's says nothing of what it would find.
  if (
    known && "absent" in known && options.now() - known.since < ABSENCE_REMEMBERED_MS && timeoutMs <= known.timeoutMs
  ) {
    throw absence(endpoint, known.absent, options, known.status, known.since);
  }
  let probing = known && "probing" in known && timeoutMs <= known.timeoutMs ? known.probing : undefined;
  if (!probing) {
    const since = options.now();
    probing = probe(spec, endpoint, options).then((verdict) => {
      if (verdict === undefined) return;
      const { reason, status } = verdict;
      options.contacts.set(endpoint, { absent: reason, since, timeoutMs, ...(status ? { status } : {}) });
      throw absence(endpoint, reason, options, status);
    }, (error) => {
      options.contacts.delete(endpoint);
      throw error;
    });
    options.contacts.set(endpoint, { probing, timeoutMs });
    probing.catch(() => {});
  }
  await options.wait(probing);
}
