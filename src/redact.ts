/**
 * The one gate for endpoint-controlled text. Whatever an endpoint sends back (a body field, a
 * header, a runtime's message about its bytes) passes through {@linkcode endpointText} before it
 * may enter an error, an event or a CLI line. Every step is linear in the text's length, and the
 * text is first cut to the window an excerpt needs ({@linkcode textWindow}), so no body up to
 * the read cap can hold the event loop. The window is decoded (JSON and JavaScript escapes,
 * percent-encoding, HTML character references, repeatedly), so that a secret echoed in any of
 * those notations is found and cut out, also with control or format characters (and, for a
 * long secret, whitespace) between its characters; then token-like runs are cut, control and
 * format characters dropped, and the result shortened. {@linkcode visible} escapes, rather than
 * drops, what a terminal must not be sent raw: the CLI prints every value through it, and the
 * Azure Arc rules quote a path with it.
 * @module
 */

// A token named in any notation: JSON, form encoding, YAML-ish, single quotes.
const TOKEN_FIELD = /(\b(?:access_token|refresh_token|id_token|token)\b["']?\s*[:=]\s*["']?)[^"'&\s,;}]*/gi;
// JWT-shaped or long opaque runs: whatever looks like a credential is cut out.
const OPAQUE = /eyJ[\w-]*(?:\.[\w-]*)*|[\w+/=.-]{40,}/g;
const TOKEN_CHARACTER = /[\w+/=.-]/;
// A tag, from `<` to the next `>` but never across another `<`: so no `<` that is never closed
// makes the search run on to the end of the text (which, from every `<`, was quadratic).
const TAG = /<[^<>]*>/g;
// Control and format characters (Unicode Cc and Cf: NUL, ESC, zero-width and bidirectional
// characters, the soft hyphen, the BOM, tag characters): never shown.
const INVISIBLE = /[\p{Cc}\p{Cf}]/gu;
// What the secret search reads past. A short secret: control and format characters, but not
// the tab and line characters, which are whitespace and so a secret's edge. A long one:
// whitespace too (docs/security.md).
const PAST_SHORT = /(?![\t-\r])[\p{Cc}\p{Cf}]/gu;
const PAST_LONG = /[\p{Cc}\p{Cf}\s]/gu;
const ESCAPE =
  /\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})|\\(["'\\/])|%([0-9a-fA-F]{2})|&#(\d{1,7});|&#x([0-9a-fA-F]{1,6});|&(quot|amp|lt|gt|apos);/g;
const ENTITIES: Readonly<Record<string, string>> = { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" };

/**
 * The characters of endpoint text read when no secret is given: room for the longest excerpt
 * (500 characters) even when each character came encoded several rounds deep (`\u005Cu0041` is
 * one), and for tags and whitespace, which drop out. A secret adds its guard ({@linkcode textWindow}).
 */
export const TEXT_WINDOW = 16 * 1024;

// More than the characters that a cut can leave of one escape it broke (`&#x10FFF`, `%2`).
const BROKEN_ESCAPE = 64;

// Below this length a secret is cut only where it stands alone, not inside a word: a test's
// `IDENTITY_HEADER=h` must not turn "the" into "t[redacted]e". Real secrets are far longer.
const SHORT_SECRET = 8;

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

/** One UTF-16 code unit in lower case, where that is one code unit too. */
function fold(code: number): number {
  if (code < 0x80) return code >= 0x41 && code <= 0x5a ? code + 0x20 : code;
  const lower = String.fromCharCode(code).toLowerCase();
  return lower.length === 1 ? lower.charCodeAt(0) : code;
}

/** Text as the secret search reads it: folded to lower case, without what `past` matches. */
interface Skeleton {
  readonly codes: Uint16Array;
  /** Where each code stands in the text. */
  readonly at: Uint32Array;
  readonly length: number;
}

function skeleton(text: string, past: RegExp): Skeleton {
  const codes = new Uint16Array(text.length);
  const at = new Uint32Array(text.length);
  let length = 0;
  let from = 0;
  const keep = (to: number) => {
    for (let i = from; i < to; i++) {
      codes[length] = fold(text.charCodeAt(i));
      at[length++] = i;
    }
  };
  for (const match of text.matchAll(past)) {
    keep(match.index);
    from = match.index + match[0].length;
  }
  keep(text.length);
  return { codes, at, length };
}

/** A form of a secret as the search looks for it; `alone` for a short one, cut only where it stands alone. */
interface Form {
  readonly codes: Uint16Array;
  readonly alone: boolean;
}

/**
 * Every form of the secrets, in each notation it could take once decoded (as sent, trimmed,
 * decoded, form-encoded with `+` for spaces), and the length of the longest.
 */
function formsOf(secrets: readonly string[]): { forms: Form[]; longest: number } {
  const texts = new Set<string>();
  for (const secret of secrets) {
    for (const form of [secret, secret.trim(), decode(secret)]) {
      if (form !== "") texts.add(form).add(form.replace(/ /g, "+"));
    }
  }
  const forms: Form[] = [];
  let longest = 0;
  for (const text of texts) {
    const spaced = skeleton(text, PAST_SHORT);
    const squeezed = skeleton(text, PAST_LONG);
    if (spaced.length === 0) continue;
    const alone = spaced.length < SHORT_SECRET || squeezed.length < SHORT_SECRET;
    const { codes, length } = alone ? spaced : squeezed;
    forms.push({ codes: codes.subarray(0, length), alone });
    longest = Math.max(longest, length);
  }
  return { forms, longest };
}

/**
 * What is dropped from the end of a window that cut the text: the first part of a secret that
 * runs past the edge is shorter than the secret, or up to 3 times as long where a cut UTF-8
 * percent run was read byte by byte; then whatever a cut escape left.
 */
function guardOf(longest: number): number {
  return 3 * longest + BROKEN_ESCAPE;
}

/**
 * How many characters of endpoint text {@linkcode endpointText} reads with these secrets:
 * {@linkcode TEXT_WINDOW}, and a guard from the longest secret that it drops again from the end
 * of the window, so that a secret cut by the window's edge shows nothing of itself.
 */
export function textWindow(secrets: readonly string[] = []): number {
  return TEXT_WINDOW + guardOf(formsOf(secrets).longest);
}

/**
 * Calls `found` with the start of every occurrence of `pattern` in the first `length` codes of
 * `text`, overlapping ones too (Knuth, Morris and Pratt: linear, whatever either holds).
 */
function search(text: Uint16Array, length: number, pattern: Uint16Array, found: (start: number) => void): void {
  const border = new Uint32Array(pattern.length);
  for (let i = 1, k = 0; i < pattern.length; i++) {
    while (k > 0 && pattern[i] !== pattern[k]) k = border[k - 1]!;
    if (pattern[i] === pattern[k]) k++;
    border[i] = k;
  }
  for (let i = 0, k = 0; i < length; i++) {
    while (k > 0 && text[i] !== pattern[k]) k = border[k - 1]!;
    if (text[i] === pattern[k]) k++;
    if (k === pattern.length) {
      found(i + 1 - k);
      k = border[k - 1]!;
    }
  }
}

/** Whether a folded code is an ASCII letter or digit; none before or after the text (`undefined`, or 0 past its length). */
function wordy(code = 0): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x7a);
}

/**
 * A value of a parsed body made safe to show: as JSON, one level deep (`JSON.parse` reads
 * `[[[...]]]` nested half a million deep, on which Node's and Bun's `JSON.stringify` overflow
 * the stack, Bun after most of a second), then through {@linkcode endpointText}.
 */
export function endpointValue(value: unknown, secrets: readonly string[], max: number): string {
  let top = true;
  const text = JSON.stringify(value, (_key, inner: unknown) => {
    if (top) {
      top = false;
      return inner;
    }
    return inner === null || typeof inner !== "object" ? inner : Array.isArray(inner) ? "[...]" : "{...}";
  });
  return endpointText(String(text), secrets, max);
}

/**
 * Endpoint-controlled text made safe to show. At most {@linkcode textWindow} characters of it
 * are read, decoded, and every given secret is cut out whatever notation it was echoed in, also
 * with control or format characters (NUL, U+200B, U+00AD, ...) between its characters, and for
 * one of 8 characters or more whitespace too; one shorter only where it stands alone. Then
 * anything that looks like a token is cut out, HTML tags, control and format characters
 * dropped, whitespace collapsed, and at most `max` characters kept. Linear in the window.
 *
 * @param text What the endpoint (or a runtime, about the endpoint's bytes) said.
 * @param secrets The values the request carried that must never be shown (secret headers, a token).
 * @param max The longest excerpt kept, in characters.
 */
export function endpointText(text: string, secrets: readonly string[] = [], max = 160): string {
  const { forms, longest } = formsOf(secrets);
  const guard = guardOf(longest);
  const cut = text.length > TEXT_WINDOW + guard;
  const decoded = decode(cut ? text.slice(0, TEXT_WINDOW + guard) : text);
  // How many secrets cover each character: +1 where one starts, -1 after it ends.
  const cover = new Int32Array(decoded.length + 1);
  let spaced: Skeleton | undefined;
  let squeezed: Skeleton | undefined;
  for (const { codes, alone } of forms) {
    const read = alone ? (spaced ??= skeleton(decoded, PAST_SHORT)) : (squeezed ??= skeleton(decoded, PAST_LONG));
    search(read.codes, read.length, codes, (start) => {
      const end = start + codes.length;
      if (alone && (wordy(read.codes[start - 1]) || wordy(read.codes[end]))) return;
      cover[read.at[start]!]!++;
      cover[read.at[end - 1]! + 1]!--;
    });
  }
  let end = decoded.length;
  if (cut) {
    // The guard's characters (whitespace and invisible ones not counted) are dropped, then any
    // token-like run that the cut went through: nothing of what the edge cut in two shows.
    squeezed ??= skeleton(decoded, PAST_LONG);
    const kept = squeezed.length - guard;
    end = kept <= 0 ? 0 : kept < squeezed.length ? squeezed.at[kept]! : decoded.length;
    while (end > 0 && TOKEN_CHARACTER.test(decoded[end - 1]!)) end--;
  }
  const pieces: string[] = [];
  let from = 0;
  let depth = 0;
  for (let i = 0; i < end; i++) {
    if (cover[i] === 0) continue;
    const was = depth;
    depth += cover[i]!;
    if (was === 0 && depth > 0) pieces.push(decoded.slice(from, i), "[redacted]");
    else if (was > 0 && depth === 0) from = i;
  }
  if (depth === 0) pieces.push(decoded.slice(from, end));
  const flat = pieces.join("")
    .replace(TAG, " ")
    .replace(TOKEN_FIELD, "$1[redacted]")
    .replace(OPAQUE, "[redacted]")
    .replace(INVISIBLE, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (flat.length > max) return `${flat.slice(0, max)}...`;
  return cut && flat !== "" ? `${flat}...` : flat;
}

// What a terminal must never be sent raw: control characters (C0, DEL, C1), format characters
// (bidirectional controls, zero-width characters, the BOM, the soft hyphen, tag characters), the
// line and paragraph separators, and lone surrogates.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu;
// Each one's escape, made once: at most the few thousand characters the pattern names.
const ESCAPES = new Map<string, string>();

/**
 * `text` with every character that `UNPRINTABLE` names escaped visibly: `\x1b`, `\x9b` up to
 * U+00FF, `\u202e` in the BMP, `\u{e0041}` beyond. Everything else, backslashes included, is
 * left as it is: the result is for a person or a terminal to read, not to be decoded. One pass
 * of a one-character pattern, linear in the text's length (a pattern for runs, `[...]+` with the
 * `u` flag, throws RangeError on Deno and Node, V8's stack overflowing, on a run of 8 million U+202E).
 */
export function visible(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    let escape = ESCAPES.get(char);
    if (escape === undefined) {
      const code = char.codePointAt(0)!;
      const hex = code.toString(16);
      escape = code < 0x100
        ? `\\x${hex.padStart(2, "0")}`
        : code < 0x10000
        ? `\\u${hex.padStart(4, "0")}`
        : `\\u{${hex}}`;
      ESCAPES.set(char, escape);
    }
    return escape;
  });
}
