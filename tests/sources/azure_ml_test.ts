import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError } from "../../mod.ts";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";

const ENDPOINT = "http://127.0.0.1:46808/msi/token";
const ENV = { MSI_ENDPOINT: ENDPOINT, MSI_SECRET: "ml-secret-value" };
const REFUSAL = "Azure ML supports a user-assigned identity by client ID only";

/** Asserts the Azure ML request line, exactly the two headers, and an empty body. */
function assertAzureMlRequest(seen: Seen, endpoint = ENDPOINT, secret = ENV.MSI_SECRET): void {
  assert.equal(seen.method, "GET");
  assert.equal(endpointOf(seen), endpoint);
  assert.deepEqual([...seen.headers], [["metadata", "true"], ["secret", secret]]);
  assert.equal(seen.body, "");
}

describe("Azure ML requests", () => {
  test("acquireToken() sends an empty clientid for the system-assigned identity on Azure ML", async () => {
    const redirects: string[] = [];
    const fake = recorder((request) => {
      redirects.push(request.redirect);
      return Response.json({ access_token: "token-value", expires_in: 3600 });
    });
    const client = testClient({ env: ENV, fetch: fake.fetch });
    assert.equal(client.source, "AzureML");
    const result = await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAzureMlRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", ""],
    ]);
    assert.equal(seen.url.search, "?api-version=2017-09-01&resource=https%3A%2F%2Fvault.azure.net&clientid=");
    assert.deepEqual(redirects, ["manual"]);
    assert.equal(result.accessToken, "token-value");
    assert.equal(result.source, "AzureML");
  });

  test("acquireToken() sends DEFAULT_IDENTITY_CLIENT_ID as clientid for the system-assigned identity on Azure ML", async () => {
    const fake = recorder();
    const client = testClient({ env: { ...ENV, DEFAULT_IDENTITY_CLIENT_ID: "default-client-id" }, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAzureMlRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", "default-client-id"],
    ]);
  });

  test("acquireToken() sends an empty clientid when DEFAULT_IDENTITY_CLIENT_ID is empty on Azure ML", async () => {
    const fake = recorder();
    const client = testClient({ env: { ...ENV, DEFAULT_IDENTITY_CLIENT_ID: "" }, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAzureMlRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", ""],
    ]);
  });

  test("acquireToken() sends clientid for a client ID on Azure ML, over DEFAULT_IDENTITY_CLIENT_ID", async () => {
    const fake = recorder();
    const client = testClient({
      env: { ...ENV, DEFAULT_IDENTITY_CLIENT_ID: "default-client-id" },
      fetch: fake.fetch,
      clientId: "11111111-2222-3333-4444-555555555555",
    });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAzureMlRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", "11111111-2222-3333-4444-555555555555"],
    ]);
  });

  test("acquireToken() removes a trailing /.default from the resource on Azure ML", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    const result = await client.acquireToken("https://vault.azure.net/.default");
    const seen = onlyRequest(fake.seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", ""],
    ]);
    assert.equal(result.resource, "https://vault.azure.net");
  });

  test("acquireToken() removes only one trailing /.default on Azure ML", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    await client.acquireToken("https://x/.default/.default");
    await client.acquireToken("https://x/.default/data");
    assert.equal(fake.seen.length, 2);
    assert.deepEqual([...fake.seen[0]!.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://x/.default"],
      ["clientid", ""],
    ]);
    assert.deepEqual([...fake.seen[1]!.url.searchParams], [
      ["api-version", "2017-09-01"],
      ["resource", "https://x/.default/data"],
      ["clientid", ""],
    ]);
  });

  test("acquireToken() keeps the query string of MSI_ENDPOINT on Azure ML", async () => {
    const fake = recorder();
    const client = testClient({ env: { ...ENV, MSI_ENDPOINT: `${ENDPOINT}?node=n1` }, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertAzureMlRequest(seen);
    assert.deepEqual([...seen.url.searchParams], [
      ["node", "n1"],
      ["api-version", "2017-09-01"],
      ["resource", "https://vault.azure.net"],
      ["clientid", ""],
    ]);
  });

  test("acquireToken() keeps the MSI_ENDPOINT and DEFAULT_IDENTITY_CLIENT_ID of construction, and reads MSI_SECRET on each Azure ML request", async () => {
    const fake = recorder();
    const env: Record<string, string> = { ...ENV };
    const client = testClient({ env, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    env.MSI_ENDPOINT = "http://127.0.0.1:46999/other/token";
    env.MSI_SECRET = "rotated-secret-value";
    env.DEFAULT_IDENTITY_CLIENT_ID = "00000000-0000-0000-0000-00000000dead";
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assertAzureMlRequest(fake.seen[0]!);
    // The cache key names the endpoint and identity read at construction.
    assertAzureMlRequest(fake.seen[1]!, undefined, "rotated-secret-value");
    assert.equal(fake.seen[1]!.url.searchParams.get("clientid"), fake.seen[0]!.url.searchParams.get("clientid"));
  });

  for (
    const [kind, value] of [
      ["objectId", "99999999-8888-7777-6666-555555555555"],
      [
        "resourceId",
        "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
      ],
    ] as const
  ) {
    test(`new ManagedIdentityClient() refuses a user-assigned ${kind} on Azure ML`, () => {
      const fake = recorder();
      assert.throws(
        () => testClient({ env: ENV, fetch: fake.fetch, [kind]: value }),
        (error: unknown) => {
          assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
          assert.equal(error.code, "unsupported_identity");
          assert.equal(error.name, "ManagedIdentityError");
          assert.equal(error.source, "AzureML");
          assert.ok(error.message.includes(REFUSAL), `message lacks the refusal: ${error.message}`);
          return true;
        },
      );
      assert.equal(fake.seen.length, 0);
    });
  }
});
