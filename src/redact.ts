/**
 * Short, secret-free excerpts of what an endpoint sent, for error messages.
 * @module
 */

// A token named in any notation: JSON, form encoding, YAML-ish, single quotes.
const TOKEN_FIELD = /(\b(?:access_token|refresh_token|id_token|token)\b["']?\s*[:=]\s*["']?)[^"'&\s,;}]*/gi;
// JWT-shaped or long opaque runs: whatever looks like a credential is cut out.
const OPAQUE = /eyJ[\w-]*(?:\.[\w-]*)*|[\w+/=.-]{40,}/g;

/** Header names whose values are secrets; an endpoint that echoes one in an error body gets it cut out. */
export const SECRET_HEADERS: readonly string[] = ["x-identity-header", "secret", "authorization"];

/**
 * The secret values a request carries in its headers: each secret header's value, trimmed,
 * and for `<scheme> <credential>` the credential alone (an Arc key may end in a newline, which
 * the Fetch standard strips before sending, so the trimmed forms are what an endpoint echoes).
 */
export function secretHeaderValues(headers: Readonly<Record<string, string>>): string[] {
  const values: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!SECRET_HEADERS.includes(name.toLowerCase())) continue;
    values.push(value, value.trim());
    const credential = /^\S+\s+([\s\S]+)$/.exec(value.trim())?.[1]?.trim();
    if (credential) values.push(credential);
  }
  return values;
}

/** Replaces every occurrence of the given secret values in `text` by `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join("[redacted]");
  }
  return out;
}

/**
 * A one-line excerpt of a body, at most `max` characters, with HTML tags dropped and anything
 * that looks like a token replaced by `[redacted]`.
 */
export function excerpt(text: string, max = 160): string {
  const flat = text
    .replace(/<[^>]*>/g, " ")
    .replace(TOKEN_FIELD, "$1[redacted]")
    .replace(OPAQUE, "[redacted]")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
