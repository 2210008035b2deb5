/**
 * Parsing what the endpoints answer: token bodies with every expiry form, and error bodies of
 * every source's shape (docs/sources.md).
 * @module
 */

import { ManagedIdentityError } from "./errors.ts";
import type { Source } from "./types.ts";

/** An HTTP response with its body already read (under the size cap). */
export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

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

/** Where a response came from, for error details. */
export interface ReplyContext {
  readonly source: Source;
  readonly endpoint: string;
  /** Secret values the request carried: cut out of any excerpt of what the endpoint sent back. */
  readonly secrets?: readonly string[];
}

const TWO_HOURS = 2 * 60 * 60 * 1000;

/**
 * The latest expiry believed (docs/security.md: managed identity tokens live hours, at most about a
 * day): anything later is a hostile or broken number (`1e20`, 14 digits, milliseconds read as
 * seconds) and must never reach the cache, where it would never expire or refresh.
 */
export const MAX_LIFETIME_MS = 365 * 24 * 60 * 60 * 1000;

/** The JSON object `text` holds, or `undefined` for anything else (an array, a string, broken JSON). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

// Numbers and numeric strings follow one rule, negatives included: "-100" is -100, not missing.
function seconds(value: unknown): number | undefined {
  const number = typeof value === "number"
    ? value
    : typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)
    ? Number(value)
    : Number.NaN;
  return Number.isFinite(number) ? number : undefined;
}

// One pattern for every date form: "yyyy-MM-dd HH:mm:ss" and ISO 8601 / RFC 3339 (with or
// without fraction and offset), "MM/dd/yyyy HH:mm:ss", and App Service's legacy
// "M/d/yyyy h:mm:ss AM +00:00". No offset means UTC, never local time (what Date.parse assumes).
const DATE =
  /^(?:(\d{4})-(\d\d)-(\d\d)[T ]|(\d\d?)\/(\d\d?)\/(\d{4}) )(\d\d?):(\d\d):(\d\d)(?:[.,](\d+))? ?([AP]M)? ?(Z|([+-])(\d\d):?(\d\d))?$/i;

/**
 * Parses `expires_on` in every form the endpoints use (docs/sources.md, Expiry): Unix seconds as
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
  // setUTCFullYear, not Date.UTC, which reads the years 0 to 99 as 1900 to 1999.
  const check = new Date(0);
  check.setUTCFullYear(year, month - 1, day);
  check.setUTCHours(hour, minute, second, m[10] ? Math.floor(Number(`0.${m[10]}`) * 1000) : 0);
  // Dates roll 02/30 over into March: a date that does not round-trip is not a date.
  if (check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return undefined;
  }
  return check.getTime() - offset * 60_000;
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
 * @throws {ManagedIdentityError} `invalid_response` when the body is not JSON, has no `access_token`, or has
 *   no usable expiry (none, or one that is not finite or more than a year ahead).
 */
export async function parseTokenBody(text: string, now: number, context: ReplyContext): Promise<ParsedToken> {
  const body = parseJsonObject(text);
  const secrets = context.secrets ?? [];
  // What the body holds is quoted only through the one gate (src/redact.ts), loaded on this
  // path alone: a success needs none of it.
  const gate = async () => (await import("./redact.ts")).endpointText;
  if (!body) {
    throw invalid(
      text.trim() === "" ? "the body is empty" : `the body is not a JSON object: "${(await gate())(text, secrets)}"`,
      context,
    );
  }
  const accessToken = body.access_token;
  if (typeof accessToken !== "string" || accessToken === "") {
    throw invalid("the body has no access_token", context);
  }
  // From here the token is one more secret: a hostile body may repeat it in any other field.
  // A value is shown one level deep (an array nested half a million deep overflows JSON.stringify).
  const shown = async (value: unknown) =>
    `"${(await import("./redact.ts")).endpointValue(value, [...secrets, accessToken], 80)}"`;
  let expiresOn = parseExpiresOn(body.expires_on);
  let expiresOnFallback: string | undefined;
  let from = "expires_on";
  if (expiresOn === undefined) {
    const expiresIn = seconds(body.expires_in);
    if (expiresIn === undefined) {
      throw invalid(
        body.expires_on === undefined
          ? body.expires_in === undefined
            ? "the body has neither expires_on nor expires_in"
            : `expires_in ${await shown(body.expires_in)} is not a number of seconds and there is no expires_on`
          : `expires_on ${await shown(body.expires_on)} is not a time and there is no usable expires_in`,
        context,
      );
    }
    if (body.expires_on !== undefined) expiresOnFallback = `expires_on ${await shown(body.expires_on)} is not a time`;
    expiresOn = now + expiresIn * 1000;
    from = "expires_in";
  }
  // A time that is not finite, or over a year ahead, is never believed (and never cached).
  if (!Number.isFinite(expiresOn) || expiresOn - now > MAX_LIFETIME_MS) {
    throw invalid(
      `${from} ${await shown(body[from])} lies more than a year ahead (managed identity tokens live hours)`,
      context,
    );
  }
  const refreshIn = seconds(body.refresh_in);
  // A refresh time must fall inside the token's life; otherwise the default rule applies.
  const refreshOn = refreshIn !== undefined && refreshIn > 0 && now + refreshIn * 1000 < expiresOn
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
