/**
 * The request table: for each source that sends one request per token, "identity -> the exact
 * request; answer -> the token", checked by one loop. A new source of this kind is one row.
 * What only one source does stays in its own file (tests/sources/<source>_test.ts).
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ManagedIdentityError, type Source } from "../../mod.ts";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";
import { SKU, VERSION } from "../../src/version.ts";

const VAULT = "https://vault.azure.net";
const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
const OBJECT_ID = "99999999-8888-7777-6666-555555555555";
const RESOURCE_ID =
  "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

type Kind = "clientId" | "objectId" | "resourceId";
type Pairs = [string, string][];
const IDENTITY: Readonly<Record<Kind, string>> = { clientId: CLIENT_ID, objectId: OBJECT_ID, resourceId: RESOURCE_ID };

interface Row {
  source: Source;
  label: string;
  env: Record<string, string>;
  /** The endpoint every request goes to: origin and path, no query. */
  endpoint: string;
  method: "GET" | "POST";
  /** Asserts exactly the headers a request carries; `secret` is the one read from the environment now. */
  headers(headers: Headers, secret?: string): void;
  /** What names the resource (and the identity) in the query, and the exact body. */
  names(resource: string, identity?: [string, string]): { query: Pairs; body: string };
  /** The query parameter each user-assigned kind the source accepts is sent as. */
  accepts: Partial<Record<Kind, string>>;
  /** The kinds the source refuses at construction, with what the refusal must say. */
  refuses?: { kinds: Kind[]; says: (kind: Kind) => (string | RegExp)[] };
  /** The variable of the endpoint, whose query string is kept. */
  endpointVar?: string;
  /** Changes the environment after the first request; returns the secret the next request must read. */
  rotate(env: Record<string, string>): string | undefined;
}

const APP_SERVICE_HEADER = "identity-header-value";
const ML_SECRET = "ml-secret-value";
const ML_REFUSAL = "Azure ML supports a user-assigned identity by client ID only";
const SF_SECRET = "sf-identity-header-secret";
const CLOUD_SHELL_REFUSAL = "Cloud Shell supports only the system-assigned identity";

/** Asserts the IMDS headers: exactly these four, with a fresh UUID v4 request ID. */
function imdsHeaders(headers: Headers): void {
  assert.deepEqual([...headers.keys()].sort(), ["metadata", "x-client-sku", "x-client-ver", "x-ms-client-request-id"]);
  assert.equal(headers.get("Metadata"), "true");
  assert.equal(headers.get("x-client-SKU"), SKU);
  assert.equal(headers.get("x-client-Ver"), VERSION);
  assert.match(headers.get("x-ms-client-request-id") ?? "", UUID_V4);
}

/** `api-version` and `resource` in the query, then the identity; an empty body. */
const queried = (apiVersion: string, last?: [string, string]) => (resource: string, identity?: [string, string]) => ({
  query: [
    ["api-version", apiVersion],
    ["resource", resource],
    ...(identity ? [identity] : last ? [last] : []),
  ] as Pairs,
  body: "",
});

const ROWS: Row[] = [
  {
    source: "AppService",
    label: "App Service",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: APP_SERVICE_HEADER },
    endpoint: "http://127.0.0.1:41741/msi/token",
    method: "GET",
    headers: (headers, secret = APP_SERVICE_HEADER) => assert.deepEqual([...headers], [["x-identity-header", secret]]),
    names: queried("2019-08-01"),
    accepts: { clientId: "client_id", objectId: "object_id", resourceId: "mi_res_id" },
    endpointVar: "IDENTITY_ENDPOINT",
    // The cache key names the endpoint read at construction: no token of another endpoint may be stored under it.
    rotate: (env) => {
      env.IDENTITY_ENDPOINT = "http://127.0.0.1:42000/other/token";
      return (env.IDENTITY_HEADER = "rotated-header-value");
    },
  },
  {
    source: "AzureML",
    label: "Azure ML",
    env: { MSI_ENDPOINT: "http://127.0.0.1:46808/msi/token", MSI_SECRET: ML_SECRET },
    endpoint: "http://127.0.0.1:46808/msi/token",
    method: "GET",
    headers: (headers, secret = ML_SECRET) =>
      assert.deepEqual([...headers], [["metadata", "true"], ["secret", secret]]),
    // The system-assigned identity is an empty clientid.
    names: queried("2017-09-01", ["clientid", ""]),
    accepts: {},
    refuses: { kinds: ["objectId", "resourceId"], says: () => [ML_REFUSAL] },
    endpointVar: "MSI_ENDPOINT",
    // The cache key names the endpoint and identity read at construction.
    rotate: (env) => {
      env.MSI_ENDPOINT = "http://127.0.0.1:46999/other/token";
      env.DEFAULT_IDENTITY_CLIENT_ID = "00000000-0000-0000-0000-00000000dead";
      return (env.MSI_SECRET = "rotated-secret-value");
    },
  },
  {
    source: "CloudShell",
    label: "Cloud Shell",
    env: { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" },
    endpoint: "http://localhost:50342/oauth2/token",
    method: "POST",
    headers: (headers) =>
      assert.deepEqual([...headers], [["content-type", "application/x-www-form-urlencoded"], ["metadata", "true"]]),
    names: (resource) => ({ query: [], body: new URLSearchParams({ resource }).toString() }),
    accepts: {},
    refuses: { kinds: ["clientId", "objectId", "resourceId"], says: () => [CLOUD_SHELL_REFUSAL] },
    endpointVar: "MSI_ENDPOINT",
    rotate: (env) => {
      env.MSI_ENDPOINT = "http://localhost:50999/other/token";
      return undefined;
    },
  },
  {
    source: "DefaultToIMDS",
    label: "IMDS",
    env: {},
    endpoint: "http://169.254.169.254/metadata/identity/oauth2/token",
    method: "GET",
    headers: imdsHeaders,
    names: queried("2018-02-01"),
    accepts: { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" },
    rotate: (env) => {
      env.AZURE_POD_IDENTITY_AUTHORITY_HOST = "http://10.0.0.7:2579";
      return undefined;
    },
  },
  {
    source: "ServiceFabric",
    label: "Service Fabric",
    env: {
      IDENTITY_ENDPOINT: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
      IDENTITY_HEADER: SF_SECRET,
      IDENTITY_SERVER_THUMBPRINT: "AB".repeat(20),
    },
    endpoint: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
    method: "GET",
    headers: (headers, secret = SF_SECRET) =>
      assert.deepEqual([...headers], [["accept", "application/json"], ["secret", secret]]),
    // The stable version MSAL .NET sends since its issue #5769, not 2019-07-01-preview.
    names: queried("2020-05-01"),
    // An object ID is sent as principalId, and nothing else names it.
    accepts: { objectId: "principalId" },
    refuses: {
      kinds: ["clientId", "resourceId"],
      says: (kind) => [new RegExp(`by ${kind} `), /use objectId/, /principalId/],
    },
    rotate: (env) => {
      env.IDENTITY_ENDPOINT = "https://127.0.0.1:9999/other";
      return undefined;
    },
  },
];

/** Asserts one request exactly: method, endpoint, headers, query (in order, and as sent) and body. */
function assertRequest(
  row: Row,
  seen: Seen,
  expected: { query: Pairs; body: string },
  secret?: string,
  endpoint = row.endpoint,
): void {
  assert.equal(seen.method, row.method);
  assert.equal(endpointOf(seen), endpoint);
  row.headers(seen.headers, secret);
  assert.deepEqual([...seen.url.searchParams], expected.query);
  assert.equal(seen.url.search, expected.query.length ? `?${new URLSearchParams(expected.query)}` : "");
  assert.equal(seen.body, expected.body);
}

for (const row of ROWS) {
  const { label } = row;

  describe(`${label} requests`, () => {
    test(`acquireToken() sends the exact ${row.method} for the system-assigned identity on ${label}`, async () => {
      const redirects: string[] = [];
      const fake = recorder((request) => {
        redirects.push(request.redirect);
        return Response.json({ access_token: "token-value", expires_in: 3600 });
      });
      const client = testClient({ env: row.env, fetch: fake.fetch });
      assert.equal(client.source, row.source);
      const result = await client.acquireToken(VAULT);
      assertRequest(row, onlyRequest(fake.seen), row.names(VAULT));
      assert.deepEqual(redirects, ["manual"]);
      assert.equal(result.accessToken, "token-value");
      assert.equal(result.source, row.source);
    });

    for (const [kind, parameter] of Object.entries(row.accepts) as [Kind, string][]) {
      test(`acquireToken() sends ${parameter} for the ${kind} option on ${label}`, async () => {
        const fake = recorder();
        const client = testClient({ env: row.env, fetch: fake.fetch, [kind]: IDENTITY[kind] });
        await client.acquireToken(VAULT);
        assertRequest(row, onlyRequest(fake.seen), row.names(VAULT, [parameter, IDENTITY[kind]]));
      });
    }

    test(`acquireToken() removes a trailing /.default from the resource on ${label}`, async () => {
      const fake = recorder();
      const client = testClient({ env: row.env, fetch: fake.fetch });
      const result = await client.acquireToken(`${VAULT}/.default`);
      assertRequest(row, onlyRequest(fake.seen), row.names(VAULT));
      assert.equal(result.resource, VAULT);
    });

    test(`acquireToken() removes only one trailing /.default on ${label}`, async () => {
      const fake = recorder();
      const client = testClient({ env: row.env, fetch: fake.fetch });
      await client.acquireToken("https://x/.default/.default");
      await client.acquireToken("https://x/.default/data");
      assert.equal(fake.seen.length, 2);
      assertRequest(row, fake.seen[0]!, row.names("https://x/.default"));
      assertRequest(row, fake.seen[1]!, row.names("https://x/.default/data"));
    });

    if (row.endpointVar) {
      const variable = row.endpointVar;
      test(`acquireToken() keeps the query string of ${variable} on ${label}`, async () => {
        const fake = recorder();
        const env = { ...row.env, [variable]: `${row.endpoint}?code=abc&region=west` };
        const clientId = row.accepts.clientId;
        const client = testClient({ env, fetch: fake.fetch, ...(clientId ? { clientId: "client-1" } : {}) });
        await client.acquireToken(VAULT);
        const named = row.names(VAULT, clientId ? [clientId, "client-1"] : undefined);
        assertRequest(row, onlyRequest(fake.seen), {
          ...named,
          query: [["code", "abc"], ["region", "west"], ...named.query],
        });
      });
    }

    test(`acquireToken() keeps the endpoint and identity of construction, and reads any secret on each request, on ${label}`, async () => {
      const fake = recorder();
      const env: Record<string, string> = { ...row.env };
      const client = testClient({ env, fetch: fake.fetch });
      await client.acquireToken(VAULT);
      const secret = row.rotate(env);
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(fake.seen.length, 2);
      assertRequest(row, fake.seen[0]!, row.names(VAULT));
      assertRequest(row, fake.seen[1]!, row.names(VAULT), secret);
    });

    for (const kind of row.refuses?.kinds ?? []) {
      test(`new ManagedIdentityClient() refuses a user-assigned ${kind} on ${label}`, () => {
        const fake = recorder();
        assert.throws(
          () => testClient({ env: row.env, fetch: fake.fetch, [kind]: IDENTITY[kind] }),
          (error: unknown) => {
            assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
            assert.equal(error.code, "unsupported_identity");
            assert.equal(error.name, "ManagedIdentityError");
            assert.equal(error.source, row.source);
            for (const words of row.refuses!.says(kind)) {
              if (typeof words === "string") {
                assert.ok(error.message.includes(words), `message lacks the refusal: ${error.message}`);
              } else assert.match(error.message, words);
            }
            return true;
          },
        );
        assert.equal(fake.seen.length, 0);
      });
    }
  });
}
