/**
 * Workload identity (AKS, or any federated token file; docs/sources.md): the exact
 * token request to Microsoft Entra ID, construction-time refusals, the token file (its rotation
 * on an injected clock, every way it can be unusable, a read that hangs), Entra's error bodies,
 * the "entra" retry rules, single flight, the cache and the background refresh, and redaction
 * of the assertion. Token files live in temporary directories; every endpoint is a fake handler
 * given as the client's `fetch`, so nothing leaves the process, even for the default
 * https://login.microsoftonline.com.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { inspect } from "node:util";
import {
  type EnvRecord,
  type ManagedIdentityClientOptions,
  ManagedIdentityError,
  type ManagedIdentityEvent,
  TokenCache,
} from "../../mod.ts";
import type { FileHandleView } from "../../src/file_read.ts";
import type { InternalOptions } from "../../src/internal.ts";
import type { TokenFileSystem } from "../../src/sources/workload_identity.ts";
import { endpointOf, onlyRequest, recorder, type Seen, testClient } from "../helpers/fake.ts";
import { deferred, rejectsWith } from "../helpers/checks.ts";
import { fakeTime, within } from "../helpers/faults.ts";
import { assertNoLeak, encodings, renderings } from "../helpers/leaks.ts";

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
const OTHER_CLIENT_ID = "99999999-8888-7777-6666-555555555555";
const VAULT = "https://vault.azure.net";
const ENTRA = "https://login.microsoftonline.com";
const TOKEN_URL = `${ENTRA}/${TENANT}/oauth2/v2.0/token`;
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** A service account token as the kubelet projects it (header.payload.signature, no newline). */
const ASSERTION = [
  "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2V5LTEifQ",
  "eyJhdWQiOlsiYXBpOi8vQXp1cmVBRFRva2VuRXhjaGFuZ2UiXSwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OmRlZmF1bHQ6d29ya2xvYWQifQ",
  "c2lnbmF0dXJlLW9mLXRoZS1zZXJ2aWNlLWFjY291bnQtdG9rZW4",
].join(".");
/** The token the kubelet projects next: another signature. */
const ROTATED = ASSERTION.replace("c2lnbmF0dXJl", "cm90YXRlZC1z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const NOW = 1_700_000_000_000;

/** The form fields of a token request body, in order. */
function form(seen: Seen): [string, string][] {
  return [...new URLSearchParams(seen.body)];
}

/** The form fields every token request carries, in our order. */
function expectedForm(assertion = ASSERTION, clientId = CLIENT_ID, resource = VAULT): [string, string][] {
  return [
    ["client_id", clientId],
    ["scope", `${resource}/.default`],
    ["grant_type", "client_credentials"],
    ["client_assertion_type", JWT_BEARER],
    ["client_assertion", assertion],
  ];
}

/** Asserts the request line and headers of a token request; the body is checked by the caller. */
function assertTokenRequest(seen: Seen, url = TOKEN_URL): void {
  assert.equal(seen.method, "POST");
  assert.equal(endpointOf(seen), url);
  assert.equal(seen.url.search, "");
  assert.deepEqual([...seen.headers], [["content-type", "application/x-www-form-urlencoded"]]);
}

/** The environment the AKS webhook sets, for the token file at `file`. */
function wiEnv(file: string, extra: EnvRecord = {}): EnvRecord {
  return {
    AZURE_FEDERATED_TOKEN_FILE: file,
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT_ID,
    ...extra,
  };
}

/** Runs `body` with a temporary directory holding a token file with `contents`; removes it afterwards. */
async function withTokenFile(
  body: (file: { dir: string; path: string }) => Promise<void>,
  contents: string | Uint8Array = ASSERTION,
): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-wi-"));
  try {
    const path = join(dir, "azure-identity-token");
    await fsp.writeFile(path, contents);
    await body({ dir, path });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** A token file system that records each open and forwards it to `open` (the real one by default). */
function countingFiles(
  open: (path: string, flags: number) => Promise<FileHandleView> = (path, flags) => fsp.open(path, flags),
): TokenFileSystem & { opened: string[]; closed: string[] } {
  const opened: string[] = [];
  const closed: string[] = [];
  return {
    opened,
    closed,
    async open(path, flags) {
      opened.push(path);
      const handle = await open(path, flags);
      return {
        stat: () => handle.stat(),
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        close: () => (closed.push(path), handle.close()),
      };
    },
  };
}

/** A workload identity client over the token file at `path`, with a counting file system. */
function wiClient(
  path: string,
  options: Partial<ManagedIdentityClientOptions> = {},
  internal: InternalOptions = {},
) {
  const files = countingFiles();
  const client = testClient({ env: wiEnv(path), ...options }, { tokenFileSystem: files, ...internal });
  return { client, files };
}

const token = (accessToken = "entra-token", extra: Record<string, unknown> = {}) =>
  Response.json({ token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: accessToken, ...extra });

/** Waits in 5 ms turns (1 s at most) until `done()` holds: a real file read comes before each request. */
async function until(done: () => boolean, what = "the condition"): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(done(), `${what} did not happen within 1 s`);
}

/** Asserts that constructing a client with `env` (and `options`) throws `code`, and returns the error. */
function constructionError(
  env: EnvRecord,
  code: string,
  options: Partial<ManagedIdentityClientOptions> = {},
): ManagedIdentityError {
  const fake = recorder();
  const files = countingFiles(() => Promise.reject(new Error("construction must not open the token file")));
  let caught: unknown;
  try {
    testClient({ env, fetch: fake.fetch, ...options }, { tokenFileSystem: files });
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.source, "WorkloadIdentity");
  assert.equal(fake.seen.length, 0);
  assert.deepEqual(files.opened, []);
  return caught;
}

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
      assert.deepEqual(files.opened, [path]);
      assert.deepEqual(files.closed, [path]);
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
      assert.deepEqual(files.opened, []);
      await client.acquireToken(VAULT);
      assert.deepEqual(files.opened, [path]);
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

describe("workload identity token file rotation", () => {
  test("acquireToken() keeps the assertion it read for 5 minutes: a rewritten file is not used at +4:59, and is at +5:00", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder((_request, index) => token(`token-${index}`));
      const { client, files } = wiClient(path, { fetch: fake.fetch }, { now: () => now });
      await client.acquireToken(VAULT);
      // The kubelet rotates the projected token: a new file is swapped in atomically.
      await fsp.writeFile(`${path}.new`, ROTATED);
      await fsp.rename(`${path}.new`, path);

      now = NOW + 5 * MINUTE - 1 * SECOND;
      await client.acquireToken(VAULT, { forceRefresh: true });
      now = NOW + 5 * MINUTE - 1;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.opened.length, 1, "the file was read again before 5 minutes");

      now = NOW + 5 * MINUTE;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.opened.length, 2);
      now = NOW + 9 * MINUTE;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.opened.length, 2, "the new contents are kept for 5 minutes from their read");

      const sent = fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_assertion"));
      assert.deepEqual(sent, [ASSERTION, ASSERTION, ASSERTION, ROTATED, ROTATED]);
      assert.deepEqual(files.opened, [path, path]);
    });
  });

  test("acquireToken() reads the file again when the clock has stepped back behind the read", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder((_request, index) => token(`token-${index}`));
      const { client, files } = wiClient(path, { fetch: fake.fetch }, { now: () => now });
      await client.acquireToken(VAULT);
      await fsp.writeFile(`${path}.new`, ROTATED);
      await fsp.rename(`${path}.new`, path);
      // NTP or a resumed VM steps the clock back an hour: the read now seems to be in the future.
      now = NOW - 60 * MINUTE;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.opened.length, 2, "the file read 'in the future' was used again");
      const sent = fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_assertion"));
      assert.deepEqual(sent, [ASSERTION, ROTATED]);
    });
  });

  test("acquireToken() keeps the tenant, authority host and token file of construction: the cache key names them", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder((_request, index) => token(`token-${index}`));
      const env: Record<string, string | undefined> = { ...wiEnv(path) };
      const cache = new TokenCache();
      const client = testClient({ env, fetch: fake.fetch, cache }, { tokenFileSystem: countingFiles() });
      await client.acquireToken(VAULT);
      env.AZURE_TENANT_ID = "00000000-0000-0000-0000-00000000000b";
      env.AZURE_AUTHORITY_HOST = "https://login.example.net";
      env.AZURE_FEDERATED_TOKEN_FILE = "/nonexistent/other/token";
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(fake.seen.length, 2);
      assert.equal(endpointOf(fake.seen[1]!), endpointOf(fake.seen[0]!));
      // A client made now, for the other tenant, gets no token of the first one's.
      const other = testClient({ env: { ...env, AZURE_FEDERATED_TOKEN_FILE: path }, fetch: fake.fetch, cache });
      assert.equal((await other.acquireToken(VAULT)).fromCache, false);
      assert.equal(
        endpointOf(fake.seen[2]!),
        "https://login.example.net/00000000-0000-0000-0000-00000000000b/oauth2/v2.0/token",
      );
      // And the first client still gets its own tenant's token from the cache.
      assert.equal((await client.acquireToken(VAULT)).accessToken, "token-1");
    });
  });

  test(
    "acquireToken() follows the kubelet's links (token -> ..data/token) and sees a rotation swapped in through them",
    { skip: process.platform === "win32" ? "symbolic links need a privilege on Windows" : false },
    async () => {
      await withTokenFile(async ({ dir }) => {
        // The projected volume's layout: token -> ..data/token, ..data -> ..<timestamp>/, and a
        // rotation writes a new timestamped directory, then renames a new ..data link over the old.
        await fsp.mkdir(join(dir, "..2026_01_01_00_00_00.1"));
        await fsp.writeFile(join(dir, "..2026_01_01_00_00_00.1", "token"), ASSERTION);
        await fsp.symlink("..2026_01_01_00_00_00.1", join(dir, "..data"));
        await fsp.symlink(join("..data", "token"), join(dir, "token"));
        let now = NOW;
        const fake = recorder(() => token());
        const { client } = wiClient(join(dir, "token"), { fetch: fake.fetch }, { now: () => now });
        await client.acquireToken(VAULT);

        await fsp.mkdir(join(dir, "..2026_01_01_00_48_00.2"));
        await fsp.writeFile(join(dir, "..2026_01_01_00_48_00.2", "token"), ROTATED);
        await fsp.symlink("..2026_01_01_00_48_00.2", join(dir, "..data_tmp"));
        await fsp.rename(join(dir, "..data_tmp"), join(dir, "..data"));
        now = NOW + 5 * MINUTE;
        await client.acquireToken(VAULT, { forceRefresh: true });
        const sent = fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_assertion"));
        assert.deepEqual(sent, [ASSERTION, ROTATED]);
      }, "");
    },
  );

  test("acquireToken() reads a token file that vanished at rotation again on the next call", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder(() => token());
      const { client, files } = wiClient(path, { fetch: fake.fetch }, { now: () => now });
      await client.acquireToken(VAULT);
      await fsp.rm(path);
      now = NOW + 5 * MINUTE;
      const error = await rejectsWith(client.acquireToken(VAULT, { forceRefresh: true }), "invalid_configuration");
      assert.match(error.message, /does not exist/);
      assert.equal(fake.seen.length, 1, "no request without an assertion");
      await fsp.writeFile(path, ROTATED);
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.opened.length, 3);
      assert.equal(new URLSearchParams(fake.seen[1]!.body).get("client_assertion"), ROTATED);
    });
  });
});

/** `false` when mkfifo(1) can make FIFOs here, else why the FIFO test is skipped. */
const NO_FIFO: false | string = process.platform !== "win32" && !spawnSync("mkfifo", ["--help"]).error
  ? false
  : "mkfifo is not available on this platform (Windows has no FIFOs)";

/** `false` when a file's mode can deny this process its reading, else why that test is skipped. */
const NO_CHMOD_DENIAL: false | string = process.platform === "win32"
  ? "Windows has no POSIX file modes"
  : process.getuid?.() === 0
  ? "running as root, which chmod cannot deny a read (the seam test below covers EACCES)"
  : false;

/** What a token file that must not be used holds: it must never be sent or shown. */
const CONTENTS = "FILE-CONTENTS-MUST-NOT-SHOW-4721";

describe("workload identity token file errors", () => {
  /** Asserts invalid_configuration naming the variable and the path, saying `reason`, showing no contents. */
  async function assertRefused(
    path: string,
    reason: RegExp,
    internal: InternalOptions = {},
  ): Promise<ManagedIdentityError> {
    const fake = recorder(() => token());
    const client = testClient({ env: wiEnv(path), fetch: fake.fetch }, internal);
    const started = Date.now();
    const error = await within(
      2000,
      rejectsWith(client.acquireToken(VAULT), "invalid_configuration", "WorkloadIdentity"),
    );
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    assert.ok(error.message.includes(`AZURE_FEDERATED_TOKEN_FILE "${path}"`), error.message);
    assert.match(error.message, reason);
    assert.equal(fake.seen.length, 0, "no request without an assertion");
    assertNoLeak(renderings(error), CONTENTS, "error");
    return error;
  }

  const CHECK = /azure\.workload\.identity\/use.*azure\.workload\.identity\/client-id/;

  test("acquireToken() refuses a missing token file, saying what to check on AKS", async () => {
    await withTokenFile(async ({ dir }) => {
      const error = await assertRefused(join(dir, "missing-token"), /does not exist/);
      assert.match(error.message, CHECK);
      assert.match(error.message, /token volume is mounted/);
    });
  });

  test("acquireToken() refuses a token file under a path whose parent is a file, as missing", async () => {
    await withTokenFile(async ({ path }) => {
      await assertRefused(join(path, "token"), /does not exist/);
    });
  });

  test("acquireToken() refuses an empty token file, saying what to check on AKS", async () => {
    await withTokenFile(async ({ path }) => {
      const error = await assertRefused(path, /is empty/);
      assert.match(error.message, CHECK);
    }, "");
  });

  test("acquireToken() refuses a token file of whitespace only as empty", async () => {
    await withTokenFile(async ({ path }) => {
      await assertRefused(path, /is empty/);
    }, "  \n\t\r\n  ");
  });

  test("acquireToken() refuses a directory as the token file", async () => {
    await withTokenFile(async ({ dir }) => {
      await assertRefused(dir, /is not a regular file: it must name the token file itself, not its directory/);
    });
  });

  test(
    "acquireToken() refuses a FIFO as the token file at once, without blocking on it",
    { skip: NO_FIFO },
    async () => {
      await withTokenFile(async ({ dir }) => {
        const fifo = join(dir, "fifo-token");
        const made = spawnSync("mkfifo", [fifo]);
        assert.equal(made.status, 0, `mkfifo failed: ${made.error ?? made.stderr}`);
        try {
          await assertRefused(fifo, /is not a regular file: it must name the token file itself, not its directory/);
        } finally {
          // A read that blocked opening the FIFO (a broken O_NONBLOCK) ends once a writer comes
          // and goes, so a failing test still lets the process exit.
          await fsp.open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then((writer) => writer.close(), () => {});
        }
      });
    },
  );

  test("acquireToken() refuses a token file over 64 KiB without showing what it holds", async () => {
    await withTokenFile(async ({ path }) => {
      await assertRefused(path, /more than 65536 bytes/);
    }, CONTENTS.repeat(Math.ceil((64 * 1024 + 1) / CONTENTS.length)));
  });

  test("acquireToken() accepts a token file of exactly 64 KiB", async () => {
    const big = "a".repeat(64 * 1024 - 2);
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      await testClient({ env: wiEnv(path), fetch: fake.fetch }).acquireToken(VAULT);
      assert.equal(new URLSearchParams(onlyRequest(fake.seen).body).get("client_assertion"), big);
    }, `${big}\r\n`);
  });

  test("acquireToken() refuses a token file this process may not read", { skip: NO_CHMOD_DENIAL }, async () => {
    await withTokenFile(async ({ path }) => {
      await fsp.chmod(path, 0o000);
      await assertRefused(path, /cannot be read by this process/);
    }, CONTENTS);
  });

  test("acquireToken() refuses a token file whose open fails with EACCES, saying it cannot be read", async () => {
    await withTokenFile(async ({ path }) => {
      const denied = countingFiles((p) =>
        Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: "EACCES" }))
      );
      await assertRefused(path, /cannot be read by this process/, { tokenFileSystem: denied });
      assert.deepEqual(denied.opened, [path]);
    }, CONTENTS);
  });

  test("acquireToken() does not cache a token file error: the next call reads the file again", async () => {
    await withTokenFile(async ({ dir }) => {
      const path = join(dir, "later-token");
      const fake = recorder(() => token());
      const { client, files } = wiClient(path, { fetch: fake.fetch });
      await rejectsWith(client.acquireToken(VAULT), "invalid_configuration");
      await fsp.writeFile(path, ASSERTION);
      assert.equal((await client.acquireToken(VAULT)).accessToken, "entra-token");
      assert.deepEqual(files.opened, [path, path]);
      assert.deepEqual(form(onlyRequest(fake.seen)), expectedForm());
    });
  });
});

describe("workload identity token file reads are bounded", () => {
  const never = <T>() => new Promise<T>(() => {});
  /** A file system whose `stage` step never settles while `hang.on`; the real one otherwise. */
  function hanging(stage: "open" | "stat" | "read", hang: { on: boolean }): TokenFileSystem {
    return {
      async open(path, flags) {
        if (hang.on && stage === "open") return await never<FileHandleView>();
        const handle = await fsp.open(path, flags);
        return {
          stat: () => hang.on && stage === "stat" ? never() : handle.stat(),
          read: (buffer, offset, length, position) =>
            hang.on && stage === "read" ? never() : handle.read(buffer, offset, length, position),
          close: () => handle.close(),
        };
      },
    };
  }

  for (const stage of ["open", "stat", "read"] as const) {
    test(`acquireToken() ends with timeout at timeoutMs when the token file's ${stage} hangs, and a later call is not stuck`, async () => {
      await withTokenFile(async ({ path }) => {
        const hang = { on: true };
        const fake = recorder(() => token());
        const client = testClient({ env: wiEnv(path), fetch: fake.fetch, timeoutMs: 100 }, {
          tokenFileSystem: hanging(stage, hang),
        });
        const started = Date.now();
        const error = await within(2000, rejectsWith(client.acquireToken(VAULT), "timeout", "WorkloadIdentity"));
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 90 && elapsed < 1000, `took ${elapsed} ms`);
        assert.ok(error.message.includes(`"${path}" took longer than 100 ms`), error.message);
        assert.equal(fake.seen.length, 0);
        // The same client again, while the file system still hangs: a new read, not a stuck flight.
        await within(2000, rejectsWith(client.acquireToken(VAULT), "timeout", "WorkloadIdentity"));
        hang.on = false;
        assert.equal((await within(2000, client.acquireToken(VAULT))).accessToken, "entra-token");
        assert.deepEqual(form(onlyRequest(fake.seen)), expectedForm());
      });
    });
  }

  test("acquireToken() ends with aborted on the caller's abort while the token file's open hangs, and a later call is not stuck", async () => {
    await withTokenFile(async ({ path }) => {
      const hang = { on: true };
      const fake = recorder(() => token());
      const client = testClient({ env: wiEnv(path), fetch: fake.fetch, timeoutMs: 60_000 }, {
        tokenFileSystem: hanging("open", hang),
      });
      const controller = new AbortController();
      const reason = new Error("the caller left");
      const call = client.acquireToken(VAULT, { signal: controller.signal });
      setTimeout(() => controller.abort(reason), 20);
      const started = Date.now();
      const error = await within(2000, rejectsWith(call, "aborted", "WorkloadIdentity"));
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      assert.equal(error.cause, reason);
      assert.equal(fake.seen.length, 0);
      hang.on = false;
      assert.equal((await within(2000, client.acquireToken(VAULT))).accessToken, "entra-token");
      assert.equal(fake.seen.length, 1);
    });
  });
});

/** Entra ID's error body (docs/sources.md, error bodies). */
function entraError(error: string, description: string, code: number, correlationId: string) {
  return {
    error,
    error_description: `${description} Trace ID: 0b5a8f43-0000-4000-8000-00000000aa01 ` +
      `Correlation ID: ${correlationId} Timestamp: 2026-01-01 00:00:00Z`,
    error_codes: [code],
    timestamp: "2026-01-01 00:00:00Z",
    trace_id: "0b5a8f43-0000-4000-8000-00000000aa01",
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

describe("workload identity errors from Entra ID", () => {
  const cases: readonly [number, string, string, number][] = [
    [
      400,
      "invalid_request",
      "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: " +
      "'https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/'. Assertion Subject: " +
      "'system:serviceaccount:default:workload'. Assertion Audience: 'api://AzureADTokenExchange'.",
      70021,
    ],
    [
      400,
      "unauthorized_client",
      `AADSTS700016: Application with identifier '${CLIENT_ID}' was not found in the directory 'Contoso'.`,
      700016,
    ],
    [401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range.", 700024],
    [400, "invalid_request", `AADSTS90002: Tenant '${TENANT}' not found.`, 90002],
  ];
  for (const [status, code, description, number] of cases) {
    const aadsts = `AADSTS${number}`;
    test(`acquireToken() fails with request_failed ${status} keeping ${aadsts} and the correlation ID, without retry`, async () => {
      await withTokenFile(async ({ path }) => {
        const correlationId = `c0ffee00-0000-4000-8000-0000000${String(number).padStart(5, "0")}`;
        const fake = recorder(() =>
          Response.json(entraError(code, description, number, correlationId), {
            status,
            headers: { "x-ms-request-id": "0b5a8f43-0000-4000-8000-00000000aa01", "client-request-id": "abc" },
          })
        );
        const time = fakeTime(NOW);
        const client = testClient({ env: wiEnv(path), fetch: fake.fetch }, { now: time.now, sleep: time.sleep });
        const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
        assert.equal(error.status, status);
        assert.equal(error.error, code);
        assert.ok(error.errorDescription?.startsWith(`${aadsts}: `), error.errorDescription);
        assert.equal(error.correlationId, correlationId);
        assert.equal(error.endpoint, TOKEN_URL);
        assert.match(error.message, new RegExp(`answered ${status} \\(${code}: ${aadsts}: `));
        assert.equal(fake.seen.length, 1);
        assert.deepEqual(time.sleeps, []);
        assertNoLeak(renderings(error), ASSERTION, "error");
      });
    });
  }
});

describe("workload identity retries", () => {
  /** A client whose endpoint answers `first` on the first `count` requests, then a token. */
  async function retried(
    first: () => Response,
    count: number,
    check: (outcome: { seen: Seen[]; sleeps: number[]; events: ManagedIdentityEvent[]; files: string[] }) => void,
    options: Partial<ManagedIdentityClientOptions> = {},
  ): Promise<void> {
    await withTokenFile(async ({ path }) => {
      const fake = recorder((_request, index) => index < count ? first() : token());
      const time = fakeTime(NOW);
      const events: ManagedIdentityEvent[] = [];
      const { client, files } = wiClient(path, {
        fetch: fake.fetch,
        retry: { maxRetries: 3 },
        onEvent: (event) => events.push(event),
        ...options,
      }, { now: time.now, sleep: time.sleep, random: () => 0 });
      await client.acquireToken(VAULT).catch(() => {});
      // Every attempt carries the same request; the file is read once for all of them.
      for (const seen of fake.seen) {
        assertTokenRequest(seen);
        assert.deepEqual(form(seen), expectedForm());
      }
      check({ seen: fake.seen, sleeps: time.sleeps, events, files: files.opened });
    });
  }

  test("acquireToken() retries a 429 after its Retry-After and gets the token", async () => {
    await retried(
      () => Response.json({ error: "temporarily_unavailable" }, { status: 429, headers: { "retry-after": "7" } }),
      1,
      ({ seen, sleeps, events, files }) => {
        assert.equal(seen.length, 2);
        assert.deepEqual(sleeps, [7000]);
        assert.deepEqual(events, [{
          type: "retry",
          source: "WorkloadIdentity",
          attempt: 1,
          delayMs: 7000,
          reason: "status 429",
        }]);
        assert.equal(files.length, 1);
      },
    );
  });

  for (const status of [500, 502, 503, 504, 599]) {
    test(`acquireToken() retries a ${status} after 1 s and gets the token`, async () => {
      await retried(() => Response.json({ error: "server_error" }, { status }), 1, ({ seen, sleeps, files }) => {
        assert.equal(seen.length, 2);
        assert.deepEqual(sleeps, [1000]);
        assert.equal(files.length, 1);
      });
    });
  }

  test("acquireToken() retries a 503 with Retry-After 3 times, then fails with request_failed 503", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() =>
        Response.json({ error: "temporarily_unavailable" }, { status: 503, headers: { "retry-after": "2" } })
      );
      const time = fakeTime(NOW);
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: { maxRetries: 3 } }, {
        now: time.now,
        sleep: time.sleep,
      });
      const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
      assert.equal(error.status, 503);
      assert.equal(fake.seen.length, 4);
      assert.deepEqual(time.sleeps, [2000, 2000, 2000]);
      assert.equal(files.opened.length, 1);
    });
  });

  const never: readonly [number, string][] = [
    [400, "invalid_request"],
    [401, "invalid_client"],
    [403, "access_denied"],
    [404, "not_found"],
    [408, "request_timeout"],
    [410, "gone"],
  ];
  for (const [status, code] of never) {
    test(`acquireToken() never retries a ${status} from Entra ID`, async () => {
      await retried(
        () => Response.json({ error: code, error_description: "AADSTS50000: no" }, { status }),
        4,
        ({ seen, sleeps, events }) => {
          assert.equal(seen.length, 1);
          assert.deepEqual(sleeps, []);
          assert.deepEqual(events, []);
        },
      );
    });
  }
});

describe("workload identity cache, single flight and background refresh", () => {
  test("acquireToken() makes one request and reads the file once for 50 concurrent cold calls", async () => {
    await withTokenFile(async ({ path }) => {
      const answer = deferred<Response>();
      const fake = recorder(() => answer.promise);
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: false });
      const calls = Array.from({ length: 50 }, () => client.acquireToken(VAULT));
      await until(() => fake.seen.length > 0, "the request");
      answer.resolve(token("shared-token"));
      const results = await Promise.all(calls);
      assert.deepEqual(new Set(results.map((result) => result.accessToken)), new Set(["shared-token"]));
      assert.ok(results.every((result) => !result.fromCache));
      assert.equal(fake.seen.length, 1);
      assert.deepEqual(files.opened, [path]);
    });
  });

  test("acquireToken() serves the second call from the cache: no request, no file read", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const { client, files } = wiClient(path, { fetch: fake.fetch });
      const first = await client.acquireToken(VAULT);
      const second = await client.acquireToken(VAULT);
      assert.equal(first.fromCache, false);
      assert.equal(second.fromCache, true);
      assert.equal(second.accessToken, "entra-token");
      assert.equal(fake.seen.length, 1);
      assert.equal(files.opened.length, 1);
    });
  });

  test("acquireToken() shares no cached token between AZURE_CLIENT_ID and another clientId option", async () => {
    await withTokenFile(async ({ path }) => {
      const cache = new TokenCache();
      const fake = recorder((_request, index) => token(`token-${index}`));
      const a = testClient({ env: wiEnv(path), fetch: fake.fetch, cache });
      const b = testClient({ env: wiEnv(path), fetch: fake.fetch, cache, clientId: OTHER_CLIENT_ID });
      await a.acquireToken(VAULT);
      await b.acquireToken(VAULT);
      assert.equal((await a.acquireToken(VAULT)).fromCache, true);
      assert.equal((await b.acquireToken(VAULT)).fromCache, true);
      assert.deepEqual(fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_id")), [
        CLIENT_ID,
        OTHER_CLIENT_ID,
      ]);
    });
  });

  test("acquireToken() past refresh_in serves the cached token and refreshes once in the background, with the rotated file", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder((_request, index) => token(`token-${index}`, { refresh_in: 600 }));
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: false }, { now: () => now });
      const issued = await client.acquireToken(VAULT);
      assert.equal(issued.refreshOn?.getTime(), NOW + 10 * MINUTE);
      assert.equal(issued.expiresOn.getTime(), NOW + 3599 * SECOND);
      await fsp.writeFile(path, ROTATED);

      now = NOW + 10 * MINUTE - 1;
      assert.equal((await client.acquireToken(VAULT)).fromCache, true);
      now = NOW + 10 * MINUTE;
      const served = await Promise.all(Array.from({ length: 10 }, () => client.acquireToken(VAULT)));
      assert.ok(served.every((result) => result.fromCache && result.accessToken === "token-0"));
      await until(() => fake.seen.length === 2, "the background refresh");
      const refreshed = await (async () => {
        for (let i = 0; i < 200; i++) {
          const result = await client.acquireToken(VAULT);
          if (result.accessToken !== "token-0") return result;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        assert.fail("the background refresh never replaced the cached token");
      })();
      assert.equal(refreshed.accessToken, "token-1");
      assert.equal(refreshed.fromCache, true);
      assert.equal(fake.seen.length, 2);
      assert.equal(new URLSearchParams(fake.seen[1]!.body).get("client_assertion"), ROTATED);
      assert.equal(files.opened.length, 2);
    });
  });
});

/** A secret with every character an encoder treats specially, as in tests/echo_test.ts. */
const PUNCTUATED = 'Zk3+Q/"w\\e=9&p%7 Z';

/** Error bodies in Entra's shape whose every field is the echo `e` (inserted as it is into JSON text). */
function echoBodies(e: string): Record<string, string> {
  return {
    "Entra shape": `{"error":"bad_${e}","error_description":"AADSTS70021: echo ${e}","error_codes":[70021],` +
      `"timestamp":"${e}","trace_id":"${e}","correlation_id":"${e}","error_uri":"https://x/?a=${e}"}`,
    "plain text": `Bad assertion ${e}`,
    "HTML": `<html><body><p>Assertion: ${e}</p></body></html>`,
  };
}

/** Every text an outcome can be shown as: the error's renderings and each event's. */
function shown(error: unknown, events: readonly ManagedIdentityEvent[]): string[] {
  return [
    ...renderings(error),
    ...events.flatMap((event) => [JSON.stringify(event), inspect(event, { depth: Infinity })]),
    ...events.flatMap((event) => ("error" in event ? renderings(event.error) : [])),
  ];
}

describe("workload identity never shows the assertion", () => {
  for (
    const [label, secret] of [["a punctuated assertion", PUNCTUATED], ["a service account token", ASSERTION]] as const
  ) {
    for (const [encoding, echo] of Object.entries(encodings(secret))) {
      if (encoding === "inspect-quoted") continue;
      test(`acquireToken() hides ${label} echoed ${encoding} in every error field and correlation header`, async () => {
        await withTokenFile(async ({ path }) => {
          for (const [shape, body] of Object.entries(echoBodies(echo))) {
            for (const status of [400, 500]) {
              const events: ManagedIdentityEvent[] = [];
              const fake = recorder((request) => {
                return request.text().then((text) => {
                  // The assertion really went out, so it was there to leak.
                  assert.equal(new URLSearchParams(text).get("client_assertion"), secret);
                  return new Response(body, {
                    status,
                    headers: { "x-ms-correlation-id": echo, "x-ms-request-id": echo, "client-request-id": echo },
                  });
                });
              });
              const time = fakeTime(NOW);
              const client = testClient({
                env: wiEnv(path),
                fetch: fake.fetch,
                retry: { maxRetries: 1 },
                onEvent: (event) => events.push(event),
              }, { now: time.now, sleep: time.sleep });
              const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
              assert.equal(error.status, status);
              assert.equal(fake.seen.length, status === 500 ? 2 : 1);
              assertNoLeak(shown(error, events), secret, `error for the ${shape} body, status ${status}`);
            }
          }
        }, `${secret}\n`);
      });
    }
  }

  test("acquireToken() hides an assertion that a 200 body echoes instead of a token", async () => {
    await withTokenFile(async ({ path }) => {
      for (const echo of Object.values(encodings(PUNCTUATED)).slice(0, 6)) {
        for (const body of [`<html>${echo}</html>`, `{"token_type":"Bearer","expires_in":"${echo}"}`]) {
          const client = testClient({ env: wiEnv(path), fetch: () => new Response(body) });
          const error = await rejectsWith(client.acquireToken(VAULT), "invalid_response", "WorkloadIdentity");
          assertNoLeak(renderings(error), PUNCTUATED, `error for ${body}`);
        }
      }
    }, PUNCTUATED);
  });

  test("onEvent payloads never carry the assertion: retries and a failed background refresh", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const events: ManagedIdentityEvent[] = [];
      const fake = recorder(async (request, index) => {
        if (index === 0) return token("first", { refresh_in: 60 });
        const sent = new URLSearchParams(await request.text()).get("client_assertion") ?? "";
        const echo = encodeURIComponent(sent);
        return Response.json(
          { error: `e_${echo}`, error_description: `AADSTS70021: ${sent}`, correlation_id: sent },
          { status: index === 1 ? 503 : 400, headers: { "x-ms-request-id": echo } },
        );
      });
      const client = testClient({
        env: wiEnv(path),
        fetch: fake.fetch,
        retry: { maxRetries: 1, delayMs: 0 },
        onEvent: (event) => events.push(event),
      }, { now: () => now, sleep: () => Promise.resolve() });
      await client.acquireToken(VAULT);
      now += 61 * SECOND;
      assert.equal((await client.acquireToken(VAULT)).fromCache, true);
      await until(() => events.some((event) => event.type === "refresh_failed"), "the refresh_failed event");
      assert.deepEqual(events.map((event) => event.type), ["retry", "refresh_failed"]);
      assert.equal(fake.seen.length, 3);
      assertNoLeak(shown(undefined, events), PUNCTUATED, "events");
    }, PUNCTUATED);
  });

  test("a token file error shows neither the old assertion nor the new file's contents", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder(() => token());
      const client = testClient({ env: wiEnv(path), fetch: fake.fetch }, { now: () => now });
      await client.acquireToken(VAULT);
      await fsp.writeFile(path, PUNCTUATED.repeat(4000));
      now += 5 * MINUTE;
      const error = await rejectsWith(client.acquireToken(VAULT, { forceRefresh: true }), "invalid_configuration");
      assertNoLeak(renderings(error), ASSERTION, "error");
      assertNoLeak(renderings(error), PUNCTUATED, "error");
      assertNoLeak(
        [inspect(client, { depth: Infinity, showHidden: true }), JSON.stringify(client)],
        ASSERTION,
        "client",
      );
    });
  });
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
