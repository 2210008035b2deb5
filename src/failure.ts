/**
 * Failures, made safe to show: what an endpoint said in an error body, and a runtime's own
 * error about the endpoint's bytes. Everything endpoint-controlled passes the one gate,
 * `endpointText()` in `src/redact.ts`. This module and the gate load on the first failure only
 * (`import()` from the transport and the response parsers), so a success never pays for them.
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import { endpointText, TEXT_WINDOW } from "./redact.ts";
import type { HttpReply, ReplyContext } from "./response.ts";
import type { Source } from "./types.ts";

/** What an error body said, in any source's shape. */
export interface ErrorBody {
  readonly error?: string;
  readonly errorDescription?: string;
  readonly correlationId?: string;
}

const str = (value: unknown): string | undefined => typeof value === "string" && value !== "" ? value : undefined;

/**
 * Reads what an error body says, whatever the source's shape: IMDS and Arc
 * `{error, error_description}`, App Service and Azure ML `{statusCode, message, correlationId}`,
 * Cloud Shell `{error: {code, message}}`, Service Fabric `{error: {correlationId, code, message}}`
 * (https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling).
 * A body that is not JSON gives a short excerpt as its description. Every field passes through
 * {@linkcode endpointText}: the body is parsed first and each decoded field is redacted, so no
 * JSON escape hides a secret.
 *
 * @param secrets The values the request carried (secret headers): cut out of every field.
 */
export function parseErrorBody(text: string, secrets: readonly string[] = []): ErrorBody {
  // Parsed here, not with response.ts's helper: importing it would split that module out of the
  // eager bundle into a chunk of its own.
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the text itself is the description.
  }
  const body = parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
    ? parsed as Record<string, unknown>
    : undefined;
  const safe = (value: string | undefined, max: number) => {
    const shown = value === undefined ? "" : endpointText(value, secrets, max);
    return shown === "" ? undefined : shown;
  };
  if (!body) {
    const description = safe(text, 160);
    return description === undefined ? {} : { errorDescription: description };
  }
  const nested = body.error !== null && typeof body.error === "object"
    ? body.error as Record<string, unknown>
    : undefined;
  const error = safe(str(body.error) ?? str(nested?.code), 100);
  const description = safe(
    str(body.error_description) ?? str(nested?.message) ?? str(body.message) ??
      str(body.Message),
    500,
  );
  const correlationId = safe(str(body.correlationId) ?? str(body.correlation_id) ?? str(nested?.correlationId), 100);
  return {
    ...(error ? { error } : {}),
    ...(description ? { errorDescription: description } : {}),
    ...(correlationId ? { correlationId } : {}),
  };
}

/**
 * The error for an HTTP status that is not success, with what the body said. Without a correlation
 * ID in the body, one is read from `x-ms-correlation-id`, App Service's and Functions'
 * `X-CORRELATION-ID` (sent even with an empty body: azure-sdk-for-net #30467, #32786), or
 * `x-ms-request-id`.
 */
export function httpError(reply: HttpReply, context: ReplyContext): ManagedIdentityError {
  const secrets = context.secrets ?? [];
  const said = parseErrorBody(reply.body, secrets);
  const { headers } = reply;
  const header = headers.get("x-ms-correlation-id") ?? headers.get("x-correlation-id") ??
    headers.get("x-ms-request-id");
  const correlationId = said.correlationId ?? (header ? endpointText(header, secrets, 100) || undefined : undefined);
  // "No managed identity here", so try another credential: Docker Desktop answers IMDS with 403
  // "...unreachable..."; IMDS answers 400 "Identity not found" on a VM without the identity
  // (https://learn.microsoft.com/azure/active-directory/managed-identities-azure-resources/how-to-use-vm-token#error-handling).
  // Looked for where an excerpt is read, not in all of a body that may run to the read cap.
  const head = reply.body.slice(0, TEXT_WINDOW);
  const absent = (reply.status === 403 && /unreachable/i.test(head)) ||
    (context.source === "DefaultToIMDS" && reply.status === 400 && /identity not found/i.test(head));
  const detail = [said.error, said.errorDescription].filter(Boolean).join(": ");
  const message = `Cannot acquire token from "${context.source}": endpoint answered ${reply.status}${
    detail ? ` (${detail})` : ""
  }`;
  const details = { source: context.source, status: reply.status, endpoint: context.endpoint, ...said, correlationId };
  return absent
    ? new CredentialUnavailableError(message, details)
    : new ManagedIdentityError("request_failed", message, details);
}

// Errno codes for what Deno's fetch (and older Bun's `code`) say in words, in the OS's words on
// Linux, macOS and Windows ("Connection refused", "actively refused"), so that every runtime's
// failure reads like Node's.
const ERRNO: readonly (readonly [RegExp, string])[] = [
  [/refused/i, "ECONNREFUSED"],
  [/reset|closed/i, "ECONNRESET"],
  [/connection timed out|properly respond/i, "ETIMEDOUT"],
  [/no route|unreachable host/i, "EHOSTUNREACH"],
  [/unreachable/i, "ENETUNREACH"],
  [/temporary failure in name/i, "EAI_AGAIN"],
  [/not known|no such host|lookup address/i, "ENOTFOUND"],
];

const errnoCode = (code: unknown) => typeof code === "string" && /^E[A-Z_]+$/.test(code);

/** The `cause` chain of `error`, outermost first, at most 5 deep. */
function chain(error: unknown): Record<string, unknown>[] {
  const links: Record<string, unknown>[] = [];
  for (let current = error; links.length < 5 && current !== null && typeof current === "object";) {
    links.push(current as Record<string, unknown>);
    current = (current as { cause?: unknown }).cause;
  }
  return links;
}

/**
 * The innermost useful reason of a network failure: an errno code such as `ECONNREFUSED`, or
 * else the innermost message with any URL's query string cut. Node puts the code on the socket
 * error it wraps as `cause`, Bun on the error itself; Deno gives words only ("Connection refused
 * (os error 111)"), read here as the same codes. Used for the library's errors and by the CLI's
 * connection check. A runtime's message may quote the bytes that went wrong (the request, the
 * answer): pass it through {@linkcode summarize} or `endpointText` before showing it.
 */
export function networkReason(error: unknown): string {
  const links = chain(error);
  const found = links.find((link) => errnoCode(link.code));
  if (found) return found.code as string;
  const said = links.map((link) => link.code).find((code) => typeof code === "string");
  let message = error instanceof Error ? error.message : String(error);
  for (const link of links) if (typeof link.message === "string" && link.message) message = link.message;
  // Deno quotes the whole URL ("error sending request for url (http://...?api-version=...)").
  message = message.replace(/(\w+:\/\/[^\s?#()]*)[?#][^\s()]*/g, "$1");
  const text = `${said ?? ""} ${message}`;
  return ERRNO.find(([pattern]) => pattern.test(text))?.[1] ?? message;
}

/** `text` at most `max` characters long, cut at a space rather than inside a word. */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(" ", max);
  return `${text.slice(0, cut > max / 2 ? cut : max)}...`;
}

/**
 * A runtime's failure, summarised like Node's: its name, an errno code, and the host and port
 * it was about (`TypeError: ECONNREFUSED 127.0.0.1:40342`), or the redacted innermost reason
 * when no code says it; never a query string, never cut inside a word. The raw error is never
 * kept as a `cause`: Node's HTTP parser errors carry the raw bytes of the answer (`data`), and
 * several runtimes quote a header value in the message, which an endpoint can make an echo of
 * the request's secret.
 *
 * @param url The request's URL, for its host and port (the same on every runtime: Deno's errors
 *   name none, and Node's name the address a host name resolved to).
 */
export function summarize(error: unknown, secrets: readonly string[], url?: string | URL): Error {
  const reason = networkReason(error);
  const code = errnoCode(reason) ? reason : undefined;
  const parsed = url === undefined ? undefined : new URL(url);
  const where = parsed && `${parsed.hostname}:${parsed.port || (parsed.protocol === "https:" ? 443 : 80)}`;
  const text = code ?? (shorten(endpointText(reason, secrets, 1000), 200) || "the connection failed");
  const summary = new Error(where ? (code ? `${code} ${where}` : `${text} (${where})`) : text);
  const name = error instanceof Error && /^\w{1,40}$/.test(error.name) ? error.name : "Error";
  Object.defineProperty(summary, "name", { value: name, enumerable: false, configurable: true, writable: true });
  if (code) Object.defineProperty(summary, "code", { value: code, enumerable: true });
  // The stack names our frames only: the message is already the summary.
  summary.stack = `${name}: ${summary.message}`;
  return summary;
}

/**
 * A runtime's refusal of a permission, found at any depth of `cause`, as the flag that grants
 * it; `undefined` for any other failure. A refusal is Deno's `NotCapable` (from `fetch`,
 * `node:net`, `node:fs`; `PermissionDenied` before Deno 2, which Deno 2 gives the OS's EACCES, so
 * only a message naming an `--allow-` flag counts), Deno's `node:dns` refusing a lookup
 * (`getaddrinfo EPERM`, whatever the host) and Node's permission model (`ERR_ACCESS_DENIED`).
 * The flag is the one the runtime's message names, else `want`'s; it gets `=target` when it is
 * `want`'s and takes a value (Node's `--allow-net` takes none).
 *
 * @param want What was being done: `net` for a request, `read` for a file.
 * @param target What to allow: the endpoint's `host[:port]` (the port when not the default), or a path.
 */
export function refusedFlag(error: unknown, want: "net" | "read", target: string): string | undefined {
  for (const link of chain(error)) {
    const message = typeof link.message === "string" ? link.message : "";
    const node = link.code === "ERR_ACCESS_DENIED";
    if (
      node || link.name === "NotCapable" || (link.name === "PermissionDenied" && /--allow-/.test(message)) ||
      (link.code === "EPERM" && link.syscall === "getaddrinfo")
    ) {
      const wanted = node && want === "read" ? "--allow-fs-read" : `--allow-${want}`;
      const flag = /--allow-[a-z-]+/.exec(message)?.[0] ?? wanted;
      return flag === wanted && !(node && want === "net") ? `${flag}=${target}` : flag;
    }
  }
  return undefined;
}

/**
 * The error for a request the runtime refused to make (no `--allow-net` on Deno): not
 * `unavailable`, since something here is there to be asked and the process may not ask it;
 * never retried. `undefined` when `error` is no refusal.
 */
export function refusedRequest(
  error: unknown,
  url: string | URL,
  details: { readonly source: Source; readonly endpoint: string },
  secrets: readonly string[],
): ManagedIdentityError | undefined {
  const flag = refusedFlag(error, "net", new URL(url).host);
  return flag === undefined ? undefined : new ManagedIdentityError(
    "invalid_configuration",
    `The runtime refused the request to "${details.source}" at ${details.endpoint}: run it with ${flag}`,
    { ...details, cause: summarize(error, secrets) },
  );
}
