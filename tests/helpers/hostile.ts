/**
 * Hostile endpoint text: bodies built to make each step of the redaction gate (src/redact.ts) do
 * the most work it can, and a secret spelled with invisible characters or whitespace between its
 * characters. Shared by the tests and `deno task bench:hostile`.
 */

import assert from "node:assert/strict";

/** The transport's read cap (src/transport.ts): the longest body an endpoint can make the client read. */
export const READ_CAP = 1024 * 1024;

/** `unit` repeated to exactly `length` characters. */
export function fill(unit: string, length: number): string {
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
}

/** `unit` repeated to at most `bytes` bytes of UTF-8, as many as fit. */
function fillBytes(unit: string, bytes: number): string {
  const size = new TextEncoder().encode(unit).length;
  return fill(unit, Math.floor(bytes / size) * unit.length);
}

/**
 * The worst text found for each step of the gate, each `length` bytes of UTF-8 (or a few
 * bytes less, for a unit of several bytes): a tag that never closes from every `<`, escapes that are never complete or
 * decode into more work (`\u003c` into `<`, `%25` one round at a time), field names with no
 * value, words one character short of a token, JWT-like runs, and so on.
 */
export function worstCases(length: number): Record<string, string> {
  return {
    "<<<< (a tag opened at every character, never closed)": fill("<", length),
    "<a<a (tags that never close)": fill("<a", length),
    "one < and no >": `<${fill("a b ", length - 1)}`,
    "\\u003c (escapes that decode into <)": fill("\\u003c", length),
    "&lt; (references that decode into <)": fill("&lt;", length),
    "%3C (percent runs that decode into <)": fill("%3C", length),
    "&#&# (references never complete)": fill("&#", length),
    "&#x1 (hexadecimal references never complete)": fill("&#x1", length),
    "&amp;amp; (references nested to every round)": `&${fill("amp;", length - 1)}`,
    "%%%% (percent signs with no digits)": fill("%", length),
    "%25%25 (percent-encoded percent signs)": fill("%25", length),
    "%C3 (percent runs that are not UTF-8)": fill("%C3", length),
    "\\u\\u (escapes with no digits)": fill("\\u", length),
    "\\\\\\\\ (backslashes)": fill("\\", length),
    "token= (token fields with no value)": fill("token=", length),
    "token : (token names never given a value)": fill("token : ", length),
    "access_token (field names run together)": fill("access_token", length),
    "39-character words (one short of a token)": fill(`${"a".repeat(39)} `, length),
    "eyJ. (a JWT of empty parts)": fill("eyJ.", length),
    "eyJ words": fill("eyJ ", length),
    "whitespace": fill(" \r\n\t", length),
    "NULs": fill("\0", length),
    "letters between zero-width spaces": fillBytes("a\u200b", length),
    "one letter (a token run, and a secret of one letter repeated, but for its end)": fill("a", length),
    "a secret's first characters, over and over": fill('Zk3+Q/"w\\e=9&p%7', length),
  };
}

/** `secret` with `between` after each of its characters but the last. */
export function interleave(secret: string, between: string): string {
  return [...secret].join(between);
}

/** `text` as UTF-16LE bytes: what an endpoint that writes UTF-16 sends. */
export function utf16le(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    bytes[2 * i] = text.charCodeAt(i) & 0xff;
    bytes[2 * i + 1] = text.charCodeAt(i) >> 8;
  }
  return bytes;
}

/**
 * Every way a secret can be spelled with something between its characters that a reader (or a
 * terminal) does not see, or sees as blanks: `\0`, U+200B, U+00AD, a BOM, bidirectional
 * controls, a word joiner, tag characters, UTF-16LE bytes read as UTF-8, and (docs/security.md)
 * spaces and line breaks.
 */
export function interleavings(secret: string): Record<string, string> {
  return {
    "NULs": interleave(secret, "\0"),
    "zero-width spaces (U+200B)": interleave(secret, "\u200b"),
    "soft hyphens (U+00AD)": interleave(secret, "\u00ad"),
    "BOMs (U+FEFF)": interleave(secret, "\ufeff"),
    "bidirectional controls (U+202E, U+2066)": interleave(secret, "\u202e\u2066"),
    "word joiners (U+2060)": interleave(secret, "\u2060"),
    "tag characters (U+E0020)": interleave(secret, "\u{e0020}"),
    "escape and bell controls": interleave(secret, "\u001b\u0007"),
    "UTF-16LE bytes read as UTF-8": new TextDecoder().decode(utf16le(secret)),
    "UTF-16LE with its BOM read as UTF-8": new TextDecoder().decode(
      new Uint8Array([0xff, 0xfe, ...utf16le(secret)]),
    ),
    "NULs, JSON-escaped": JSON.stringify(interleave(secret, "\0")).slice(1, -1),
    "NULs, percent-encoded": encodeURIComponent(interleave(secret, "\0")),
    "spaces": interleave(secret, " "),
    "line breaks": interleave(secret, "\r\n"),
  };
}

/**
 * Asserts that no text spells `secret`, even read with every control, format and whitespace
 * character (and the JSON or `util.inspect` escape of one) taken out: how a reader sees
 * `s\0e\0c` once a terminal has printed it, or `s e c` once the gate has turned `\0` into spaces.
 */
export function assertNotSpelled(texts: readonly string[], secret: string, where = "output"): void {
  const squeeze = (text: string) =>
    text.replace(/\\u(?:00[0-9a-f]{2}|20[0-6][0-9a-f]|feff|fff[9ab])|\\x[0-9a-f]{2}|\\[0rnt]/gi, "")
      .replace(/[\p{Cc}\p{Cf}\s]/gu, "");
  const wanted = squeeze(secret).toLowerCase();
  for (const text of texts) {
    assert.ok(!squeeze(text).toLowerCase().includes(wanted), `the secret is spelled in the ${where}: ${text}`);
  }
}
