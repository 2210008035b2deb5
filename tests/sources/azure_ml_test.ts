import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";

const ENDPOINT = "http://127.0.0.1:46808/msi/token";
// The requests every source sends alike are in tests/sources/table_test.ts; here, what only Azure ML does.
const ENV = { MSI_ENDPOINT: ENDPOINT, MSI_SECRET: "ml-secret-value" };

/** Asserts the Azure ML request line, exactly the two headers, and an empty body. */
function assertAzureMlRequest(seen: Seen, endpoint = ENDPOINT, secret = ENV.MSI_SECRET): void {
  assert.equal(seen.method, "GET");
  assert.equal(endpointOf(seen), endpoint);
  assert.deepEqual([...seen.headers], [["metadata", "true"], ["secret", secret]]);
  assert.equal(seen.body, "");
}

describe("Azure ML requests", () => {
  // DEFAULT_IDENTITY_CLIENT_ID names the system-assigned identity; a clientId option wins over it.
  const cases: [string, Record<string, string>, { clientId?: string }, string][] = [
    [
      "sends DEFAULT_IDENTITY_CLIENT_ID as clientid for the system-assigned identity",
      { DEFAULT_IDENTITY_CLIENT_ID: "default-client-id" },
      {},
      "default-client-id",
    ],
    ["sends an empty clientid when DEFAULT_IDENTITY_CLIENT_ID is empty", { DEFAULT_IDENTITY_CLIENT_ID: "" }, {}, ""],
    [
      "sends clientid for a client ID on Azure ML, over DEFAULT_IDENTITY_CLIENT_ID",
      { DEFAULT_IDENTITY_CLIENT_ID: "default-client-id" },
      { clientId: "11111111-2222-3333-4444-555555555555" },
      "11111111-2222-3333-4444-555555555555",
    ],
  ];
  for (const [name, env, options, clientid] of cases) {
    test(`acquireToken() ${name}${name.includes("Azure ML") ? "" : " on Azure ML"}`, async () => {
      const fake = recorder();
      const client = testClient({ env: { ...ENV, ...env }, fetch: fake.fetch, ...options });
      await client.acquireToken("https://vault.azure.net");
      const seen = onlyRequest(fake.seen);
      assertAzureMlRequest(seen);
      assert.deepEqual([...seen.url.searchParams], [
        ["api-version", "2017-09-01"],
        ["resource", "https://vault.azure.net"],
        ["clientid", clientid],
      ]);
    });
  }
});
