/**
 * Parsing what the endpoints answer: token bodies with every expiry form, and error bodies of
 * every source's shape (PROTOCOL.md section 4).
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import { excerpt, scrub } from "./redact.ts";
import type { Source } from "./types.ts";

/** A successful token response, with times in milliseconds since the epoch. */
export interface ParsedToken {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly expiresOn: number;
  readonly refreshOn?: number;
  readonly resource?: string;
  /** The body's fields, for source-specific checks (Arc's identity echo). */
  readonly fields: Readonly<Record<string, unknown>>;
  /** Set when `expires_on` was present but unparsable and `expires_in` was used instead. */
  readonly expiresOnFallback?: string;
}

/** What an error body said, in any source's shape. */
export interface ErrorBody {
  readonly error?: string;
  readonly errorDescription?: string;
  readonly correlationId?: string;
}

/** Where a response came from, for error details. */
export interface ReplyContext {
  readonly source: Source;
  readonly endpoint: string;
  /** Secret values the request carried: cut out of any excerpt of what the endpoint sent back. */
  readonly secrets?: readonly string[];
}

const TWO_HOURS = 2 * 60 * 60 * 1000;

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

function seconds(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

// One pattern for every date form: "yyyy-MM-dd HH:mm:ss" and ISO 8601 / RFC 3339 (with or
// without fraction and offset), "MM/dd/yyyy HH:mm:ss", and App Service's legacy
// "M/d/yyyy h:mm:ss AM +00:00". No offset means UTC, never local time (what Date.parse assumes).
const DATE =
  /^(?:(\d{4})-(\d\d)-(\d\d)[T ]|(\d\d?)\/(\d\d?)\/(\d{4}) )(\d\d?):(\d\d):(\d\d)(?:[.,](\d+))? ?([AP]M)? ?(Z|([+-])(\d\d):?(\d\d))?$/i;

/**
 * Parses `expires_on` in every form the endpoints use (PROTOCOL.md section 4): Unix seconds as
 * a number or digit string, `MM/dd/yyyy HH:mm:ss`, `M/d/yyyy h:mm:ss AM +00:00`,
 * `yyyy-MM-dd HH:mm:ss` and ISO 8601. Several JS clients broke on these forms:
 * https://github.com/Azure/azure-sdk-for-js/issues/4965 and #22722.
 *
 * @returns Milliseconds since the epoch, or `undefined` when the value is not a time.
 */
export function parseExpiresOn(value: unknown): number | undefined {
  const unix = seconds(value);
  if (unix !== undefined) return unix * 1000;
  const m = typeof value === "string" ? DATE.exec(value.trim()) : null;
  if (!m) return undefined;
  const [year, month, day] = (m[1] ? [m[1], m[2], m[3]] : [m[6], m[4], m[5]]).map(Number) as [number, number, number];
  let hour = Number(m[7]);
  const minute = Number(m[8]);
  const second = Number(m[9]);
  if (m[11]) {
    // 12-hour clock: 12 AM is 0, 12 PM is 12.
    if (hour < 1 || hour > 12) return undefined;
    hour = (hour % 12) + (m[11].toUpperCase() === "PM" ? 12 : 0);
  }
  const offset = m[13] ? (m[13] === "-" ? -1 : 1) * (Number(m[14]) * 60 + Number(m[15])) : 0;
  const time = Date.UTC(
    year,
    month - 1,
    day,
    hour,
    minute,
    second,
    m[10] ? Math.floor(Number(`0.${m[10]}`) * 1000) : 0,
  );
  // Date.UTC rolls 02/30 over into March: a date that does not round-trip is not a date.
  const check = new Date(time);
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  return time - offset * 60_000;
}

function invalid(message: string, context: ReplyContext, cause?: unknown): ManagedIdentityError {
  return new ManagedIdentityError(
    "invalid_response",
    `Cannot use the token response of "${context.source}": ${message}`,
    {
      source: context.source,
      endpoint: context.endpoint,
      cause,
    },
  );
}

/**
 * Parses a success body into a token. Expiry comes from `expires_on`, else (also when
 * `expires_on` is unparsable) from `expires_in`; the refresh time from `refresh_in`, else half
 * the remaining lifetime for tokens living over 2 hours.
 *
 * @throws {ManagedIdentityError} `invalid_response` when the body is not JSON, has no `access_token`, or has no usable expiry.
 */
export function parseTokenBody(text: string, now: number, context: ReplyContext): ParsedToken {
  const body = parseJsonObject(text);
  if (!body) {
    throw invalid(
      text.trim() === ""
        ? "the body is empty"
        : `the body is not a JSON object: "${excerpt(scrub(text, context.secrets ?? []))}"`,
      context,
    );
  }
  const accessToken = body.access_token;
  if (typeof accessToken !== "string" || accessToken === "") {
    throw invalid("the body has no access_token", context);
  }
  let expiresOn = parseExpiresOn(body.expires_on);
  let expiresOnFallback: string | undefined;
  if (expiresOn === undefined) {
    const expiresIn = seconds(body.expires_in);
    if (expiresIn === undefined) {
      throw invalid(
        body.expires_on === undefined
          ? "the body has neither expires_on nor expires_in"
          : `expires_on ${JSON.stringify(body.expires_on)} is not a time and there is no expires_in`,
        context,
      );
    }
    if (body.expires_on !== undefined) {
      expiresOnFallback = `expires_on ${JSON.stringify(body.expires_on)} is not a time`;
    }
    expiresOn = now + expiresIn * 1000;
  }
  const refreshIn = seconds(body.refresh_in);
  const refreshOn = refreshIn !== undefined && refreshIn > 0
    ? now + refreshIn * 1000
    : expiresOn - now > TWO_HOURS
    ? now + (expiresOn - now) / 2
    : undefined;
  const tokenType = typeof body.token_type === "string" && body.token_type !== "" ? body.token_type : "Bearer";
  return {
    accessToken,
    tokenType,
    expiresOn,
    ...(refreshOn !== undefined ? { refreshOn } : {}),
    ...(typeof body.resource === "string" ? { resource: body.resource } : {}),
    ...(expiresOnFallback ? { expiresOnFallback } : {}),
    fields: body,
  };
}

const str = (value: unknown): string | undefined => typeof value === "string" && value !== "" ? value : undefined;

/**
 * Reads what an error body says, whatever the source's shape: IMDS and Arc
 * `{error, error_description}`, App Service and Azure ML `{statusCode, message, correlationId}`,
 * Cloud Shell and Service Fabric `{error: {code, message}}`. A body that is not JSON gives a
 * short excerpt as its description.
 */
export function parseErrorBody(text: string): ErrorBody {
  const body = parseJsonObject(text);
  if (!body) {
    const description = excerpt(text);
    return description === "" ? {} : { errorDescription: description };
  }
  const nested = body.error !== null && typeof body.error === "object"
    ? body.error as Record<string, unknown>
    : undefined;
  const error = str(body.error) ?? str(nested?.code);
  const description = str(body.error_description) ?? str(nested?.message) ?? str(body.message) ??
    str(body.Message);
  const correlationId = str(body.correlationId) ?? str(body.correlation_id);
  return {
    ...(error ? { error } : {}),
    ...(description ? { errorDescription: excerpt(description, 500) } : {}),
    ...(correlationId ? { correlationId } : {}),
  };
}
