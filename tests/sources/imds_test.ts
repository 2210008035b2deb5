import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError } from "../../mod.ts";
import { endpointOf, onlyRequest, recorder, testClient } from "../helpers/fake.ts";
import { SKU, VERSION } from "../../src/version.ts";

const IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const RESOURCE_ID =
  "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";

/** Asserts the IMDS headers: exactly these four, with a fresh UUID v4 request ID. Returns that ID. */
function assertImdsHeaders(headers: Headers): string {
  assert.deepEqual([...headers.keys()].sort(), ["metadata", "x-client-sku", "x-client-ver", "x-ms-client-request-id"]);
  assert.equal(headers.get("Metadata"), "true");
  assert.equal(headers.get("x-client-SKU"), SKU);
  assert.equal(headers.get("x-client-Ver"), VERSION);
  const requestId = headers.get("x-ms-client-request-id") ?? "";
  assert.match(requestId, UUID_V4);
  return requestId;
}

describe("IMDS requests", () => {
  test("acquireToken() sends a GET to the IMDS token URL for the system-assigned identity", async () => {
    const redirects: string[] = [];
    const fake = recorder((request) => {
      redirects.push(request.redirect);
      return Response.json({ access_token: "token-value", expires_in: 3600 });
    });
    const client = testClient({ env: {}, fetch: fake.fetch });
    assert.equal(client.source, "DefaultToIMDS");
    const result = await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assert.equal(seen.method, "GET");
    assert.equal(endpointOf(seen), IMDS_TOKEN_URL);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://vault.azure.net"],
    ]);
    assert.equal(seen.url.search, "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
    assertImdsHeaders(seen.headers);
    assert.equal(seen.body, "");
    assert.deepEqual(redirects, ["manual"]);
    assert.equal(result.accessToken, "token-value");
    assert.equal(result.source, "DefaultToIMDS");
  });

  test("acquireToken() sends a different x-ms-client-request-id on each IMDS request", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    const first = assertImdsHeaders(fake.seen[0]!.headers);
    const second = assertImdsHeaders(fake.seen[1]!.headers);
    assert.notEqual(first, second);
  });

  test("acquireToken() sends client_id for a client ID on IMDS", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch, clientId: "11111111-2222-3333-4444-555555555555" });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assert.equal(seen.method, "GET");
    assert.equal(endpointOf(seen), IMDS_TOKEN_URL);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://vault.azure.net"],
      ["client_id", "11111111-2222-3333-4444-555555555555"],
    ]);
    assertImdsHeaders(seen.headers);
    assert.equal(seen.body, "");
  });

  test("acquireToken() sends object_id for an object ID on IMDS", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch, objectId: "99999999-8888-7777-6666-555555555555" });
    await client.acquireToken("https://storage.azure.com");
    const seen = onlyRequest(fake.seen);
    assert.equal(endpointOf(seen), IMDS_TOKEN_URL);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://storage.azure.com"],
      ["object_id", "99999999-8888-7777-6666-555555555555"],
    ]);
    assertImdsHeaders(seen.headers);
    assert.equal(seen.body, "");
  });

  test("acquireToken() sends msi_res_id for a resource ID on IMDS", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch, resourceId: RESOURCE_ID });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assert.equal(endpointOf(seen), IMDS_TOKEN_URL);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://vault.azure.net"],
      ["msi_res_id", RESOURCE_ID],
    ]);
    assert.equal(
      seen.url.search,
      "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&msi_res_id=" + encodeURIComponent(RESOURCE_ID),
    );
    assertImdsHeaders(seen.headers);
    assert.equal(seen.body, "");
  });

  test("acquireToken() removes a trailing /.default from the resource on IMDS", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch });
    const result = await client.acquireToken("https://vault.azure.net/.default");
    const seen = onlyRequest(fake.seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://vault.azure.net"],
    ]);
    assert.equal(result.resource, "https://vault.azure.net");
  });

  test("acquireToken() removes only one trailing /.default on IMDS", async () => {
    const fake = recorder();
    const client = testClient({ env: {}, fetch: fake.fetch });
    await client.acquireToken("https://x/.default/.default");
    await client.acquireToken("https://x/.default/data");
    assert.equal(fake.seen.length, 2);
    assert.deepEqual([...fake.seen[0]!.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://x/.default"],
    ]);
    assert.deepEqual([...fake.seen[1]!.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://x/.default/data"],
    ]);
  });

  test("acquireToken() uses AZURE_POD_IDENTITY_AUTHORITY_HOST as the IMDS host", async () => {
    const fake = recorder();
    const client = testClient({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://10.0.0.5:2579" },
      fetch: fake.fetch,
    });
    assert.equal(client.source, "DefaultToIMDS");
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assert.equal(seen.method, "GET");
    assert.equal(endpointOf(seen), "http://10.0.0.5:2579/metadata/identity/oauth2/token");
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2018-02-01"],
      ["resource", "https://vault.azure.net"],
    ]);
    assertImdsHeaders(seen.headers);
    assert.equal(seen.body, "");
  });

  test("acquireToken() does not double the slash when AZURE_POD_IDENTITY_AUTHORITY_HOST ends in /", async () => {
    const fake = recorder();
    const client = testClient({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://10.0.0.5:2579/" },
      fetch: fake.fetch,
    });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assert.equal(endpointOf(seen), "http://10.0.0.5:2579/metadata/identity/oauth2/token");
    assert.equal(seen.url.pathname, "/metadata/identity/oauth2/token");
    assert.ok(!seen.url.href.slice("http://".length).includes("//"), `found "//" in ${seen.url.href}`);
  });

  test("acquireToken() uses the default IMDS host when AZURE_POD_IDENTITY_AUTHORITY_HOST is empty", async () => {
    const fake = recorder();
    const client = testClient({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "" }, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    assert.equal(endpointOf(onlyRequest(fake.seen)), IMDS_TOKEN_URL);
  });

  test("acquireToken() keeps the AZURE_POD_IDENTITY_AUTHORITY_HOST of construction on every IMDS request", async () => {
    const fake = recorder();
    const env: Record<string, string> = {};
    const client = testClient({ env, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    env.AZURE_POD_IDENTITY_AUTHORITY_HOST = "http://10.0.0.7:2579";
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assert.equal(endpointOf(fake.seen[0]!), IMDS_TOKEN_URL);
    assert.equal(endpointOf(fake.seen[1]!), IMDS_TOKEN_URL);
  });

  // Like every source's endpoint variable, AZURE_POD_IDENTITY_AUTHORITY_HOST is checked when
  // the client is created (tests/endpoint_test.ts has the whole rule), not at the first request.
  for (const host of ["not a url", "ftp://10.0.0.5"]) {
    test(`new ManagedIdentityClient() refuses AZURE_POD_IDENTITY_AUTHORITY_HOST ${JSON.stringify(host)} with invalid_configuration`, () => {
      const fake = recorder();
      assert.throws(
        () => testClient({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: host }, fetch: fake.fetch }),
        (error: unknown) => {
          assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
          assert.equal(error.code, "invalid_configuration");
          assert.equal(error.source, "DefaultToIMDS");
          assert.match(error.message, /AZURE_POD_IDENTITY_AUTHORITY_HOST/);
          return true;
        },
      );
      assert.equal(fake.seen.length, 0);
    });
  }
});
