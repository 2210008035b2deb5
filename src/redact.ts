/**
 * Short, secret-free excerpts of what an endpoint sent, for error messages.
 * @module
 */

const TOKEN_FIELD = /("(?:access_token|refresh_token|id_token|token)"\s*:\s*")[^"]*("?)/gi;
// JWT-shaped or long opaque runs: whatever looks like a credential is cut out.
const OPAQUE = /eyJ[\w-]*(?:\.[\w-]*)*|[\w+/=.-]{40,}/g;

/**
 * A one-line excerpt of a body, at most `max` characters, with HTML tags dropped and anything
 * that looks like a token replaced by `[redacted]`.
 */
export function excerpt(text: string, max = 160): string {
  const flat = text
    .replace(/<[^>]*>/g, " ")
    .replace(TOKEN_FIELD, "$1[redacted]$2")
    .replace(OPAQUE, "[redacted]")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
