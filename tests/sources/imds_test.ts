import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError } from "../../mod.ts";
import { endpointOf, onlyRequest, recorder, testClient } from "../helpers/fake.ts";
import { SKU, VERSION } from "../../src/version.ts";

// The requests every source sends alike are in tests/sources/table_test.ts; here, what only IMDS does.
const IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

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
