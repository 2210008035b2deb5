/**
 * Fault injection and failure rehearsal.
 *
 * Faults are a script of raw answers per source, each used by one request, in order, before the
 * emulator goes back to behaving. Failure scenarios are named on top of them (`throttled`,
 * `unknown-resource`, `updating`, `server-error`, `slow`, `silent`, `no-identity`): each makes a
 * source answer as its real endpoint does when that goes wrong, with the endpoint's own status,
 * headers and body (docs/sources.md, "Failure rehearsal", says where each body comes from), for
 * a number of token requests or for good.
 * @module
 */

import type { Source } from "../types.ts";
import { visible } from "../redact.ts";
import { EMULATOR_TENANT } from "./token.ts";
import { entraDescription, entraError, entraTime, type FederatedCredential } from "./workload.ts";

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

/**
 * Resolves after `ms` (never, when `ms` is `undefined`), or as soon as one of `signals` aborts,
 * and then leaves no timer and no listener behind. While it waits it holds the event loop, as
 * the connection of a real endpoint that has not answered does: an in-process emulator's
 * `silent` or `hang` keeps a process (and Node 22's test runner) alive until the client gives up.
 */
export function waitFor(ms: number | undefined, ...signals: (AbortSignal | undefined)[]): Promise<void> {
  return new Promise((resolve) => {
    const live = signals.filter((signal): signal is AbortSignal => signal !== undefined);
    if (live.some((signal) => signal.aborted)) return resolve();
    function done() {
      clearInterval(timer);
      for (const signal of live) signal.removeEventListener("abort", done);
      resolve();
    }
    // An interval that fires nothing holds the loop for the indefinite wait.
    const timer = ms === undefined ? setInterval(() => {}, 2 ** 30) : setTimeout(done, ms);
    for (const signal of live) signal.addEventListener("abort", done, { once: true });
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

const uuid = () => crypto.randomUUID();

/**
 * An error in the source's shape (docs/sources.md, error bodies). Service Fabric's nests its
 * correlation ID, as Microsoft's sample error shows
 * (https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling);
 * App Service and Azure ML also send theirs as `X-CORRELATION-ID`, as recorded in
 * azure-sdk-for-net #44685 and Azure-Functions #2392.
 */
export function errorBody(source: Source, status: number, code: string, message: string): Response {
  if (source === "WorkloadIdentity") return entraError(status, code, undefined, message, { now: Date.now() });
  if (source === "AppService" || source === "AzureML") {
    const correlationId = uuid();
    return Response.json({ statusCode: status, message, correlationId }, {
      status,
      headers: { "x-correlation-id": correlationId },
    });
  }
  const body = source === "DefaultToIMDS" || source === "AzureArc"
    ? { error: code, error_description: message }
    : source === "ServiceFabric"
    ? { error: { correlationId: uuid(), code, message } }
    : { error: { code, message } };
  return Response.json(body, { status });
}

// ---------------------------------------------------------------------------------------------
// Failure scenarios
// ---------------------------------------------------------------------------------------------

/** What can go wrong, by name: the names `azmi emulate --fail` takes. */
export type FailureKind =
  | "throttled"
  | "unknown-resource"
  | "updating"
  | "server-error"
  | "slow"
  | "silent"
  | "no-identity";

const KINDS: readonly FailureKind[] = [
  "throttled",
  "unknown-resource",
  "updating",
  "server-error",
  "slow",
  "silent",
  "no-identity",
];

/**
 * A failure to rehearse: one of the named ways a managed identity endpoint fails, answered as
 * that source's real endpoint answers it (docs/sources.md, "Failure rehearsal").
 *
 * | `kind`             | The answer                                                                                      |
 * | ------------------ | ----------------------------------------------------------------------------------------------- |
 * | `throttled`        | 429 with `Retry-After: retryAfterSeconds` (default 1; 0 sends none)                             |
 * | `unknown-resource` | the source's error for a resource Microsoft Entra ID does not know                              |
 * | `updating`         | IMDS's 410 while it is being updated (IMDS only)                                                |
 * | `server-error`     | `status` (500 to 599, default 500) with the source's error body                                 |
 * | `slow`             | the normal answer, `delayMs` late (default 3000)                                                |
 * | `silent`           | no answer at all: every request, IMDS's probe and Arc's challenge included, waits until the client gives up |
 * | `no-identity`      | the source's answer when no such identity is assigned (not Cloud Shell, whose token is the user's) |
 *
 * Each counts the token requests it answers (`silent`: every request) and then lets the next
 * scenario of that source, or the normal answer, take over.
 */
export interface FailureScenario {
  /** What goes wrong. */
  readonly kind: FailureKind;
  /**
   * How many requests it answers, or `"always"`. Default 1 for `throttled`, `updating` and
   * `server-error` (blips), `"always"` for the others (conditions).
   */
  readonly times?: number | "always";
  /** The one source it applies to. Default every source where it applies. */
  readonly source?: Source;
  /** `throttled`: the `Retry-After` in seconds, 0 to 3600 (0: no header). Default 1. */
  readonly retryAfterSeconds?: number;
  /** `slow`: how late each answer comes, 1 to 600,000 ms. Default 3000. */
  readonly delayMs?: number;
  /** `server-error`: the status, 500 to 599. Default 500. */
  readonly status?: number;
}

/** A scenario with its defaults filled in. */
export interface Rehearsed {
  readonly kind: FailureKind;
  readonly retryAfterSeconds: number;
  readonly delayMs: number;
  readonly status: number;
}

/** A scenario waiting in a source's queue: `remaining` requests to answer (`Infinity`: always). */
export interface PendingFailure {
  readonly scenario: Rehearsed;
  remaining: number;
}

/** Every source, in detection order (`serve()`'s default, re-exported from `serve.ts`). */
export const ALL_SOURCES: readonly Source[] = [
  "WorkloadIdentity",
  "ServiceFabric",
  "AppService",
  "AzureML",
  "CloudShell",
  "AzureArc",
  "DefaultToIMDS",
];

/** Aliases of a source's name (`azmi emulate --source`, `@SOURCE` in a failure), beside the names in any case. */
export const SOURCE_ALIASES: ReadonlyMap<string, Source> = new Map<string, Source>([
  ["wi", "WorkloadIdentity"],
  ["aks", "WorkloadIdentity"],
  ["imds", "DefaultToIMDS"],
  ["appservice", "AppService"],
  ["arc", "AzureArc"],
  ["cloudshell", "CloudShell"],
  ["servicefabric", "ServiceFabric"],
  ["ml", "AzureML"],
]);

/** The source a name or alias names (any case), or `undefined`. */
export function sourceNamed(name: string): Source | undefined {
  const lower = name.toLowerCase();
  return ALL_SOURCES.find((source) => source.toLowerCase() === lower) ?? SOURCE_ALIASES.get(lower);
}

/** Why `kind` does not apply to `source`, or `undefined` when it does. */
export function notApplicable(kind: FailureKind, source: Source): string | undefined {
  if (kind === "updating" && source !== "DefaultToIMDS") {
    return "updating is IMDS's answer while it is being updated, for DefaultToIMDS only";
  }
  if (kind === "no-identity" && source === "CloudShell") {
    return "no-identity does not apply to Cloud Shell, which always answers for the signed-in user";
  }
  return undefined;
}

const MAX_TEXT = 1000;

const MAX_TIMES = 1_000_000;
const FORM = "NAME[=VALUE][:COUNT|:always][@SOURCE]";

/** A number within [least, most], or a TypeError naming `what`. */
function bounded(value: unknown, what: string, least: number, most: number, label: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < least || value > most) {
    throw new TypeError(`${label}: ${what} must be a whole number from ${least} to ${most}`);
  }
  return value;
}

/** Checks a scenario given as an object (from the API or the parser) and fills in its defaults. */
function resolve(scenario: FailureScenario, label: string): { rehearsed: Rehearsed; times: number } {
  if (typeof scenario !== "object" || scenario === null || !KINDS.includes(scenario.kind)) {
    const kind = typeof scenario === "object" && scenario !== null ? visible(String(scenario.kind).slice(0, 40)) : "";
    throw new TypeError(`Unknown failure scenario "${kind}": expected one of ${KINDS.join(", ")}`);
  }
  const { kind } = scenario;
  if (scenario.source !== undefined) {
    if (!ALL_SOURCES.includes(scenario.source)) {
      throw new TypeError(`${label}: unknown source "${visible(String(scenario.source).slice(0, 40))}"`);
    }
    const why = notApplicable(kind, scenario.source);
    if (why) throw new TypeError(`${label}: ${why}`);
  }
  const given = (name: keyof FailureScenario, owner: FailureKind) => {
    if (scenario[name] !== undefined && kind !== owner) throw new TypeError(`${label}: ${kind} takes no ${name}`);
  };
  given("retryAfterSeconds", "throttled");
  given("delayMs", "slow");
  given("status", "server-error");
  const times = scenario.times === "always"
    ? Infinity
    : scenario.times === undefined
    ? (kind === "throttled" || kind === "updating" || kind === "server-error" ? 1 : Infinity)
    : bounded(scenario.times, "the count", 1, MAX_TIMES, label);
  return {
    times,
    rehearsed: {
      kind,
      retryAfterSeconds: scenario.retryAfterSeconds === undefined
        ? 1
        : bounded(scenario.retryAfterSeconds, "the Retry-After", 0, 3600, label),
      delayMs: scenario.delayMs === undefined ? 3000 : bounded(scenario.delayMs, "the delay", 1, 600_000, label),
      status: scenario.status === undefined ? 500 : bounded(scenario.status, "the status", 500, 599, label),
    },
  };
}

/**
 * Reads a list of failure scenarios as `azmi emulate --fail` takes it: comma-separated items
 * `NAME[=VALUE][:COUNT|:always][@SOURCE]`, where VALUE is `throttled`'s Retry-After seconds,
 * `slow`'s delay in milliseconds or `server-error`'s status, and SOURCE a source's name (any
 * case) or `imds`, `appservice`, `arc`, `cloudshell`, `servicefabric`, `ml`, `wi`, `aks`.
 * Scenarios of one source follow one another in the list's order.
 *
 * @throws {TypeError} for anything else, naming the item and what was expected.
 *
 * @example A throttled IMDS, then a slow one; App Service without the identity
 * ```ts
 * import { parseFailures } from "@azmi/managed-identity/emulator";
 *
 * const scenarios = parseFailures("throttled=2:3@imds,slow=1500@imds,no-identity@appservice");
 * console.log(scenarios[0]); // { kind: "throttled", retryAfterSeconds: 2, times: 3, source: "DefaultToIMDS" }
 * ```
 */
export function parseFailures(text: string): FailureScenario[] {
  if (typeof text !== "string") throw new TypeError("The failure list must be a string");
  if (text.length > MAX_TEXT) throw new TypeError(`The failure list is too long: at most ${MAX_TEXT} characters`);
  if (text.trim() === "") {
    throw new TypeError(`The failure list is empty: expected items ${FORM}, such as "throttled:2"`);
  }
  const scenarios = text.split(",").map((item) => {
    const trimmed = item.trim();
    const label = `"${visible(trimmed)}"`;
    if (trimmed === "") throw new TypeError(`The failure list "${visible(text.trim())}" has an empty item`);
    const match = /^([a-z-]+)(?:=([^:@]*))?(?::([^@]*))?(?:@(.*))?$/i.exec(trimmed);
    if (!match) throw new TypeError(`Cannot read the failure scenario ${label}: expected ${FORM}`);
    const [, name, value, count, sourceName] = match;
    const kind = name!.toLowerCase() as FailureKind;
    if (!KINDS.includes(kind)) {
      throw new TypeError(
        `Unknown failure scenario "${visible(name!)}" in ${label}: expected one of ${KINDS.join(", ")}`,
      );
    }
    const scenario: { -readonly [K in keyof FailureScenario]: FailureScenario[K] } = { kind };
    if (value !== undefined) {
      const number = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
      if (kind === "throttled") scenario.retryAfterSeconds = number;
      else if (kind === "slow") scenario.delayMs = number;
      else if (kind === "server-error") scenario.status = number;
      else throw new TypeError(`${label}: ${kind} takes no value`);
      if (Number.isNaN(number)) {
        throw new TypeError(
          `The value of ${label} must be ${
            kind === "throttled"
              ? "Retry-After seconds from 0 to 3600"
              : kind === "slow"
              ? "a delay in milliseconds from 1 to 600000"
              : "a status from 500 to 599"
          }`,
        );
      }
    }
    if (count !== undefined) {
      if (count.toLowerCase() === "always") {
        scenario.times = "always";
      } else if (/^\d{1,9}$/.test(count)) {
        scenario.times = Number(count);
      } else {
        throw new TypeError(`The count of ${label} must be a whole number from 1 to ${MAX_TIMES}, or "always"`);
      }
    }
    if (sourceName !== undefined) {
      const source = sourceNamed(sourceName);
      if (!source) {
        throw new TypeError(
          `${label}: unknown source "${visible(sourceName.slice(0, 40))}": expected one of ${
            ALL_SOURCES.join(", ")
          } (any ` +
            `case), or ${[...SOURCE_ALIASES.keys()].join(", ")}`,
        );
      }
      scenario.source = source;
    }
    resolve(scenario, label);
    return scenario as FailureScenario;
  });
  queueFailures(scenarios, new Map());
  return scenarios;
}

/**
 * Appends `scenarios` to each source's queue in `queues` (every source where a scenario
 * applies, unless it names one). A scenario after an `always` one of the same source could never
 * run: that is a TypeError, and nothing is queued.
 */
export function queueFailures(
  scenarios: string | readonly FailureScenario[],
  queues: Map<Source, PendingFailure[]>,
): void {
  const list = typeof scenarios === "string" ? parseFailures(scenarios) : scenarios;
  if (!Array.isArray(list)) throw new TypeError("Failure scenarios must be a string or an array of scenarios");
  const added = new Map<Source, PendingFailure[]>();
  const labels = new Map<PendingFailure, string>();
  for (const scenario of list) {
    const label = describeItem(scenario);
    const { rehearsed, times } = resolve(scenario, label);
    const targets = scenario.source ? [scenario.source] : ALL_SOURCES.filter((s) => !notApplicable(rehearsed.kind, s));
    for (const source of targets) {
      const queue = added.get(source) ?? [...(queues.get(source) ?? [])];
      const last = queue.at(-1);
      if (last && last.remaining === Infinity) {
        throw new TypeError(
          `${label} comes after ${
            labels.get(last) ?? `"${last.scenario.kind}:always"`
          } for ${source}: an "always" scenario must be the last for its source`,
        );
      }
      const pending = { scenario: rehearsed, remaining: times };
      labels.set(pending, label);
      queue.push(pending);
      added.set(source, queue);
    }
  }
  for (const [source, queue] of added) queues.set(source, queue);
}

/** A scenario as `--fail` writes it, for messages. */
function describeItem(scenario: FailureScenario): string {
  if (typeof scenario !== "object" || scenario === null) return `"${visible(String(scenario).slice(0, 40))}"`;
  const value = scenario.retryAfterSeconds ?? scenario.delayMs ?? scenario.status;
  const parts = [
    String(scenario.kind).slice(0, 40),
    value === undefined ? "" : `=${String(value).slice(0, 20)}`,
    scenario.times === undefined ? "" : `:${String(scenario.times).slice(0, 20)}`,
    scenario.source === undefined ? "" : `@${String(scenario.source).slice(0, 40)}`,
  ];
  return `"${visible(parts.join(""))}"`;
}

/**
 * What a source does while a scenario lasts, as a sentence (for `azmi emulate`'s output);
 * `last` says whether normal answers follow it, rather than the source's next scenario.
 */
export function describeFailure(source: Source, pending: PendingFailure, last = true): string {
  const { scenario, remaining } = pending;
  const always = remaining === Infinity;
  const requests = (noun: string) => always ? `every ${noun}` : remaining === 1 ? `1 ${noun}` : `${remaining} ${noun}s`;
  const then = always ? "." : last ? ", then answers as normal." : ", then:";
  switch (scenario.kind) {
    case "slow":
      return `${source} answers ${requests("token request")} ${scenario.delayMs} ms late${then}`;
    case "silent":
      return `${source} leaves ${requests("request")} unanswered (the probe and challenge too)${then}`;
  }
  const what = scenario.kind === "throttled"
    ? `429 (${scenario.retryAfterSeconds ? `Retry-After: ${scenario.retryAfterSeconds} s` : "no Retry-After"})`
    : scenario.kind === "updating"
    ? "410 (IMDS being updated)"
    : scenario.kind === "server-error"
    ? String(scenario.status)
    : scenario.kind === "unknown-resource"
    ? `its answer for an unknown resource (${UNKNOWN_RESOURCE_STATUS[source]})`
    : `its answer for no identity assigned (${NO_IDENTITY_STATUS[source]})`;
  return `${source} answers ${requests("token request")} with ${what}${
    always ? "." : last ? ", then tokens." : ", then:"
  }`;
}

/**
 * Whether a request is a token request, which the scenarios count: IMDS's first-contact probe
 * (sent without `Metadata: true`) and Azure Arc's challenge request (without `Authorization`)
 * are answered as normal, as the real endpoints answer them without any token work.
 */
export function isTokenRequest(source: Source, request: Request): boolean {
  if (source === "DefaultToIMDS") return request.headers.get("metadata") === "true";
  if (source === "AzureArc") return request.headers.has("authorization");
  return true;
}

// The statuses the scenarios answer with (docs/sources.md, "Failure rehearsal").
const UNKNOWN_RESOURCE_STATUS: Readonly<Record<Source, number>> = {
  DefaultToIMDS: 400,
  AzureArc: 400,
  AppService: 500,
  AzureML: 500,
  CloudShell: 400,
  ServiceFabric: 400,
  WorkloadIdentity: 400,
};
const NO_IDENTITY_STATUS: Readonly<Record<Source, number>> = {
  DefaultToIMDS: 400,
  AzureArc: 404,
  AppService: 400,
  AzureML: 400,
  CloudShell: 0,
  ServiceFabric: 404,
  WorkloadIdentity: 400,
};

/** What a failure answer needs to know about the request. */
export interface FailureContext {
  /** The emulator's clock, in milliseconds. */
  readonly now: number;
  /** The resource the request asks for (for workload identity, its scope without `/.default`). */
  readonly resource: string;
  /** Whether the request names a user-assigned identity. */
  readonly userAssigned: boolean;
  /** Workload identity's federated credential, which Entra's AADSTS70021 quotes. */
  readonly credential: FederatedCredential;
  readonly request: Request;
}

/**
 * The answer of a source's real endpoint when there is no such identity. Where each comes from:
 * docs/sources.md, "Failure rehearsal". Cloud Shell has none: it answers for the signed-in user.
 */
export function noIdentityAnswer(source: Source, context: FailureContext): Response {
  const status = NO_IDENTITY_STATUS[source];
  switch (source) {
    case "DefaultToIMDS":
      // azure-sdk-for-net #37278 (Server: IMDS/150.870.65.1015).
      return errorBody(source, status, "invalid_request", "Identity not found");
    case "AzureArc":
      return errorBody(
        source,
        status,
        "identity_not_found",
        "The requested identity has not been assigned to this resource",
      );
    case "AppService":
      // azure-sdk-for-net #43691 (system-assigned where only user-assigned identities are), and the
      // user-assigned answer that azure-search-openai-demo #2148 and MSAL's integration tests quote.
      return errorBody(
        source,
        status,
        "",
        context.userAssigned
          ? "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
          : "Unable to load the proper Managed Identity.",
      );
    case "AzureML":
      return errorBody(source, status, "", "No managed identity found for the specified identity");
    case "ServiceFabric":
      // Microsoft's page: 404 when "the application wasn't assigned a managed identity".
      return errorBody(
        source,
        status,
        "ManagedIdentityNotFound",
        "Managed identity not found for the specified application host.",
      );
    case "WorkloadIdentity": {
      // Entra's AADSTS70021 when no federated credential of the identity trusts the service account.
      const { issuer, subject, audience } = context.credential;
      return entraError(
        status,
        "invalid_request",
        70021,
        `No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer}'. ` +
          `Assertion Subject: '${subject}'. Assertion Audience: '${audience}'.`,
        { now: context.now, request: context.request },
      );
    }
    case "CloudShell":
      throw new TypeError(notApplicable("no-identity", source));
  }
}

/** Entra's AADSTS500011 message for a resource it does not know. */
const unknownPrincipal = (resource: string) =>
  `The resource principal named ${resource} was not found in the tenant named ${EMULATOR_TENANT}. This can happen ` +
  "if the application has not been installed by the administrator of the tenant or consented to by any user in " +
  "the tenant. You might have sent your authentication request to the wrong tenant.";

/** App Service's answer when fetching the token fails, whatever the cause (azure-sdk-for-net #44685). */
const APP_SERVICE_FAILURE = "An unexpected error occured while fetching the AAD Token.";

/** Each source's 429 (docs/sources.md, "Failure rehearsal"). */
function throttledAnswer(source: Source, retryAfterSeconds: number): Response {
  let response: Response;
  if (source === "WorkloadIdentity") {
    // Entra throttles client credentials with a plain-text 429 (MSAL .NET #2855; "Retry-After: 60"
    // in https://learn.microsoft.com/entra/msal/dotnet/advanced/client-and-server-throttling).
    response = new Response("Too Many Requests", {
      status: 429,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  } else if (source === "DefaultToIMDS" || source === "AzureArc") {
    // IMDS's own words (terraform-provider-azurerm #20901); Arc's agent mirrors IMDS's errors.
    response = errorBody(source, 429, "invalid_request", "Temporarily throttled, too many requests");
  } else {
    response = errorBody(source, 429, "TooManyRequests", "Too many requests: throttle limit reached");
  }
  if (retryAfterSeconds) response.headers.set("retry-after", String(retryAfterSeconds));
  return response;
}

/** Each source's answer for a resource Microsoft Entra ID does not know. */
function unknownResourceAnswer(source: Source, context: FailureContext): Response {
  const resource = context.resource.slice(0, 1000);
  const status = UNKNOWN_RESOURCE_STATUS[source];
  switch (source) {
    case "WorkloadIdentity":
      // microsoft-identity-web #2796.
      return entraError(status, "invalid_resource", 500011, unknownPrincipal(resource), {
        now: context.now,
        request: context.request,
      });
    case "DefaultToIMDS":
    case "AzureArc":
    case "ServiceFabric": {
      // IMDS relays Entra's error in its own shape (MSAL .NET #3979).
      const description = entraDescription(500011, unknownPrincipal(resource), { timestamp: entraTime(context.now) });
      return errorBody(source, status, "invalid_resource", description);
    }
    case "AppService":
    case "AzureML":
      // A generic 500 (azure-sdk-for-net #44685; azure-functions-host #9884 got it for a made-up resource).
      return errorBody(source, status, "", APP_SERVICE_FAILURE);
    case "CloudShell":
      // Azure/CloudShell #477.
      return errorBody(
        source,
        status,
        "AudienceNotSupported",
        `Audience ${resource} is not a supported MSI token audience.`,
      );
  }
}

/** Each source's 5xx. */
function serverErrorAnswer(source: Source, status: number, context: FailureContext): Response {
  switch (source) {
    case "WorkloadIdentity":
      return entraError(
        status,
        "temporarily_unavailable",
        undefined,
        "The server is temporarily too busy to handle the request.",
        {
          now: context.now,
          request: context.request,
        },
      );
    case "AppService":
    case "AzureML":
      // Recorded with 500 (azure-sdk-for-net #44685) and 503 (Azure-Functions #1486).
      return errorBody(source, status, "", APP_SERVICE_FAILURE);
    case "DefaultToIMDS":
    case "AzureArc":
      // The 500 row of Microsoft's IMDS error table (how-to-use-vm-token#error-handling).
      return errorBody(source, status, "unknown", "Failed to retrieve token from the Active directory.");
    case "CloudShell":
    case "ServiceFabric":
      return errorBody(source, status, "InternalServerError", "The managed identity service failed");
  }
}

/** The answer of `source`'s real endpoint for a failure scenario other than `slow` and `silent`. */
export function failureAnswer(source: Source, scenario: Rehearsed, context: FailureContext): Response {
  switch (scenario.kind) {
    case "throttled":
      return throttledAnswer(source, scenario.retryAfterSeconds);
    case "unknown-resource":
      return unknownResourceAnswer(source, context);
    case "updating":
      return errorBody(source, 410, "gone", "IMDS is being updated: it will be available again within 70 seconds");
    case "server-error":
      return serverErrorAnswer(source, scenario.status, context);
    case "no-identity":
      return noIdentityAnswer(source, context);
    case "slow":
    case "silent":
      throw new TypeError(`${scenario.kind} has no answer of its own`);
  }
}
