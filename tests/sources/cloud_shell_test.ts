import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError } from "../../mod.ts";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";

const ENDPOINT = "http://localhost:50342/oauth2/token";
const ENV = { MSI_ENDPOINT: ENDPOINT };
const REFUSAL = "Cloud Shell supports only the system-assigned identity";

/** Asserts the Cloud Shell request: a POST with exactly the two headers and the form body. */
function assertCloudShellRequest(seen: Seen, body: string, endpoint = ENDPOINT): void {
  assert.equal(seen.method, "POST");
  assert.equal(endpointOf(seen), endpoint);
  assert.deepEqual([...seen.headers], [
    ["content-type", "application/x-www-form-urlencoded"],
    ["metadata", "true"],
  ]);
  assert.equal(seen.body, body);
}

describe("Cloud Shell requests", () => {
  test("acquireToken() sends a POST with a form body to MSI_ENDPOINT on Cloud Shell", async () => {
    const redirects: string[] = [];
    const fake = recorder((request) => {
      redirects.push(request.redirect);
      return Response.json({ access_token: "token-value", expires_in: 3600 });
    });
    const client = testClient({ env: ENV, fetch: fake.fetch });
    assert.equal(client.source, "CloudShell");
    const result = await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertCloudShellRequest(seen, "resource=https%3A%2F%2Fvault.azure.net");
    assert.deepEqual([...seen.url.searchParams], []);
    assert.equal(seen.url.search, "");
    assert.deepEqual(redirects, ["manual"]);
    assert.equal(result.accessToken, "token-value");
    assert.equal(result.source, "CloudShell");
  });

  test("acquireToken() percent-encodes the resource in the Cloud Shell body", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    await client.acquireToken("https://management.azure.com/?a=b&c=d e");
    const seen = onlyRequest(fake.seen);
    assertCloudShellRequest(seen, "resource=https%3A%2F%2Fmanagement.azure.com%2F%3Fa%3Db%26c%3Dd+e");
    assert.deepEqual([...new URLSearchParams(seen.body)], [["resource", "https://management.azure.com/?a=b&c=d e"]]);
  });

  test("acquireToken() removes a trailing /.default from the resource on Cloud Shell", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    const result = await client.acquireToken("https://vault.azure.net/.default");
    assertCloudShellRequest(onlyRequest(fake.seen), "resource=https%3A%2F%2Fvault.azure.net");
    assert.equal(result.resource, "https://vault.azure.net");
  });

  test("acquireToken() removes only one trailing /.default on Cloud Shell", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    await client.acquireToken("https://x/.default/.default");
    await client.acquireToken("https://x/.default/data");
    assert.equal(fake.seen.length, 2);
    assertCloudShellRequest(fake.seen[0]!, "resource=https%3A%2F%2Fx%2F.default");
    assertCloudShellRequest(fake.seen[1]!, "resource=https%3A%2F%2Fx%2F.default%2Fdata");
  });

  test("acquireToken() keeps the query string of MSI_ENDPOINT on Cloud Shell", async () => {
    const fake = recorder();
    const client = testClient({ env: { MSI_ENDPOINT: `${ENDPOINT}?tenant=abc` }, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    const seen = onlyRequest(fake.seen);
    assertCloudShellRequest(seen, "resource=https%3A%2F%2Fvault.azure.net");
    assert.deepEqual([...seen.url.searchParams], [["tenant", "abc"]]);
  });

  test("acquireToken() keeps the MSI_ENDPOINT of construction on every Cloud Shell request", async () => {
    const fake = recorder();
    const env: Record<string, string> = { ...ENV };
    const client = testClient({ env, fetch: fake.fetch });
    await client.acquireToken("https://vault.azure.net");
    env.MSI_ENDPOINT = "http://localhost:50999/other/token";
    await client.acquireToken("https://vault.azure.net", { forceRefresh: true });
    assert.equal(fake.seen.length, 2);
    assertCloudShellRequest(fake.seen[0]!, "resource=https%3A%2F%2Fvault.azure.net");
    assertCloudShellRequest(fake.seen[1]!, "resource=https%3A%2F%2Fvault.azure.net");
  });

  for (
    const [kind, value] of [
      ["clientId", "11111111-2222-3333-4444-555555555555"],
      ["objectId", "99999999-8888-7777-6666-555555555555"],
      [
        "resourceId",
        "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
      ],
    ] as const
  ) {
    test(`new ManagedIdentityClient() refuses a user-assigned ${kind} on Cloud Shell`, () => {
      const fake = recorder();
      assert.throws(
        () => testClient({ env: ENV, fetch: fake.fetch, [kind]: value }),
        (error: unknown) => {
          assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
          assert.equal(error.code, "unsupported_identity");
          assert.equal(error.name, "ManagedIdentityError");
          assert.equal(error.source, "CloudShell");
          assert.ok(error.message.includes(REFUSAL), `message lacks the refusal: ${error.message}`);
          return true;
        },
      );
      assert.equal(fake.seen.length, 0);
    });
  }
});
