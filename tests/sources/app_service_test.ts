import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { assertNotShown, rejectsWith } from "../helpers/checks.ts";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";

const ENDPOINT = "http://127.0.0.1:41741/msi/token";
const ENV = { IDENTITY_ENDPOINT: ENDPOINT, IDENTITY_HEADER: "identity-header-value" };
const RESOURCE_ID =
  "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";

/** Asserts the App Service request line, headers and empty body; the query is checked by the caller. */
function assertAppServiceRequest(seen: Seen, endpoint = ENDPOINT, header = ENV.IDENTITY_HEADER): void {
  assert.equal(seen.method, "GET");
  assert.equal(endpointOf(seen), endpoint);
  assert.deepEqual([...seen.headers], [["x-identity-header", header]]);
  assert.equal(seen.body, "");
}

describe("App Service requests", () => {
  test("acquireToken() sends a GET to IDENTITY_ENDPOINT for the system-assigned identity on App Service", async () => {
    const redirects: string[] = [];
    const fake = recorder((request) => {
      redirects.push(request.redirect);
      return Response.json({ access_token: "token-value", expires_in: 3600 });
    });
    const client = testClient({ env: ENV, fetch: fake.fetch });
    assert.equal(client.source, "AppService");
    const result = await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAppServiceRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
    ]);
    assert.equal(seen.url.search, "?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net");
    assert.deepEqual(redirects, ["manual"]);
    assert.equal(result.accessToken, "token-value");
    assert.equal(result.source, "AppService");
  });

  test("acquireToken() sends client_id for a client ID on App Service", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch, clientId: "11111111-2222-3333-4444-555555555555" });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAppServiceRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
      ["client_id", "11111111-2222-3333-4444-555555555555"],
    ]);
  });

  test("acquireToken() sends object_id for an object ID on App Service", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch, objectId: "99999999-8888-7777-6666-555555555555" });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAppServiceRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
      ["object_id", "99999999-8888-7777-6666-555555555555"],
    ]);
  });

  test("acquireToken() sends mi_res_id for a resource ID on App Service", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch, resourceId: RESOURCE_ID });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAppServiceRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
      ["mi_res_id", RESOURCE_ID],
    ]);
    assert.equal(
      seen.url.search,
      "?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net&mi_res_id=" + encodeURIComponent(RESOURCE_ID),
    );
  });

  test("acquireToken() removes a trailing /.default from the resource on App Service", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    const result = await client.acquireToken("https://vault.azure.net/.default");
    const seen = onlyRequest(fake.seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
    ]);
    assert.equal(result.resource, "https://vault.azure.net");
  });

  test("acquireToken() removes only one trailing /.default on App Service", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    await client.acquireToken("https://x/.default/.default");
    await client.acquireToken("https://x/.default/data");
    assert.equal(fake.seen.length, 2);
    assert.deepEqual([...fake.seen[0]!.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://x/.default"],
    ]);
    assert.deepEqual([...fake.seen[1]!.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://x/.default/data"],
    ]);
  });

  test("acquireToken() keeps the query string of IDENTITY_ENDPOINT on App Service", async () => {
    const fake = recorder();
    const env = { ...ENV, IDENTITY_ENDPOINT: `${ENDPOINT}?code=abc&region=west` };
    const client = testClient({ env, fetch: fake.fetch, clientId: "client-1" });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAppServiceRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["code", "abc"],
      ["region", "west"],
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
      ["client_id", "client-1"],
    ]);
  });

  test("acquireToken() keeps the IDENTITY_ENDPOINT of construction and reads IDENTITY_HEADER on each App Service request", async () => {
    const fake = recorder();
    const env: Record<string, string> = { ...ENV };
    const client = testClient({ env, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    env.IDENTITY_ENDPOINT = "http://127.0.0.1:42000/other/token";
    env.IDENTITY_HEADER = "rotated-header-value";
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assertAppServiceRequest(fake.seen[0]!);
    // The cache key names the endpoint read at construction: no token of another endpoint may be stored under it.
    assertAppServiceRequest(fake.seen[1]!, undefined, "rotated-header-value");
    assert.deepEqual([...fake.seen[1]!.url.searchParams], [
      ["api-version", "2019-08-01"],
      ["resource", "https://vault.azure.net"],
    ]);
  });
});

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
