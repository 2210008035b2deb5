import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";

const ENDPOINT = "http://localhost:50342/oauth2/token";
// The requests every source sends alike are in tests/sources/table_test.ts; here, what only Cloud Shell does.
const ENV = { MSI_ENDPOINT: ENDPOINT };

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
  test("acquireToken() percent-encodes the resource in the Cloud Shell body", async () => {
    const fake = recorder();
    const client = testClient({ env: ENV, fetch: fake.fetch });
    await client.acquireToken("https://management.azure.com/?a=b&c=d e");
    const seen = onlyRequest(fake.seen);
    assertCloudShellRequest(seen, "resource=https%3A%2F%2Fmanagement.azure.com%2F%3Fa%3Db%26c%3Dd+e");
    assert.deepEqual([...new URLSearchParams(seen.body)], [["resource", "https://management.azure.com/?a=b&c=d e"]]);
  });
});
