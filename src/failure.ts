/**
 * Failures, made safe to show: what an endpoint said in an error body, and a runtime's own
 * error about the endpoint's bytes. Everything endpoint-controlled passes the one gate,
 * `endpointText()` in `src/redact.ts`. This module and the gate load on the first failure only
 * (`import()` from the transport and the response parsers), so a success never pays for them.
 * @module
 */

import { CredentialUnavailableError, ManagedIdentityError } from "./errors.ts";
import { endpointText, TEXT_WINDOW } from "./redact.ts";
import type { ReplyContext } from "./response.ts";
import type { HttpReply } from "./sources/source.ts";

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
 * Cloud Shell and Service Fabric `{error: {code, message}}`. A body that is not JSON gives a
 * short excerpt as its description. Every field passes through {@linkcode endpointText}: the
 * body is parsed first and each decoded field is redacted, so no JSON escape hides a secret.
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
  const correlationId = safe(str(body.correlationId) ?? str(body.correlation_id), 100);
  return {
    ...(error ? { error } : {}),
    ...(description ? { errorDescription: description } : {}),
    ...(correlationId ? { correlationId } : {}),
  };
}

/** The error for an HTTP status that is not success, with what the body said. */
export function httpError(reply: HttpReply, context: ReplyContext): ManagedIdentityError {
  const secrets = context.secrets ?? [];
  const said = parseErrorBody(reply.body, secrets);
  const header = reply.headers.get("x-ms-correlation-id") ?? reply.headers.get("x-ms-request-id");
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

/**
 * The innermost useful reason of a network failure: an errno code such as `ECONNREFUSED`, or
 * else the innermost message. Used for the library's errors and by the CLI's connection check.
 * A runtime's message may quote the bytes that went wrong (the request, the answer): pass it
 * through {@linkcode summarize} or `endpointText` before showing it.
 */
export function networkReason(error: unknown): string {
  // Node wraps the socket error as `cause` (with a code such as ECONNREFUSED); Deno and Bun
  // put it in the message. The innermost message is the most specific.
  let current: unknown = error;
  let message = error instanceof Error ? error.message : String(error);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && /^E[A-Z_]+$/.test(code)) return code;
    if (current.message) message = current.message;
    current = current.cause;
  }
  return message;
}

/**
 * A runtime's failure, summarised: its name, errno code and redacted innermost reason, and
 * nothing else. The raw error is never kept as a `cause`: Node's HTTP parser errors carry the
 * raw bytes of the answer (`data`), and several runtimes quote a header value in the message,
 * which an endpoint can make an echo of the request's secret.
 */
export function summarize(error: unknown, secrets: readonly string[]): Error {
  const reason = endpointText(networkReason(error), secrets, 200);
  const summary = new Error(reason || "the connection failed");
  const name = error instanceof Error && /^\w{1,40}$/.test(error.name) ? error.name : "Error";
  Object.defineProperty(summary, "name", { value: name, enumerable: false, configurable: true, writable: true });
  const code = /^E[A-Z_]+$/.test(reason) ? reason : undefined;
  if (code) Object.defineProperty(summary, "code", { value: code, enumerable: true });
  // The stack names our frames only: the message is already the summary.
  summary.stack = `${name}: ${summary.message}`;
  return summary;
}
