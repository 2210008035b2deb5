/**
 * Leak scanning: every rendering of an error (at any depth of `cause`), and every notation in
 * which an endpoint may echo a secret, so that a test can assert that none shows it.
 */

import assert from "node:assert/strict";
import { inspect } from "node:util";

/**
 * Every way an error can be shown: message, `String()`, stack, `JSON.stringify`, `util.inspect`
 * at any depth (also with hidden properties), each own property, and the same for each cause.
 */
export function renderings(error: unknown, seen: Set<unknown> = new Set()): string[] {
  if (!(error instanceof Error) || seen.has(error)) return [String(error)];
  seen.add(error);
  const shown = [
    error.message,
    String(error),
    error.stack ?? "",
    JSON.stringify(error),
    inspect(error, { depth: Infinity }),
    inspect(error, { depth: Infinity, showHidden: true }),
  ];
  for (const key of Reflect.ownKeys(error)) {
    const value = (error as unknown as Record<PropertyKey, unknown>)[key];
    shown.push(String(value), inspect(value, { depth: Infinity }));
    try {
      shown.push(JSON.stringify(value) ?? "");
    } catch {
      // Not serializable: the other renderings cover it.
    }
  }
  if (error.cause !== undefined) shown.push(...renderings(error.cause, seen));
  return shown;
}

/** Every notation an endpoint may echo `secret` in (and `util.inspect` may print it in). */
export function encodings(secret: string): Record<string, string> {
  const json = JSON.stringify(secret).slice(1, -1);
  return {
    raw: secret,
    "JSON-escaped": json,
    "\\u-escaped": [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
    "\\u002B-escaped": json.replace(/\+/g, "\\u002B").replace(/&/g, "\\u0026").replace(/\\"/g, "\\u0022"),
    "percent-encoded": encodeURIComponent(secret),
    "form-encoded": new URLSearchParams({ s: secret }).toString().slice(2),
    "inspect-quoted": inspect(secret).slice(1, -1),
  };
}

/** Asserts that no text shows `secret` in any notation, nor (for a long one) any 16-character run of it. */
export function assertNoLeak(texts: readonly string[], secret: string, where = "output"): void {
  const forms = new Set(Object.values(encodings(secret)));
  for (let at = 0; secret.length > 24 && at + 16 <= secret.length; at += 4) forms.add(secret.slice(at, at + 16));
  for (const text of texts) {
    for (const form of forms) {
      assert.ok(!text.includes(form), `the secret (as "${form}") appears in the ${where}: ${text}`);
    }
  }
}
