/**
 * Workload identity (AKS, or any federated token file; docs/sources.md): the exact token request
 * to Microsoft Entra ID, construction-time refusals, and which identity AZURE_CLIENT_ID names. The
 * token file is in tests/sources/workload_identity_file_test.ts, Entra's answers, retries, the
 * cache and redaction in tests/sources/workload_identity_entra_test.ts. Every endpoint is a fake
 * handler given as the client's `fetch`, so nothing leaves the process, even for the default
 * https://login.microsoftonline.com.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ManagedIdentityClientOptions, ManagedIdentityError, TokenCache } from "../../mod.ts";
import { onlyRequest, recorder, testClient } from "../helpers/fake.ts";
import { renderings } from "../helpers/leaks.ts";
import {
  ASSERTION,
  assertTokenRequest,
  constructionError,
  ENTRA,
  expectedForm,
  form,
  OTHER_CLIENT_ID,
  TENANT,
  token,
  TOKEN_URL,
  VAULT,
  wiClient,
  wiEnv,
  withTokenFile,
} from "../helpers/workload_identity.ts";

describe("workload identity requests", () => {
  test("acquireToken() POSTs the client assertion from AZURE_FEDERATED_TOKEN_FILE to Entra's token endpoint", async () => {
    await withTokenFile(async ({ path }) => {
      const redirects: string[] = [];
      const fake = recorder((request) => {
        redirects.push(request.redirect);
        return token();
      });
      const { client, files } = wiClient(path, { fetch: fake.fetch });
      assert.equal(client.source, "WorkloadIdentity");
      const result = await client.acquireToken(VAULT);
      const seen = onlyRequest(fake.seen);
      assertTokenRequest(seen);
      assert.deepEqual(form(seen), expectedForm());
      assert.equal(
        seen.body,
        "client_id=11111111-2222-3333-4444-555555555555&scope=https%3A%2F%2Fvault.azure.net%2F.default" +
          "&grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type" +
          `%3Ajwt-bearer&client_assertion=${ASSERTION}`,
      );
      assert.deepEqual(redirects, ["manual"]);
      assert.deepEqual(files.openCalls, [path]);
      assert.deepEqual(files.closeCalls, [path]);
      assert.equal(result.accessToken, "entra-token");
      assert.equal(result.tokenType, "Bearer");
      assert.equal(result.source, "WorkloadIdentity");
      assert.equal(result.resource, VAULT);
      assert.equal(result.fromCache, false);
    });
  });

  const hosts: readonly [string, string | undefined, string][] = [
    ["unset (the public cloud)", undefined, TOKEN_URL],
    ["with a trailing slash, as the AKS webhook sets it", "https://login.microsoftonline.com/", TOKEN_URL],
    ["without a trailing slash", "https://login.microsoftonline.com", TOKEN_URL],
    [
      "a sovereign cloud (US Government)",
      "https://login.microsoftonline.us",
      `https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token`,
    ],
    [
      "a sovereign cloud with a trailing slash (China)",
      "https://login.chinacloudapi.cn/",
      `https://login.chinacloudapi.cn/${TENANT}/oauth2/v2.0/token`,
    ],
    ["any https: host", "https://login.example:8443/", `https://login.example:8443/${TENANT}/oauth2/v2.0/token`],
    [
      "plain http: on 127.0.0.1 (an emulator)",
      "http://127.0.0.1:8400/",
      `http://127.0.0.1:8400/${TENANT}/oauth2/v2.0/token`,
    ],
    ["plain http: on localhost", "http://localhost:8400", `http://localhost:8400/${TENANT}/oauth2/v2.0/token`],
    ["plain http: on [::1]", "http://[::1]:8400/", `http://[::1]:8400/${TENANT}/oauth2/v2.0/token`],
  ];
  for (const [label, host, url] of hosts) {
    test(`acquireToken() sends the token request to {host}/{tenant}/oauth2/v2.0/token for AZURE_AUTHORITY_HOST ${label}`, async () => {
      await withTokenFile(async ({ path }) => {
        const fake = recorder(() => token());
        const env = wiEnv(path, host === undefined ? {} : { AZURE_AUTHORITY_HOST: host });
        const client = testClient({ env, fetch: fake.fetch });
        await client.acquireToken(VAULT);
        const seen = onlyRequest(fake.seen);
        assertTokenRequest(seen, url);
        assert.equal(seen.url.href, url);
        assert.deepEqual(form(seen), expectedForm());
      });
    });
  }

  test("acquireToken() puts a domain-name tenant in the token URL", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const env = wiEnv(path, { AZURE_TENANT_ID: "contoso.onmicrosoft.com" });
      await testClient({ env, fetch: fake.fetch }).acquireToken(VAULT);
      assertTokenRequest(onlyRequest(fake.seen), `${ENTRA}/contoso.onmicrosoft.com/oauth2/v2.0/token`);
    });
  });

  test("acquireToken() passes claims through as the claims form field, after the others, and skips the cache", async () => {
    await withTokenFile(async ({ path }) => {
      const claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["cp1"]}}}';
      const fake = recorder((_request, index) => token(`token-${index}`));
      const { client } = wiClient(path, { fetch: fake.fetch });
      assert.equal((await client.acquireToken(VAULT)).accessToken, "token-0");
      const result = await client.acquireToken(VAULT, { claims });
      assert.equal(result.accessToken, "token-1");
      assert.equal(result.fromCache, false);
      assert.equal(fake.seen.length, 2);
      assertTokenRequest(fake.seen[1]!);
      assert.deepEqual(form(fake.seen[1]!), [...expectedForm(), ["claims", claims]]);
      assert.deepEqual(form(fake.seen[0]!), expectedForm(), "no claims field without claims");
    });
  });

  test("acquireToken() sends the caller's clientId rather than AZURE_CLIENT_ID", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const client = testClient({ env: wiEnv(path), fetch: fake.fetch, clientId: OTHER_CLIENT_ID });
      assert.equal(client.source, "WorkloadIdentity");
      await client.acquireToken(VAULT);
      assert.deepEqual(form(onlyRequest(fake.seen)), expectedForm(ASSERTION, OTHER_CLIENT_ID));
    });
  });

  test("acquireToken() sends the caller's clientId when AZURE_CLIENT_ID is unset or empty", async () => {
    await withTokenFile(async ({ path }) => {
      for (const env of [wiEnv(path, { AZURE_CLIENT_ID: undefined }), wiEnv(path, { AZURE_CLIENT_ID: "" })]) {
        const fake = recorder(() => token());
        const client = testClient({ env, fetch: fake.fetch, clientId: OTHER_CLIENT_ID });
        assert.equal(client.source, "WorkloadIdentity");
        await client.acquireToken(VAULT);
        assert.deepEqual(form(onlyRequest(fake.seen)), expectedForm(ASSERTION, OTHER_CLIENT_ID));
      }
    });
  });

  test("acquireToken() trims the whitespace and newlines around the token file's contents", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      await testClient({ env: wiEnv(path), fetch: fake.fetch }).acquireToken(VAULT);
      assert.deepEqual(form(onlyRequest(fake.seen)), expectedForm());
    }, ` \t\r\n${ASSERTION}\r\n \n`);
  });

  test("acquireToken() and getToken() send the scope as {resource}/.default, never doubled", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const client = testClient({ env: wiEnv(path), fetch: fake.fetch });
      const result = await client.acquireToken(`${VAULT}/.default`);
      assert.equal(result.resource, VAULT);
      const storage = await client.getToken("https://storage.azure.com/.default");
      assert.equal(storage.token, "entra-token");
      assert.equal(storage.tokenType, "Bearer");
      assert.equal(fake.seen.length, 2);
      assert.equal(new URLSearchParams(fake.seen[0]!.body).get("scope"), `${VAULT}/.default`);
      assert.equal(new URLSearchParams(fake.seen[1]!.body).get("scope"), "https://storage.azure.com/.default");
    });
  });

  test("acquireToken() reads the token file only when a request is made, not at construction", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const { client, files } = wiClient(path, { fetch: fake.fetch });
      assert.deepEqual(files.openCalls, []);
      await client.acquireToken(VAULT);
      assert.deepEqual(files.openCalls, [path]);
    });
  });
});

describe("workload identity configuration", () => {
  const refusedIdentities: readonly [string, Partial<ManagedIdentityClientOptions>][] = [
    ["an object ID", { objectId: OTHER_CLIENT_ID }],
    [
      "a resource ID",
      {
        resourceId:
          "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x",
      },
    ],
  ];
  for (const [label, options] of refusedIdentities) {
    test(`new ManagedIdentityClient() refuses ${label} with unsupported_identity on workload identity`, () => {
      const error = constructionError(wiEnv("/nonexistent/azmi/token"), "unsupported_identity", options);
      assert.match(error.message, /workload identity is chosen by client ID only/);
    });
  }

  const tenants: readonly string[] = [TENANT, "contoso.onmicrosoft.com", "contoso-1.example.com", "organizations"];
  for (const tenant of tenants) {
    test(`new ManagedIdentityClient() accepts AZURE_TENANT_ID "${tenant}"`, async () => {
      await withTokenFile(async ({ path }) => {
        const fake = recorder(() => token());
        const client = testClient({ env: wiEnv(path, { AZURE_TENANT_ID: tenant }), fetch: fake.fetch });
        await client.acquireToken(VAULT);
        assert.equal(onlyRequest(fake.seen).url.pathname, `/${tenant}/oauth2/v2.0/token`);
      });
    });
  }

  const badTenants: readonly [string, string][] = [
    ["empty", ""],
    ["a/b", "a/b"],
    ["..", ".."],
    ["a..b", "a..b"],
    ["x?y", "x?y"],
    ["x#y", "x#y"],
    ["a space inside", "contoso tenant"],
    ["only spaces", "   "],
    ["a percent-encoded slash", "a%2Fb"],
    ["a backslash", "a\\b"],
    ["a leading dot", ".contoso"],
    ["a trailing hyphen", "contoso-"],
  ];
  for (const [label, tenant] of badTenants) {
    test(`new ManagedIdentityClient() refuses AZURE_TENANT_ID ${label} with invalid_configuration naming it`, () => {
      const error = constructionError(
        wiEnv("/nonexistent/azmi/token", { AZURE_TENANT_ID: tenant }),
        "invalid_configuration",
      );
      assert.match(error.message, /AZURE_TENANT_ID/);
    });
  }

  const badHosts: readonly [string, string, RegExp][] = [
    ["plain http: on another host", "http://login.example", /https:/],
    ["plain http: on a link-local address (not loopback)", "http://169.254.169.254/", /https:/],
    ["plain http: on a private address", "http://10.0.0.4:8400/", /https:/],
    ["user:pass@ on https:", "https://user:pass@login.microsoftonline.com/", /user:password@/],
    ["user:pass@ on loopback http:", "http://user:pass@127.0.0.1:8400/", /user:password@/],
    ["a user name alone", "https://user@login.microsoftonline.com/", /user:password@/],
    ["not a URL", "login.microsoftonline.com", /http: or https: URL/],
    ["another scheme", "ftp://login.microsoftonline.com/", /http: or https: URL/],
  ];
  for (const [label, host, why] of badHosts) {
    test(`new ManagedIdentityClient() refuses AZURE_AUTHORITY_HOST with ${label} with invalid_configuration naming it`, () => {
      const error = constructionError(
        wiEnv("/nonexistent/azmi/token", { AZURE_AUTHORITY_HOST: host }),
        "invalid_configuration",
      );
      assert.match(error.message, /AZURE_AUTHORITY_HOST/);
      assert.match(error.message, why);
      for (const text of renderings(error)) assert.ok(!text.includes("pass@"), `the password is shown: ${text}`);
    });
  }
});

describe("workload identity: AZURE_CLIENT_ID names the identity", () => {
  test("acquireToken() does not serve one AZURE_CLIENT_ID the token of another, on one cache", async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-wi-key-"));
    try {
      const path = join(dir, "token");
      await fsp.writeFile(path, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzIn0.c2ln");
      const cache = new TokenCache();
      const fake = recorder(async (request) =>
        Response.json({
          access_token: `for-${new URLSearchParams(await request.text()).get("client_id")}`,
          expires_in: 3600,
        })
      );
      const env = (clientId: string) => ({
        AZURE_FEDERATED_TOKEN_FILE: path,
        AZURE_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
        AZURE_CLIENT_ID: clientId,
      });
      const a = testClient({ env: env("app-a"), fetch: fake.fetch, cache });
      const b = testClient({ env: env("app-b"), fetch: fake.fetch, cache });
      assert.equal((await a.acquireToken("https://vault.azure.net")).accessToken, "for-app-a");
      const second = await b.acquireToken("https://vault.azure.net");
      assert.equal(second.accessToken, "for-app-b");
      assert.equal(second.fromCache, false);
      assert.equal(fake.seen.length, 2);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test("new ManagedIdentityClient() refuses a blank AZURE_CLIENT_ID with invalid_configuration", async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-wi-key-"));
    try {
      const env = {
        AZURE_FEDERATED_TOKEN_FILE: join(dir, "token"),
        AZURE_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
        AZURE_CLIENT_ID: "  ",
      };
      assert.throws(() => testClient({ env }), (error: unknown) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "invalid_configuration");
        assert.match(error.message, /AZURE_CLIENT_ID/);
        return true;
      });
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
