/**
 * The one gate for endpoint-controlled text. Whatever an endpoint sends back (a body field, a
 * header, a runtime's message about its bytes) passes through {@linkcode endpointText} before it
 * may enter an error, an event or a CLI line: the text is decoded first (JSON and JavaScript
 * escapes, percent-encoding, HTML character references, repeatedly), so that a secret echoed in
 * any of those notations is found and cut out, then token-like runs are cut, control and
 * direction characters dropped, and the result shortened.
 * @module
 */

// A token named in any notation: JSON, form encoding, YAML-ish, single quotes.
const TOKEN_FIELD = /(\b(?:access_token|refresh_token|id_token|token)\b["']?\s*[:=]\s*["']?)[^"'&\s,;}]*/gi;
// JWT-shaped or long opaque runs: whatever looks like a credential is cut out.
const OPAQUE = /eyJ[\w-]*(?:\.[\w-]*)*|[\w+/=.-]{40,}/g;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;
const ESCAPE =
  /\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|\\(["'\\/])|%([0-9a-fA-F]{2})|&#(\d{1,7});|&#x([0-9a-fA-F]{1,6});|&(quot|amp|lt|gt|apos);/g;
const ENTITIES: Readonly<Record<string, string>> = { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" };

function codePoint(value: number): string {
  return value <= 0x10ffff ? String.fromCodePoint(value) : "";
}

/** One round of decoding: `\uXXXX`, `\xXX`, `\"`, `%XX` (as UTF-8 where it forms one), `&#..;` and named references. */
function decodeOnce(text: string): string {
  const decoded = text.replace(ESCAPE, (all, u, x, quoted, percent, decimal, hex, named) => {
    if (u) return String.fromCharCode(parseInt(u, 16));
    if (x) return String.fromCharCode(parseInt(x, 16));
    if (quoted) return quoted;
    if (percent) return all; // runs of %XX are decoded together below, as UTF-8
    if (decimal) return codePoint(Number(decimal));
    if (hex) return codePoint(parseInt(hex, 16));
    return ENTITIES[named] ?? all;
  });
  return decoded.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      // Not UTF-8: each byte as a Latin-1 character, which is how a header value carries it.
      return run.replace(/%([0-9a-fA-F]{2})/g, (_, byte) => String.fromCharCode(parseInt(byte, 16)));
    }
  });
}

/** Decodes until nothing changes (at most a few rounds, so nested encodings are undone too). */
function decode(text: string): string {
  let current = text;
  for (let round = 0; round < 4; round++) {
    const next = decodeOnce(current);
    if (next === current) break;
    current = next;
  }
  return current;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

// Below this length a secret is cut only where it stands alone, not inside a word: a test's
// `IDENTITY_HEADER=h` must not turn "the" into "t[redacted]e". Real secrets are far longer.
const SHORT_SECRET = 8;

/**
 * Cuts every secret out of decoded text, case-insensitively, also in its form-encoded shape
 * (`+` for space); one shorter than {@linkcode SHORT_SECRET} only where no letter or digit touches it.
 */
function cutSecrets(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    for (const form of [secret, secret.trim(), decode(secret)]) {
      if (form !== "") forms.add(form).add(form.replace(/ /g, "+"));
    }
  }
  // Longest first, so that a secret containing another is cut whole.
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) {
    const pattern = form.length < SHORT_SECRET ? `(?<![a-z0-9])${escapeRegExp(form)}(?![a-z0-9])` : escapeRegExp(form);
    out = out.replace(new RegExp(pattern, "gi"), "[redacted]");
  }
  return out;
}

/**
 * Endpoint-controlled text made safe to show: decoded, every given secret cut out whatever
 * notation it was echoed in, anything that looks like a token cut out, HTML tags, control and
 * bidirectional characters dropped, whitespace collapsed, and at most `max` characters kept.
 *
 * @param text What the endpoint (or a runtime, about the endpoint's bytes) said.
 * @param secrets The values the request carried that must never be shown (secret headers, a token).
 * @param max The longest excerpt kept, in characters.
 */
export function endpointText(text: string, secrets: readonly string[] = [], max = 160): string {
  const flat = cutSecrets(decode(text), secrets)
    .replace(/<[^>]*>/g, " ")
    .replace(TOKEN_FIELD, "$1[redacted]")
    .replace(OPAQUE, "[redacted]")
    .replace(CONTROL, " ")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
