import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ManagedIdentityError } from "../mod.ts";
import { parseErrorBody, parseExpiresOn, parseTokenBody, type ReplyContext } from "../src/response.ts";
import { excerpt } from "../src/redact.ts";

// 2024-01-15 10:30:00 UTC, the instant most expiry forms below spell.
const T = Date.UTC(2024, 0, 15, 10, 30, 0);
const T_SECONDS = T / 1000;
const HOUR = 3_600_000;

const context: ReplyContext = { source: "AppService", endpoint: "http://127.0.0.1:41741/token" };
const NOW = 1_700_000_000_000;

// A JWT-shaped token: three base64url parts.
const JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLXZhbHVl";

function invalidResponse(run: () => unknown): ManagedIdentityError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(caught)}`);
  assert.equal(caught.code, "invalid_response");
  assert.equal(caught.source, "AppService");
  return caught;
}

describe("parseExpiresOn()", () => {
  test("parseExpiresOn() reads a JSON number as Unix seconds", () => {
    assert.equal(parseExpiresOn(T_SECONDS), T);
    assert.equal(parseExpiresOn(1705314600.5), T + 500);
  });

  test("parseExpiresOn() reads a digit string as Unix seconds", () => {
    assert.equal(parseExpiresOn("1705314600"), T);
    assert.equal(parseExpiresOn(" 1705314600 "), T);
  });

  test("parseExpiresOn() reads MM/dd/yyyy HH:mm:ss as UTC", () => {
    assert.equal(parseExpiresOn("01/15/2024 10:30:00"), T);
    assert.equal(parseExpiresOn("01/15/2024 22:30:00"), Date.UTC(2024, 0, 15, 22, 30, 0));
    assert.equal(parseExpiresOn("02/29/2024 23:59:59"), 1_709_251_199_000);
  });

  test("parseExpiresOn() reads yyyy-MM-dd HH:mm:ss as UTC", () => {
    assert.equal(parseExpiresOn("2024-01-15 10:30:00"), T);
    assert.equal(parseExpiresOn("2024-01-01 00:00:00"), 1_704_067_200_000);
  });

  test("parseExpiresOn() reads ISO 8601 with Z", () => {
    assert.equal(parseExpiresOn("2024-01-15T10:30:00Z"), T);
    assert.equal(parseExpiresOn("2024-01-15T10:30:00z"), T);
  });

  test("parseExpiresOn() applies an ISO 8601 offset with and without a colon", () => {
    assert.equal(parseExpiresOn("2024-01-15T12:30:00+02:00"), T);
    assert.equal(parseExpiresOn("2024-01-15T05:00:00-0530"), T);
    assert.equal(parseExpiresOn("2024-01-15T05:00:00-05:30"), T);
  });

  test("parseExpiresOn() keeps the milliseconds of an ISO 8601 fraction", () => {
    assert.equal(parseExpiresOn("2024-01-15T10:30:00.123Z"), T + 123);
    // .NET writes seven fraction digits.
    assert.equal(parseExpiresOn("2024-01-15T10:30:00.1234567Z"), T + 123);
    assert.equal(parseExpiresOn("2024-01-15T12:30:00.5+02:00"), T + 500);
  });

  test("parseExpiresOn() reads ISO 8601 without an offset as UTC", () => {
    assert.equal(parseExpiresOn("2024-01-15T10:30:00"), T);
    assert.equal(parseExpiresOn("2024-01-15T10:30:00.250"), T + 250);
  });

  test("parseExpiresOn() reads the legacy App Service form with AM and PM", () => {
    assert.equal(parseExpiresOn("1/15/2024 10:30:00 AM +00:00"), T);
    assert.equal(parseExpiresOn("1/15/2024 10:30:00 PM +00:00"), Date.UTC(2024, 0, 15, 22, 30, 0));
    assert.equal(parseExpiresOn("1/15/2024 12:30:00 PM +02:00"), T);
    assert.equal(parseExpiresOn("01/15/2024 10:30:00 am +00:00"), T);
  });

  test("parseExpiresOn() reads 12 AM as midnight and 12 PM as noon", () => {
    assert.equal(parseExpiresOn("1/15/2024 12:05:00 AM +00:00"), Date.UTC(2024, 0, 15, 0, 5, 0));
    assert.equal(parseExpiresOn("1/15/2024 12:05:00 PM +00:00"), Date.UTC(2024, 0, 15, 12, 5, 0));
    assert.equal(parseExpiresOn("1/15/2024 11:59:59 PM +00:00"), Date.UTC(2024, 0, 15, 23, 59, 59));
  });

  test("parseExpiresOn() returns undefined for dates that do not exist", () => {
    assert.equal(parseExpiresOn("13/40/2024 10:00:00"), undefined);
    assert.equal(parseExpiresOn("02/30/2024 10:00:00"), undefined);
    assert.equal(parseExpiresOn("02/29/2023 10:00:00"), undefined);
    assert.equal(parseExpiresOn("2024-02-30 10:00:00"), undefined);
    assert.equal(parseExpiresOn("2024-13-01T10:00:00Z"), undefined);
    assert.equal(parseExpiresOn("2024-01-15 24:00:00"), undefined);
    assert.equal(parseExpiresOn("2024-01-15T10:60:00Z"), undefined);
    assert.equal(parseExpiresOn("1/15/2024 13:00:00 PM +00:00"), undefined);
    assert.equal(parseExpiresOn("1/15/2024 0:30:00 AM +00:00"), undefined);
  });

  test("parseExpiresOn() returns undefined for values that are not times", () => {
    assert.equal(parseExpiresOn("soon"), undefined);
    assert.equal(parseExpiresOn(""), undefined);
    assert.equal(parseExpiresOn("   "), undefined);
    assert.equal(parseExpiresOn(null), undefined);
    assert.equal(parseExpiresOn(undefined), undefined);
    assert.equal(parseExpiresOn({}), undefined);
    assert.equal(parseExpiresOn({ seconds: T_SECONDS }), undefined);
    assert.equal(parseExpiresOn([T_SECONDS]), undefined);
    assert.equal(parseExpiresOn(true), undefined);
    assert.equal(parseExpiresOn(Number.NaN), undefined);
    assert.equal(parseExpiresOn(Number.POSITIVE_INFINITY), undefined);
    assert.equal(parseExpiresOn("-1705314600"), undefined);
    assert.equal(parseExpiresOn("2024-01-15T10:30:00+2"), undefined);
  });

  test("parseExpiresOn() reads offset-less date strings as UTC in a process whose local zone is not UTC", () => {
    // The host running the tests may be on UTC, where local time and UTC agree; a child
    // process on UTC+05:30 shows that no form without an offset is read as local time.
    const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
    const module = new URL("../src/response.ts", import.meta.url).href;
    const script = `import { parseExpiresOn } from ${JSON.stringify(module)};
console.log(JSON.stringify([new Date(0).getTimezoneOffset(), parseExpiresOn("2024-01-15 10:30:00"),
  parseExpiresOn("01/15/2024 10:30:00"), parseExpiresOn("2024-01-15T10:30:00")]));`;
    const args = runtime.Deno
      ? ["eval", "--quiet", script]
      : runtime.Bun
      ? ["-e", script]
      : ["--input-type=module", "--no-warnings", "-e", script];
    const child = spawnSync(process.execPath, args, {
      env: { ...process.env, TZ: "Asia/Kolkata" },
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const [zoneOffset, ...values] = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "") as number[];
    assert.equal(zoneOffset, -330, "the child process is not on UTC+05:30");
    assert.deepEqual(values, [T, T, T]);
  });
});

describe("parseTokenBody()", () => {
  test("parseTokenBody() reads expires_in as a number", () => {
    const token = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 3600 }), NOW, context);
    assert.equal(token.accessToken, "t");
    assert.equal(token.expiresOn, NOW + HOUR);
    assert.equal(token.expiresOnFallback, undefined);
  });

  test("parseTokenBody() reads expires_in as a numeric string", () => {
    const token = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: "3600" }), NOW, context);
    assert.equal(token.expiresOn, NOW + HOUR);
  });

  test("parseTokenBody() prefers expires_on over expires_in", () => {
    const token = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: String(T_SECONDS), expires_in: "60" }),
      T - HOUR,
      context,
    );
    assert.equal(token.expiresOn, T);
    assert.equal(token.expiresOnFallback, undefined);
  });

  test("parseTokenBody() reads a date string expires_on", () => {
    const token = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: "1/15/2024 10:30:00 AM +00:00" }),
      T - HOUR,
      context,
    );
    assert.equal(token.expiresOn, T);
  });

  test("parseTokenBody() falls back to expires_in when expires_on is unparsable and says so", () => {
    const token = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: "soon", expires_in: 3600 }),
      NOW,
      context,
    );
    assert.equal(token.expiresOn, NOW + HOUR);
    assert.equal(typeof token.expiresOnFallback, "string");
    assert.match(token.expiresOnFallback ?? "", /"soon"/);
  });

  test("parseTokenBody() refuses a body with neither expires_on nor expires_in", () => {
    const error = invalidResponse(() => parseTokenBody(JSON.stringify({ access_token: "t" }), NOW, context));
    assert.match(error.message, /expires_on/);
    assert.equal(error.endpoint, context.endpoint);
  });

  test("parseTokenBody() refuses an unparsable expires_on without expires_in", () => {
    invalidResponse(() => parseTokenBody(JSON.stringify({ access_token: "t", expires_on: "soon" }), NOW, context));
    invalidResponse(() =>
      parseTokenBody(JSON.stringify({ access_token: "t", expires_on: "soon", expires_in: "later" }), NOW, context)
    );
  });

  test("parseTokenBody() refuses a missing, empty or non-string access_token", () => {
    for (const accessToken of [undefined, "", 42, null, true, ["t"], { value: "t" }]) {
      const body = JSON.stringify({ access_token: accessToken, expires_in: 3600 });
      const error = invalidResponse(() => parseTokenBody(body, NOW, context));
      assert.match(error.message, /access_token/);
    }
  });

  test("parseTokenBody() defaults token_type to Bearer", () => {
    assert.equal(
      parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60 }), NOW, context).tokenType,
      "Bearer",
    );
    assert.equal(
      parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60, token_type: "" }), NOW, context).tokenType,
      "Bearer",
    );
    assert.equal(
      parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60, token_type: "pop" }), NOW, context).tokenType,
      "pop",
    );
  });

  test("parseTokenBody() sets refreshOn to now plus refresh_in", () => {
    const token = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 86400, refresh_in: 600 }),
      NOW,
      context,
    );
    assert.equal(token.refreshOn, NOW + 600_000);
    const short = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 3600, refresh_in: "1800" }),
      NOW,
      context,
    );
    assert.equal(short.refreshOn, NOW + 1_800_000);
  });

  test("parseTokenBody() refreshes a token living over 2 hours at half its remaining lifetime", () => {
    const day = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 86400 }), NOW, context);
    assert.equal(day.refreshOn, NOW + 12 * HOUR);
    const justOver = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 7201 }), NOW, context);
    assert.equal(justOver.refreshOn, NOW + 3_600_500);
    // From an absolute expires_on: 3 hours remain, so half is 1.5 hours.
    const absolute = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: T_SECONDS }),
      T - 3 * HOUR,
      context,
    );
    assert.equal(absolute.refreshOn, T - 3 * HOUR + 1.5 * HOUR);
  });

  test("parseTokenBody() sets no refreshOn for a token living 2 hours or less", () => {
    const twoHours = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 7200 }), NOW, context);
    assert.equal(twoHours.refreshOn, undefined);
    assert.ok(!("refreshOn" in twoHours));
    const hour = parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 3600 }), NOW, context);
    assert.ok(!("refreshOn" in hour));
  });

  test("parseTokenBody() keeps resource and the body's fields", () => {
    const token = parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 60, resource: "https://vault.azure.net", client_id: "c" }),
      NOW,
      context,
    );
    assert.equal(token.resource, "https://vault.azure.net");
    assert.equal(token.fields.client_id, "c");
  });

  test("parseTokenBody() refuses malformed bodies with invalid_response", () => {
    const bodies = [
      "not json",
      "<html><body><h1>502 Bad Gateway</h1></body></html>",
      "",
      "  \n ",
      "[]",
      "null",
      "42",
      '"access_token"',
      '{"access_token":"t","expires_in":3600',
    ];
    for (const body of bodies) {
      const error = invalidResponse(() => parseTokenBody(body, NOW, context));
      assert.match(error.message, /AppService/);
    }
  });

  test("parseTokenBody() never puts the token of a truncated body in the message", () => {
    const opaque = "opaque-token-value-1234";
    const bodies = [
      `{"access_token":"${JWT.slice(0, 60)}`,
      `{"access_token":"${JWT}","expires_in":36`,
      `{"token_type":"Bearer","access_token" : "${opaque}`,
      `[{"access_token":"${opaque}","expires_in":3600}]`,
      `<html><pre>{"access_token":"${opaque}"}</pre>`,
    ];
    for (const body of bodies) {
      const error = invalidResponse(() => parseTokenBody(body, NOW, context));
      const shown = `${error.message}\n${JSON.stringify(error)}\n${String(error.cause)}`;
      assert.ok(!shown.includes(opaque), `token leaked for body ${body}: ${shown}`);
      assert.ok(!shown.includes(JWT.slice(0, 20)), `JWT leaked for body ${body}: ${shown}`);
    }
  });

  test("parseTokenBody() never puts the token in the message when expiry is missing", () => {
    const error = invalidResponse(() =>
      parseTokenBody(JSON.stringify({ access_token: JWT, expires_on: "soon" }), NOW, context)
    );
    assert.ok(!error.message.includes(JWT.slice(0, 20)));
    assert.ok(!JSON.stringify(error).includes(JWT.slice(0, 20)));
  });
});

describe("parseErrorBody()", () => {
  test("parseErrorBody() reads the IMDS and Arc shape", () => {
    assert.deepEqual(
      parseErrorBody(JSON.stringify({ error: "invalid_request", error_description: "Identity not found" })),
      { error: "invalid_request", errorDescription: "Identity not found" },
    );
  });

  test("parseErrorBody() reads the App Service and Azure ML shape", () => {
    assert.deepEqual(
      parseErrorBody(
        JSON.stringify({
          statusCode: 400,
          message: "Unable to load the proper Managed Identity.",
          correlationId: "7f5d9a1c-0000-4000-8000-000000000001",
        }),
      ),
      {
        errorDescription: "Unable to load the proper Managed Identity.",
        correlationId: "7f5d9a1c-0000-4000-8000-000000000001",
      },
    );
  });

  test("parseErrorBody() reads the Cloud Shell and Service Fabric shape", () => {
    assert.deepEqual(
      parseErrorBody(
        JSON.stringify({
          error: { code: "SecretHeaderNotFound", message: "Secret is not found in the request headers." },
        }),
      ),
      { error: "SecretHeaderNotFound", errorDescription: "Secret is not found in the request headers." },
    );
  });

  test("parseErrorBody() keeps plain text as the description", () => {
    assert.deepEqual(parseErrorBody("Service Unavailable\n"), { errorDescription: "Service Unavailable" });
  });

  test("parseErrorBody() drops the tags of an HTML body", () => {
    const said = parseErrorBody(
      "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
    );
    assert.deepEqual(said, { errorDescription: "502 Bad Gateway Bad Gateway" });
  });

  test("parseErrorBody() returns nothing for an empty body", () => {
    assert.deepEqual(parseErrorBody(""), {});
    assert.deepEqual(parseErrorBody(" \r\n "), {});
    assert.deepEqual(parseErrorBody("{}"), {});
  });

  test("parseErrorBody() redacts a token in the description", () => {
    const said = parseErrorBody(JSON.stringify({ error: "bad", error_description: `token ${JWT} refused` }));
    assert.equal(said.error, "bad");
    assert.equal(said.errorDescription, "token [redacted] refused");
    const text = parseErrorBody(`{"access_token":"opaque-token-value-1234"`);
    assert.ok(!(text.errorDescription ?? "").includes("opaque-token-value-1234"));
  });
});

describe("excerpt()", () => {
  test("excerpt() redacts JWT-shaped strings", () => {
    assert.equal(excerpt(JWT), "[redacted]");
    assert.equal(excerpt(`Bearer ${JWT} is expired`), "Bearer [redacted] is expired");
    assert.equal(excerpt(`truncated ${JWT.slice(0, 30)}`), "truncated [redacted]");
  });

  test("excerpt() redacts long opaque strings", () => {
    const opaque = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9v+/=";
    assert.equal(excerpt(`key ${opaque} end`), "key [redacted] end");
    assert.equal(excerpt("a".repeat(40)), "[redacted]");
    assert.equal(excerpt("a".repeat(39)), "a".repeat(39));
  });

  test("excerpt() redacts the value of a token field whatever its length", () => {
    assert.equal(excerpt('{"access_token":"short"}'), '{"access_token":"[redacted]"}');
    assert.equal(
      excerpt('{"refresh_token": "r", "id_token":"i"}'),
      '{"refresh_token": "[redacted]", "id_token":"[redacted]"}',
    );
  });

  test("excerpt() redacts a short token named outside JSON syntax", () => {
    // Proxies and non-JSON error pages echo tokens in query-string or log form; a short
    // (non-JWT, under 40 characters) token there is caught by neither pattern but the field name.
    for (
      const text of [
        "Unauthorized: access_token=opaque-1234&expires_in=3600",
        'Unauthorized: access_token: "opaque-1234"',
        "{'access_token': 'opaque-1234'}",
      ]
    ) {
      const shown = excerpt(text);
      assert.ok(!shown.includes("opaque-1234"), `token shown in ${shown}`);
    }
  });

  test("excerpt() drops HTML tags and collapses whitespace", () => {
    assert.equal(excerpt("<p>Gateway\n\n  <b>Timeout</b></p>"), "Gateway Timeout");
  });

  test("excerpt() truncates to the limit with an ellipsis", () => {
    assert.equal(excerpt("hello world", 5), "hello...");
    const long = excerpt("word ".repeat(100));
    assert.equal(long.length, 163);
    assert.ok(long.endsWith("..."));
    assert.equal(excerpt("short"), "short");
  });
});
