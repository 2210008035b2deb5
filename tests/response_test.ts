import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ManagedIdentityError } from "../mod.ts";
import { parseExpiresOn, parseTokenBody, type ReplyContext } from "../src/response.ts";
import { parseErrorBody } from "../src/failure.ts";

// 2024-01-15 10:30:00 UTC, the instant most expiry forms below spell.
const T = Date.UTC(2024, 0, 15, 10, 30, 0);
const T_SECONDS = T / 1000;
const HOUR = 3_600_000;

const context: ReplyContext = { source: "AppService", endpoint: "http://127.0.0.1:41741/token" };
const NOW = 1_700_000_000_000;

// A JWT-shaped token: three base64url parts.
const JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLXZhbHVl";

async function invalidResponse(run: () => unknown): Promise<ManagedIdentityError> {
  let caught: unknown;
  try {
    await run();
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
    assert.equal(parseExpiresOn("2024-01-15T10:30:00+2"), undefined);
  });

  test("parseExpiresOn() reads a negative digit string as the negative number it spells", () => {
    // One rule for numbers and numeric strings: a time in the past either way (never cached).
    assert.equal(parseExpiresOn("-1705314600"), -1705314600000);
    assert.equal(parseExpiresOn(-1705314600), -1705314600000);
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
  test("parseTokenBody() reads expires_in as a number", async () => {
    const token = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 3600 }), NOW, context);
    assert.equal(token.accessToken, "t");
    assert.equal(token.expiresOn, NOW + HOUR);
    assert.equal(token.expiresOnFallback, undefined);
  });

  test("parseTokenBody() reads expires_in as a numeric string", async () => {
    const token = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: "3600" }), NOW, context);
    assert.equal(token.expiresOn, NOW + HOUR);
  });

  test("parseTokenBody() prefers expires_on over expires_in", async () => {
    const token = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: String(T_SECONDS), expires_in: "60" }),
      T - HOUR,
      context,
    );
    assert.equal(token.expiresOn, T);
    assert.equal(token.expiresOnFallback, undefined);
  });

  test("parseTokenBody() reads a date string expires_on", async () => {
    const token = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: "1/15/2024 10:30:00 AM +00:00" }),
      T - HOUR,
      context,
    );
    assert.equal(token.expiresOn, T);
  });

  test("parseTokenBody() falls back to expires_in when expires_on is unparsable and says so", async () => {
    const token = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: "soon", expires_in: 3600 }),
      NOW,
      context,
    );
    assert.equal(token.expiresOn, NOW + HOUR);
    assert.equal(typeof token.expiresOnFallback, "string");
    assert.match(token.expiresOnFallback ?? "", /"soon"/);
  });

  test("parseTokenBody() refuses a body with neither expires_on nor expires_in", async () => {
    const error = await invalidResponse(() => parseTokenBody(JSON.stringify({ access_token: "t" }), NOW, context));
    assert.match(error.message, /expires_on/);
    assert.equal(error.endpoint, context.endpoint);
  });

  test("parseTokenBody() refuses an unparsable expires_on without expires_in", async () => {
    await invalidResponse(() =>
      parseTokenBody(JSON.stringify({ access_token: "t", expires_on: "soon" }), NOW, context)
    );
    await invalidResponse(() =>
      parseTokenBody(JSON.stringify({ access_token: "t", expires_on: "soon", expires_in: "later" }), NOW, context)
    );
  });

  test("parseTokenBody() refuses a missing, empty or non-string access_token", async () => {
    for (const accessToken of [undefined, "", 42, null, true, ["t"], { value: "t" }]) {
      const body = JSON.stringify({ access_token: accessToken, expires_in: 3600 });
      const error = await invalidResponse(() => parseTokenBody(body, NOW, context));
      assert.match(error.message, /access_token/);
    }
  });

  test("parseTokenBody() defaults token_type to Bearer", async () => {
    assert.equal(
      (await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60 }), NOW, context)).tokenType,
      "Bearer",
    );
    assert.equal(
      (await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60, token_type: "" }), NOW, context))
        .tokenType,
      "Bearer",
    );
    assert.equal(
      (await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 60, token_type: "pop" }), NOW, context))
        .tokenType,
      "pop",
    );
  });

  test("parseTokenBody() sets refreshOn to now plus refresh_in", async () => {
    const token = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 86400, refresh_in: 600 }),
      NOW,
      context,
    );
    assert.equal(token.refreshOn, NOW + 600_000);
    const short = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 3600, refresh_in: "1800" }),
      NOW,
      context,
    );
    assert.equal(short.refreshOn, NOW + 1_800_000);
  });

  test("parseTokenBody() refreshes a token living over 2 hours at half its remaining lifetime", async () => {
    const day = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 86400 }), NOW, context);
    assert.equal(day.refreshOn, NOW + 12 * HOUR);
    const justOver = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 7201 }), NOW, context);
    assert.equal(justOver.refreshOn, NOW + 3_600_500);
    // From an absolute expires_on: 3 hours remain, so half is 1.5 hours.
    const absolute = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_on: T_SECONDS }),
      T - 3 * HOUR,
      context,
    );
    assert.equal(absolute.refreshOn, T - 3 * HOUR + 1.5 * HOUR);
  });

  test("parseTokenBody() sets no refreshOn for a token living 2 hours or less", async () => {
    const twoHours = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 7200 }), NOW, context);
    assert.equal(twoHours.refreshOn, undefined);
    assert.ok(!("refreshOn" in twoHours));
    const hour = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: 3600 }), NOW, context);
    assert.ok(!("refreshOn" in hour));
  });

  test("parseTokenBody() keeps resource and the body's fields", async () => {
    const token = await parseTokenBody(
      JSON.stringify({ access_token: "t", expires_in: 60, resource: "https://vault.azure.net", client_id: "c" }),
      NOW,
      context,
    );
    assert.equal(token.resource, "https://vault.azure.net");
    assert.equal(token.fields.client_id, "c");
  });

  test("parseTokenBody() refuses malformed bodies with invalid_response", async () => {
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
      const error = await invalidResponse(() => parseTokenBody(body, NOW, context));
      assert.match(error.message, /AppService/);
    }
  });

  test("parseTokenBody() never puts the token of a truncated body in the message", async () => {
    const opaque = "opaque-token-value-1234";
    const bodies = [
      `{"access_token":"${JWT.slice(0, 60)}`,
      `{"access_token":"${JWT}","expires_in":36`,
      `{"token_type":"Bearer","access_token" : "${opaque}`,
      `[{"access_token":"${opaque}","expires_in":3600}]`,
      `<html><pre>{"access_token":"${opaque}"}</pre>`,
    ];
    for (const body of bodies) {
      const error = await invalidResponse(() => parseTokenBody(body, NOW, context));
      const shown = `${error.message}\n${JSON.stringify(error)}\n${String(error.cause)}`;
      assert.ok(!shown.includes(opaque), `token leaked for body ${body}: ${shown}`);
      assert.ok(!shown.includes(JWT.slice(0, 20)), `JWT leaked for body ${body}: ${shown}`);
    }
  });

  test("parseTokenBody() never puts the token in the message when expiry is missing", async () => {
    const error = await invalidResponse(() =>
      parseTokenBody(JSON.stringify({ access_token: JWT, expires_on: "soon" }), NOW, context)
    );
    assert.ok(!error.message.includes(JWT.slice(0, 20)));
    assert.ok(!JSON.stringify(error).includes(JWT.slice(0, 20)));
  });
});

describe("parseTokenBody() hostile expiries", () => {
  const YEAR_S = 365 * 24 * 3600;
  // Each would otherwise give NaN, an Invalid Date or a date in the year 58882, cached forever.
  const hostile: [string, Record<string, unknown>][] = [
    ["expires_on 1e20", { expires_on: 1e20 }],
    ["expires_on 1e300", { expires_on: 1e300 }],
    ["expires_on as a string of 14 digits", { expires_on: "17000000000000" }],
    ["expires_on as a string of 20 digits", { expires_on: "99999999999999999999" }],
    ["expires_on in milliseconds taken as seconds", { expires_on: NOW + 3_600_000 }],
    ["expires_on in milliseconds as a string", { expires_on: String(NOW + 3_600_000) }],
    ["expires_on a year and a second ahead", { expires_on: NOW / 1000 + YEAR_S + 1 }],
    ["expires_on in the year 9999", { expires_on: "9999-12-31T23:59:59Z" }],
    ["expires_in 1e20", { expires_in: 1e20 }],
    ["expires_in as a string of 14 digits", { expires_in: "17000000000000" }],
    ["expires_in a year and a second", { expires_in: YEAR_S + 1 }],
    ["expires_in 1e308 (Infinity once in milliseconds)", { expires_in: 1e308 }],
  ];
  for (const [name, fields] of hostile) {
    test(`parseTokenBody() refuses ${name} with invalid_response`, async () => {
      const error = await invalidResponse(() =>
        parseTokenBody(JSON.stringify({ access_token: "t", ...fields }), NOW, context)
      );
      assert.match(error.message, /more than a year ahead/);
    });
  }

  test("parseTokenBody() refuses an expires_in that JSON reads as Infinity (1e400)", async () => {
    const error = await invalidResponse(() => parseTokenBody('{"access_token":"t","expires_in":1e400}', NOW, context));
    assert.match(error.message, /expires_in/);
  });

  test("parseTokenBody() accepts an expiry of exactly a year, and a day-long one", async () => {
    const yearBody = JSON.stringify({ access_token: "t", expires_in: YEAR_S });
    assert.equal((await parseTokenBody(yearBody, NOW, context)).expiresOn, NOW + YEAR_S * 1000);
    const day = JSON.stringify({ access_token: "t", expires_on: NOW / 1000 + 86_400 });
    assert.equal((await parseTokenBody(day, NOW, context)).expiresOn, NOW + 86_400_000);
  });

  test('parseTokenBody() reads expires_in -100 and "-100" alike: a token already expired', async () => {
    for (const expiresIn of [-100, "-100", " -100 "]) {
      const parsed = await parseTokenBody(JSON.stringify({ access_token: "t", expires_in: expiresIn }), NOW, context);
      assert.equal(parsed.expiresOn, NOW - 100_000, JSON.stringify(expiresIn));
    }
  });

  test("parseTokenBody() ignores a refresh_in past the expiry, or not finite, and keeps the default rule", async () => {
    for (const refreshIn of [1e300, 7200, "1e5", -5]) {
      const body = JSON.stringify({ access_token: "t", expires_in: 3600, refresh_in: refreshIn });
      assert.equal((await parseTokenBody(body, NOW, context)).refreshOn, undefined, JSON.stringify(refreshIn));
    }
    const long = JSON.stringify({ access_token: "t", expires_in: 86_400, refresh_in: 1e300 });
    assert.equal((await parseTokenBody(long, NOW, context)).refreshOn, NOW + 43_200_000);
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

  // https://learn.microsoft.com/azure/service-fabric/how-to-managed-identity-service-fabric-app-code#error-handling
  test("parseErrorBody() reads the correlation ID nested in Service Fabric's error", () => {
    assert.deepEqual(
      parseErrorBody(
        '{"error":{"correlationId":"aaaa0000-bb11-2222-33cc-444444dddddd","code":"SecretHeaderNotFound",' +
          '"message":"Secret is not found in the request headers."}}',
      ),
      {
        error: "SecretHeaderNotFound",
        errorDescription: "Secret is not found in the request headers.",
        correlationId: "aaaa0000-bb11-2222-33cc-444444dddddd",
      },
    );
  });

  test("parseErrorBody() redacts a nested correlation ID that echoes a secret", () => {
    const said = parseErrorBody(
      JSON.stringify({ error: { correlationId: "id-sf-identity-header-secret", code: "c" } }),
      ["sf-identity-header-secret"],
    );
    assert.equal(said.correlationId, "id-[redacted]");
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
