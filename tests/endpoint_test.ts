/**
 * The endpoint host rule and credentials in endpoint URLs (src/sources/source.ts `endpointUrl`,
 * `isLocalHost`): every endpoint variable of every source is checked when the client is created
 * and again when a request is built, so that a secret header never goes to another machine.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type EnvRecord, ManagedIdentityError, type Source } from "../mod.ts";
import { isLocalHost } from "../src/sources/source.ts";
import { endpointOf, onlyRequest, recorder, testClient } from "./helpers/fake.ts";
import { assertNoLeak, renderings } from "./helpers/leaks.ts";

const THUMBPRINT = "AB".repeat(20);

/** Each endpoint variable, with the rest of its source's environment. */
const VARIABLES: readonly { source: Source; name: string; env: (url: string) => Record<string, string> }[] = [
  { source: "AppService", name: "IDENTITY_ENDPOINT", env: (url) => ({ IDENTITY_ENDPOINT: url, IDENTITY_HEADER: "h" }) },
  {
    source: "AzureArc",
    name: "IDENTITY_ENDPOINT",
    env: (url) => ({ IDENTITY_ENDPOINT: url, IMDS_ENDPOINT: "http://localhost:40342" }),
  },
  { source: "CloudShell", name: "MSI_ENDPOINT", env: (url) => ({ MSI_ENDPOINT: url }) },
  { source: "AzureML", name: "MSI_ENDPOINT", env: (url) => ({ MSI_ENDPOINT: url, MSI_SECRET: "s" }) },
  {
    source: "DefaultToIMDS",
    name: "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    env: (url) => ({ AZURE_POD_IDENTITY_AUTHORITY_HOST: url }),
  },
];

// What Azure services really put in these variables (docs/security.md, "The guarantees", has
// the sources): loopback on Windows App Service, Arc, Cloud Shell, Container Apps and Azure ML;
// link-local on Linux App Service; private addresses on older Linux Functions and Container Instances.
const ALLOWED = [
  "http://127.0.0.1:41741/MSI/token/",
  "http://localhost:42356/msi/token",
  "http://localhost:50342/oauth2/token",
  "http://127.0.0.1:46808/MSI/auth",
  "http://169.254.129.2:8081/msi/token",
  "http://172.16.1.3:8081/msi/token",
  "http://10.92.0.4:2377/metadata/identity/oauth2/token",
  "http://192.168.1.20/token",
  "http://[::1]:40342/token",
  "http://[fe80::1]/token",
  "http://[fd00::5]/token",
  "http://LOCALHOST/token",
  // Other spellings of 127.0.0.1, which URL parsing turns into it.
  "http://2130706433/token",
  "http://127.1/token",
];

const REFUSED = [
  "https://attacker.contoso.com/metadata",
  "http://evil.example.com/token",
  "http://169.254.169.254.evil.com/token",
  "http://foo.localhost/token",
  "http://0.0.0.0/token",
  "http://8.8.8.8/token",
  "http://11.0.0.1/token",
  "http://172.32.0.1/token",
  "http://192.169.0.1/token",
  "http://[2001:db8::1]/token",
  "http://[::ffff:127.0.0.1]/token",
];

/** Asserts that `create` throws invalid_configuration naming `variable`, and returns the error. */
function refusedAtConstruction(create: () => unknown, variable: string): ManagedIdentityError {
  let caught: unknown;
  try {
    create();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(caught)}`);
  assert.equal(caught.code, "invalid_configuration", caught.message);
  assert.match(caught.message, new RegExp(variable));
  return caught;
}

describe("isLocalHost()", () => {
  for (const url of ALLOWED) {
    test(`isLocalHost() accepts ${url}`, () => assert.equal(isLocalHost(new URL(url)), true));
  }
  for (const url of REFUSED) {
    test(`isLocalHost() refuses ${url}`, () => assert.equal(isLocalHost(new URL(url)), false));
  }
});

describe("new ManagedIdentityClient() checks every endpoint variable", () => {
  for (const variable of VARIABLES) {
    test(`new ManagedIdentityClient() on ${variable.source} refuses a ${variable.name} on another host, and sends nothing`, () => {
      for (const url of REFUSED) {
        const fake = recorder();
        const error = refusedAtConstruction(
          () => testClient({ env: variable.env(url), fetch: fake.fetch }),
          variable.name,
        );
        assert.equal(error.source, variable.source);
        assert.match(error.message, /on this machine or its private network/);
        assert.equal(fake.seen.length, 0);
      }
    });

    test(`new ManagedIdentityClient() on ${variable.source} accepts a ${variable.name} on this machine or its network`, async () => {
      for (const url of ALLOWED) {
        // Arc then wants a challenge, which this fake does not give: the point is that a request went out.
        const fake = recorder();
        const client = testClient({ env: variable.env(url), fetch: fake.fetch });
        assert.equal(client.source, variable.source);
        await client.acquireToken("https://vault.azure.net").catch(() => {});
        assert.equal(fake.seen.length, 1, url);
        assert.equal(fake.seen[0]!.url.hostname, new URL(url).hostname);
      }
    });

    test(`new ManagedIdentityClient() on ${variable.source} refuses user:password@ in ${variable.name} and never shows the password`, () => {
      for (const url of ["http://user:pa55word-x@127.0.0.1:41741/token", "http://:pa55word-x@localhost/token"]) {
        const fake = recorder();
        const error = refusedAtConstruction(
          () => testClient({ env: variable.env(url), fetch: fake.fetch }),
          variable.name,
        );
        assert.match(error.message, /without user:password@/);
        assertNoLeak(renderings(error), "pa55word-x");
        assert.equal(fake.seen.length, 0);
      }
    });
  }

  test("new ManagedIdentityClient() on ServiceFabric accepts any host (the pinned certificate is the trust) but no credentials", () => {
    const env = (url: string): EnvRecord => ({
      IDENTITY_ENDPOINT: url,
      IDENTITY_HEADER: "h",
      IDENTITY_SERVER_THUMBPRINT: THUMBPRINT,
    });
    for (const url of ["https://10.0.0.4:2377/metadata/identity/oauth2/token", "https://sf-node.example/token"]) {
      assert.equal(testClient({ env: env(url) }).source, "ServiceFabric");
    }
    const error = refusedAtConstruction(
      () => testClient({ env: env("https://user:pa55word-x@10.0.0.4:2377/token") }),
      "IDENTITY_ENDPOINT",
    );
    assertNoLeak(renderings(error), "pa55word-x");
  });

  test("acquireToken() never follows the variable when it changed after construction", async () => {
    const env: Record<string, string> = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };
    const fake = recorder();
    const client = testClient({ env, fetch: fake.fetch });
    env.IDENTITY_ENDPOINT = "http://evil.example.com/token";
    await client.acquireToken("https://vault.azure.net");
    assert.equal(endpointOf(onlyRequest(fake.seen)), "http://127.0.0.1:41741/token");
  });
});
