import { test } from "node:test";
import assert from "node:assert/strict";
import { loopback, recorder, sendJson, testClient } from "./helpers/fake.ts";

test("acquireToken() gets a token from a loopback App Service endpoint", async () => {
  const server = await loopback((_req, res) => sendJson(res, 200, { access_token: "abc", expires_in: 3600 }));
  try {
    const client = testClient({ env: { IDENTITY_ENDPOINT: `${server.url}/token`, IDENTITY_HEADER: "h" } });
    const result = await client.acquireToken("https://vault.azure.net");
    assert.equal(result.accessToken, "abc");
    assert.equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

test("recorder() records the request", async () => {
  const fake = recorder();
  const client = testClient({ env: {}, fetch: fake.fetch });
  await client.acquireToken("https://vault.azure.net");
  assert.equal(fake.seen.length, 1);
  assert.equal(client.source, "DefaultToIMDS");
});
