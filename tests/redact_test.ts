import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { endpointText, textWindow } from "../src/redact.ts";
import { secretHeaderValues } from "../src/sources/source.ts";
import { assertNotSpelled, fill, interleavings, READ_CAP, worstCases } from "./helpers/hostile.ts";

const JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLXZhbHVl";

// A secret with every character an encoder treats specially: "+" (System.Text.Json writes \u002B),
// quotes and backslashes (JSON escapes them), "/", "&", "=", "%" and a space (URL encoding).
const SECRET = 'Zk3+Q/"w\\e=9&p%7 Z';

/** Every notation an endpoint may echo SECRET in. */
function encodings(secret: string): Record<string, string> {
  const unicode = [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
  return {
    raw: secret,
    "JSON-escaped": JSON.stringify(secret).slice(1, -1),
    "\\u-escaped": unicode,
    "\\u002B-escaped (System.Text.Json)": JSON.stringify(secret).slice(1, -1).replace(/\+/g, "\\u002B")
      .replace(/&/g, "\\u0026").replace(/\\"/g, "\\u0022"),
    "percent-encoded": encodeURIComponent(secret),
    "form-encoded": new URLSearchParams({ s: secret }).toString().slice(2),
    "twice percent-encoded": encodeURIComponent(encodeURIComponent(secret)),
    "HTML references": [...secret].map((c) => `&#${c.charCodeAt(0)};`).join(""),
    "upper case": secret.toUpperCase(),
  };
}

describe("endpointText() secrets", () => {
  for (const [name, form] of Object.entries(encodings(SECRET))) {
    test(`endpointText() cuts a secret echoed ${name}`, () => {
      const shown = endpointText(`header was ${form} here`, [SECRET]);
      assert.equal(shown, "header was [redacted] here");
      for (const leak of Object.values(encodings(SECRET))) assert.ok(!shown.includes(leak), shown);
    });
  }

  test("endpointText() cuts a long secret before it shortens the text", () => {
    // Spaced words, so that no token pattern catches it: only the secret rule can.
    const key = "a key, ".repeat(60);
    const shown = endpointText(`Authorization: Basic ${key}`, [key], 60);
    assert.equal(shown, "Authorization: Basic [redacted]");
  });

  test("endpointText() cuts a short secret where it stands alone, not inside a word", () => {
    assert.equal(endpointText("echo: xy!", ["xy!"]), "echo: [redacted]");
    assert.equal(endpointText('{"h":"h"} the h', ["h"]), '{"[redacted]":"[redacted]"} the [redacted]');
    assert.equal(endpointText("Unable to load the identity", ["h"]), "Unable to load the identity");
  });

  test("endpointText() drops control and direction characters", () => {
    assert.equal(endpointText("a\u001b[31mred\u202Eb\u0000c"), "a [31mred b c");
    assert.equal(endpointText("line\r\nbreak\ttab"), "line break tab");
  });

  test("endpointText() leaves text without escapes alone", () => {
    assert.equal(endpointText("Identity not found (100%)"), "Identity not found (100%)");
  });
});

describe("secretHeaderValues()", () => {
  test("secretHeaderValues() takes each secret header's value and a credential's own part", () => {
    assert.deepEqual(
      secretHeaderValues({ "Metadata": "true", "X-IDENTITY-HEADER": "h1", "Authorization": "Basic key\n" }),
      ["h1", "h1", "Basic key\n", "Basic key", "key"],
    );
  });
});

describe("endpointText() token patterns", () => {
  test("endpointText() redacts JWT-shaped strings", () => {
    assert.equal(endpointText(JWT), "[redacted]");
    assert.equal(endpointText(`Bearer ${JWT} is expired`), "Bearer [redacted] is expired");
    assert.equal(endpointText(`truncated ${JWT.slice(0, 30)}`), "truncated [redacted]");
  });

  test("endpointText() redacts long opaque strings", () => {
    const opaque = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v+/=";
    assert.equal(endpointText(`key ${opaque} end`), "key [redacted] end");
    assert.equal(endpointText("a".repeat(40)), "[redacted]");
    assert.equal(endpointText("a".repeat(39)), "a".repeat(39));
  });

  test("endpointText() redacts the value of a token field whatever its length", () => {
    assert.equal(endpointText('{"access_token":"short"}'), '{"access_token":"[redacted]"}');
    assert.equal(
      endpointText('{"refresh_token": "r", "id_token":"i"}'),
      '{"refresh_token": "[redacted]", "id_token":"[redacted]"}',
    );
  });

  test("endpointText() redacts a short token named outside JSON syntax", () => {
    // Proxies and non-JSON error pages echo tokens in query-string or log form; a short
    // (non-JWT, under 40 characters) token there is caught by neither pattern but the field name.
    for (
      const text of [
        "Unauthorized: access_token=opaque-1234&expires_in=3600",
        'Unauthorized: access_token: "opaque-1234"',
        "{'access_token': 'opaque-1234'}",
      ]
    ) {
      const shown = endpointText(text);
      assert.ok(!shown.includes("opaque-1234"), `token shown in ${shown}`);
    }
  });

  test("endpointText() drops HTML tags and collapses whitespace", () => {
    assert.equal(endpointText("<p>Gateway\n\n  <b>Timeout</b></p>"), "Gateway Timeout");
  });

  test("endpointText() truncates to the limit with an ellipsis", () => {
    assert.equal(endpointText("hello world", [], 5), "hello...");
    const long = endpointText("word ".repeat(100));
    assert.equal(long.length, 163);
    assert.ok(long.endsWith("..."));
    assert.equal(endpointText("short"), "short");
  });
});

// Generous: each case takes milliseconds in linear time. The quadratic tag pattern took 2 s on
// 64 KiB of "<" and 7 s on 128 KiB (Deno), so minutes on 1 MiB.
const BOUND_MS = 1000;

describe("endpointText() on hostile text", () => {
  // One secret of one letter repeated but for its end: the worst case of a naive string search.
  const PERIODIC = `${"a".repeat(600)}b`;
  for (const [name, text] of Object.entries(worstCases(READ_CAP))) {
    test(`endpointText() reads 1 MiB of ${name} within ${BOUND_MS} ms`, () => {
      const started = performance.now();
      const shown = endpointText(text, [SECRET, PERIODIC], 500);
      const ms = performance.now() - started;
      assert.ok(ms < BOUND_MS, `${ms.toFixed(0)} ms`);
      assert.ok(shown.length <= 503, `${shown.length} characters`);
    });
  }

  test("endpointText() still shows what a long body begins with", () => {
    const shown = endpointText(`<h1>Gateway Timeout</h1>${fill("<p>retry later</p>", READ_CAP)}`);
    assert.ok(shown.startsWith("Gateway Timeout retry later"), shown);
    assert.ok(shown.endsWith("..."), shown);
  });
});

describe("endpointText() at the edge of the text it reads", () => {
  // Distinct characters, so that any piece of it that shows is found.
  const KEY = "Qx7Lm2Vt9Rz4Pk8Wn3Hs6";
  /** Fails when `shown` holds any 4 consecutive characters of `secret`, in any case. */
  const assertNoPiece = (shown: string, secret: string, why: string) => {
    // Read as the search reads it: spaces and invisible characters between characters do not count.
    const read = shown.replace(/[\p{Cc}\p{Cf}\s]/gu, "").toLowerCase();
    for (let at = 0; at + 4 <= secret.length; at++) {
      const piece = secret.slice(at, at + 4);
      assert.ok(!read.includes(piece.toLowerCase()), `"${piece}" shows (${why}): ${shown}`);
    }
  };
  const forms: Record<string, string> = {
    raw: KEY,
    "\\u-escaped": [...KEY].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
    "percent-encoded twice": [...KEY].map((c) => `%25${c.charCodeAt(0).toString(16)}`).join(""),
    "HTML references": [...KEY].map((c) => `&#${c.charCodeAt(0)};`).join(""),
    "with NULs between": [...KEY].join("\0"),
    "with zero-width spaces between": [...KEY].join("\u200b"),
  };

  for (const [name, form] of Object.entries(forms)) {
    test(`endpointText() shows nothing of a secret ${name} that the window's edge cuts`, () => {
      const edge = textWindow([KEY]);
      // Tags drop out of the excerpt: without care, the secret's first part would lead it.
      for (let split = 1; split < form.length; split++) {
        const text = `${fill("<i>", edge - split)}${form}${fill(" and after", 4096)}`;
        assertNoPiece(endpointText(text, [KEY]), KEY, `cut after ${split} characters`);
      }
    });
  }

  test("endpointText() shows nothing of a secret in a UTF-8 percent run that the window's edge cuts mid-character", () => {
    // A run cut inside a character is not UTF-8, so it is read byte by byte: the secret's first
    // part then decodes to up to 3 times as many characters as it has (U+6F22 to three, none invisible).
    // Punctuation between its first characters, so that they are not a token-like run (also cut).
    const key = `Q!x7#L(m2)V@t9${"\u6f22".repeat(100)}`;
    const form = [...new TextEncoder().encode(key)].map((byte) => `%${byte.toString(16).padStart(2, "0")}`).join("");
    const edge = textWindow([key]);
    // Every split in the last characters, where the first part decodes longest; some before.
    for (let split = 1; split < form.length; split += split < form.length - 60 ? 13 : 1) {
      const text = `${fill("<i>", edge - split)}${form}${fill(" and after", 4096)}`;
      assertNoPiece(endpointText(text, [key]), key.slice(0, 14), `cut after ${split} characters`);
    }
  });

  test("endpointText() shows nothing of a token-shaped run that the window's edge cuts", () => {
    // 200 characters of base64 that repeat nothing: any 4 of them that show are a leak.
    let seed = 7;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const run = Array.from({ length: 200 }, () => alphabet[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % 64]).join(
      "",
    );
    const edge = textWindow([]);
    for (let split = 1; split < run.length; split++) {
      const text = `${fill("<i>", edge - split)}${run} and after`;
      assertNoPiece(endpointText(text), run, `cut after ${split} characters`);
    }
  });

  test("endpointText() cuts a secret of 64 KB (the largest token file) wherever it stands", () => {
    const long = fill("k3y-", 5000) + fill("Vt9Rz4", 60_000);
    for (const at of [0, 100, 9000, 200_000]) {
      const text = `${fill("<i>", at)}${long}${fill(" after", READ_CAP - at - long.length)}`;
      assertNoPiece(endpointText(text, [long]), "Vt9Rz4Vt9", `the secret at ${at}`);
      assertNotSpelled([endpointText(text, [long], 500)], long.slice(0, 40));
    }
  });
});

describe("endpointText() secrets spelled with characters between their characters", () => {
  const KEY = "Sup3rS3cretHeaderValue9Xq";
  for (const [name, form] of Object.entries(interleavings(KEY))) {
    test(`endpointText() cuts a secret spelled with ${name} between its characters`, () => {
      const shown = endpointText(`header ${form} end`, [KEY]);
      // A UTF-16 BOM read as UTF-8 is two replacement characters, which are not invisible.
      assert.equal(shown.replace(/\ufffd/g, ""), "header [redacted] end");
      assertNotSpelled([shown], KEY);
    });
  }

  test("endpointText() cuts an interleaved secret of 8 characters or more inside a word too", () => {
    assert.equal(endpointText(`x${interleavings(KEY).NULs}y`, [KEY]), "x[redacted]y");
  });

  test("endpointText() cuts a short secret spelled with invisible characters only where it stands alone", () => {
    assert.equal(endpointText("echo: x\0y\u200b!", ["xy!"]), "echo: [redacted]");
    assert.equal(endpointText("the h\u00ad", ["h"]), "the [redacted]");
    // A short secret is never searched across spaces: "a b" is not the secret "ab".
    assert.equal(endpointText("a b", ["ab"]), "a b");
    assert.equal(endpointText("xab\0c", ["abc"]), "xab c");
  });
});
