import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { endpointText } from "../src/redact.ts";
import { secretHeaderValues } from "../src/sources/source.ts";

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
