import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNotShown, rejectsWith } from "../helpers/checks.ts";
import { testClient } from "../helpers/fake.ts";

// The requests every source sends alike are in tests/sources/table_test.ts; here, what only App Service does.
const ENV = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "identity-header-value" };
// App Service and Functions answer errors with an X-CORRELATION-ID header, often with an empty
// body (as recorded in azure-sdk-for-net #30467 and #32786, Azure-Functions #2392).
describe("App Service error headers", () => {
  const CORRELATION = "7f3c2a5e-0000-4000-8000-0000000000c1";
  const answered = (body: string | null, headers: Record<string, string>, status = 400) =>
    testClient({ env: ENV, fetch: () => new Response(body, { status, headers }), retry: false });

  test("acquireToken() keeps the X-CORRELATION-ID header of an App Service error with an empty body", async () => {
    const error = await rejectsWith(
      answered(null, { "X-CORRELATION-ID": CORRELATION }, 403).acquireToken("https://vault.azure.net"),
      "request_failed",
      "AppService",
    );
    assert.equal(error.status, 403);
    assert.equal(error.correlationId, CORRELATION);
  });

  test("acquireToken() prefers the body's correlationId to the X-CORRELATION-ID header on App Service", async () => {
    const body = JSON.stringify({ statusCode: 400, message: "bad", correlationId: "from-the-body" });
    const error = await rejectsWith(
      answered(body, { "X-CORRELATION-ID": CORRELATION }).acquireToken("https://vault.azure.net"),
      "request_failed",
    );
    assert.equal(error.correlationId, "from-the-body");
  });

  test("acquireToken() redacts an X-CORRELATION-ID header that echoes the identity header on App Service", async () => {
    const client = testClient({
      env: ENV,
      fetch: (request) =>
        new Response(null, {
          status: 400,
          headers: { "X-CORRELATION-ID": `corr-${request.headers.get("x-identity-header")}` },
        }),
      retry: false,
    });
    const error = await rejectsWith(client.acquireToken("https://vault.azure.net"), "request_failed");
    assert.equal(error.correlationId, "corr-[redacted]");
    assertNotShown(error, ENV.IDENTITY_HEADER);
  });
});
