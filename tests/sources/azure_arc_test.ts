import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ArcKeyFileSystem } from "../../src/arc_key.ts";
import type { InternalOptions } from "../../src/internal.ts";
import type { ManagedIdentityClientOptions } from "../../mod.ts";
import { endpointOf, recorder, type Seen, testClient } from "../helpers/fake.ts";
import { assertNotShown, counting, rejectsWith } from "../helpers/checks.ts";

/** Awaits a rejection with a ManagedIdentityError of `code` from AzureArc and returns it. */
const rejectsFromArc = (promise: Promise<unknown>, code: string) => rejectsWith(promise, code, "AzureArc");

const ENDPOINT = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
const ENV = { IDENTITY_ENDPOINT: ENDPOINT, IMDS_ENDPOINT: "http://127.0.0.1:40342" };
const VAULT = "https://vault.azure.net";
const KEY = "SECRET-KEY-CONTENTS-1234";
const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
const OBJECT_ID = "99999999-8888-7777-6666-555555555555";
const RESOURCE_ID =
  "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";

/** A fresh token directory with one key file, removed afterwards. */
async function withKeyFile(
  body: (key: { dir: string; path: string }) => Promise<void>,
  contents = KEY,
): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-arc-"));
  try {
    const path = join(dir, "agent.key");
    await fsp.writeFile(path, contents);
    await body({ dir, path });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The 401 challenge an Arc agent answers a request without Authorization with. */
function challenge(realm: string | null): Response {
  return new Response(null, { status: 401, headers: realm === null ? {} : { "www-authenticate": realm } });
}

const token = (accessToken = "arc-token", fields: Record<string, unknown> = {}) =>
  Response.json({ access_token: accessToken, expires_in: 3600, ...fields });

/**
 * A fake Arc agent: a request without Authorization gets the challenge `Basic realm=<path>`,
 * one with Authorization gets `answer`.
 */
function agent(path: string, answer: (request: Request) => Response = () => token()) {
  return recorder((request) =>
    request.headers.has("authorization") ? answer(request) : challenge(`Basic realm=${path}`)
  );
}

/** An Arc client with a counting file system over the real one and the given token directory. */
function arcClient(
  options: ManagedIdentityClientOptions,
  dir: string,
  fs: ArcKeyFileSystem = counting(),
  internal: InternalOptions = {},
) {
  return testClient({ env: ENV, ...options }, { arcTokenDirectory: dir, arcFileSystem: fs, ...internal });
}

/** Asserts the challenge request: GET, the query, and Metadata as the only header. */
function assertFirstRequest(seen: Seen, query: readonly [string, string][], endpoint = ENDPOINT): void {
  assert.equal(seen.method, "GET");
  assert.equal(endpointOf(seen), endpoint);
  assert.deepEqual([...seen.url.searchParams], query);
  assert.deepEqual([...seen.headers], [["metadata", "true"]]);
  assert.equal(seen.headers.get("authorization"), null);
  assert.equal(seen.body, "");
}

/** Asserts the second request: the same as the first plus Authorization: Basic <key>. */
function assertSecondRequest(seen: Seen, first: Seen, key = KEY): void {
  assert.equal(seen.method, "GET");
  assert.equal(seen.url.href, first.url.href);
  assert.deepEqual([...seen.headers], [["authorization", `Basic ${key}`], ["metadata", "true"]]);
  assert.equal(seen.body, "");
}

describe("Azure Arc requests", () => {
  test("new ManagedIdentityClient() detects AzureArc from IDENTITY_ENDPOINT and IMDS_ENDPOINT", () => {
    assert.equal(testClient({ env: ENV }).source, "AzureArc");
  });

  test("acquireToken() sends the key file contents as Basic authorization on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const redirects: string[] = [];
      const fake = agent(path, (request) => {
        redirects.push(request.redirect);
        return token();
      });
      const fs = counting();
      const client = arcClient({ fetch: fake.fetch }, dir, fs);
      const result = await client.acquireToken(VAULT);
      assert.equal(fake.seen.length, 2);
      const [first, second] = [fake.seen[0]!, fake.seen[1]!];
      assertFirstRequest(first, [["api-version", "2020-06-01"], ["resource", VAULT]]);
      assert.equal(first.url.search, "?api-version=2020-06-01&resource=https%3A%2F%2Fvault.azure.net");
      assertSecondRequest(second, first);
      assert.deepEqual(redirects, ["manual"]);
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.openCalls, [path]);
      assert.deepEqual(fs.closeCalls, [path]);
      assert.equal(result.accessToken, "arc-token");
      assert.equal(result.source, "AzureArc");
      assert.equal(result.fromCache, false);
    });
  });

  test("acquireToken() serves the second call from the cache without a request on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path);
      const fs = counting();
      const client = arcClient({ fetch: fake.fetch }, dir, fs);
      await client.acquireToken(VAULT);
      const again = await client.acquireToken(VAULT);
      assert.equal(again.fromCache, true);
      assert.equal(again.accessToken, "arc-token");
      assert.equal(fake.seen.length, 2);
      assert.equal(fs.openCalls.length, 1);
    });
  });

  test("acquireToken() sends the key file contents raw, trailing newline included, on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const authorizations: (string | null)[] = [];
      const fake = agent(path, (request) => {
        authorizations.push(request.headers.get("authorization"));
        return token();
      });
      await arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT);
      // Headers strip trailing whitespace from a value; the contents are otherwise untouched.
      assert.deepEqual(authorizations, [`Basic ${KEY}`]);
    }, `${KEY}\n`);
  });

  const identities: readonly [string, ManagedIdentityClientOptions, string, string, Record<string, string>][] = [
    ["client_id for a client ID", { clientId: CLIENT_ID }, "client_id", CLIENT_ID, { client_id: CLIENT_ID }],
    ["object_id for an object ID", { objectId: OBJECT_ID }, "object_id", OBJECT_ID, { object_id: OBJECT_ID }],
    ["msi_res_id for a resource ID", { resourceId: RESOURCE_ID }, "msi_res_id", RESOURCE_ID, {
      msi_res_id: RESOURCE_ID,
    }],
  ];
  for (const [label, options, parameter, value, echo] of identities) {
    test(`acquireToken() sends ${label} in both requests on Azure Arc`, async () => {
      await withKeyFile(async ({ dir, path }) => {
        const fake = agent(path, () => token("arc-user-token", echo));
        const result = await arcClient({ fetch: fake.fetch, ...options }, dir).acquireToken(VAULT);
        assert.equal(fake.seen.length, 2);
        assertFirstRequest(fake.seen[0]!, [["api-version", "2020-06-01"], ["resource", VAULT], [parameter, value]]);
        assertSecondRequest(fake.seen[1]!, fake.seen[0]!);
        assert.equal(result.accessToken, "arc-user-token");
      });
    });
  }

  test("acquireToken() uses http://127.0.0.1:40342/metadata/identity/oauth2/token when IDENTITY_ENDPOINT is unset on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const asked: string[] = [];
      const fake = agent(path);
      const client = testClient({ env: {}, fetch: fake.fetch }, {
        fileExists: (file) => {
          asked.push(file);
          return true;
        },
        arcTokenDirectory: dir,
        arcFileSystem: counting(),
      });
      assert.equal(client.source, "AzureArc");
      assert.deepEqual(asked, ["/opt/azcmagent/bin/himds"]);
      await client.acquireToken(VAULT);
      assert.equal(fake.seen.length, 2);
      assertFirstRequest(
        fake.seen[0]!,
        [["api-version", "2020-06-01"], ["resource", VAULT]],
        "http://127.0.0.1:40342/metadata/identity/oauth2/token",
      );
      assertSecondRequest(fake.seen[1]!, fake.seen[0]!);
    });
  });

  test("acquireToken() removes a trailing /.default from the resource on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path);
      const result = await arcClient({ fetch: fake.fetch }, dir).acquireToken(`${VAULT}/.default`);
      assert.equal(fake.seen.length, 2);
      for (const seen of fake.seen) assert.equal(seen.url.searchParams.get("resource"), VAULT);
      assert.equal(result.resource, VAULT);
    });
  });

  test("acquireToken() reads the key file again for each new token on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path);
      const fs = counting();
      const client = arcClient({ fetch: fake.fetch }, dir, fs);
      await client.acquireToken(VAULT);
      await fsp.writeFile(path, "ROTATED-KEY-5678");
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(fake.seen.length, 4);
      assert.equal(fake.seen[1]!.headers.get("authorization"), `Basic ${KEY}`);
      assert.equal(fake.seen[2]!.headers.get("authorization"), null);
      assert.equal(fake.seen[3]!.headers.get("authorization"), "Basic ROTATED-KEY-5678");
      assert.equal(fs.openCalls.length, 2);
    });
  });

  test("acquireToken() reads the key from %ProgramData% on Windows for Azure Arc", async () => {
    const path = "D:\\Data\\AzureConnectedMachineAgent\\Tokens\\abc.key";
    const bytes = new TextEncoder().encode(KEY);
    const stat = { size: bytes.length, dev: 1, ino: 1, isFile: () => true, isSymbolicLink: () => false };
    const fs = counting({
      lstat: () => Promise.resolve(stat),
      open: () =>
        Promise.resolve({
          stat: () => Promise.resolve(stat),
          read: (buffer: Uint8Array, offset: number, length: number, position: number) => {
            const chunk = bytes.subarray(position, position + length);
            buffer.set(chunk, offset);
            return Promise.resolve({ bytesRead: chunk.length });
          },
          close: () => Promise.resolve(),
        }),
    });
    const fake = agent(path);
    const client = testClient({ env: { ...ENV, ProgramData: "D:\\Data" }, fetch: fake.fetch }, {
      platform: "win32",
      arcFileSystem: fs,
    });
    const result = await client.acquireToken(VAULT);
    assert.deepEqual(fs.lstatCalls, [path]);
    assert.deepEqual(fs.openCalls, [path]);
    assert.equal(fake.seen.length, 2);
    assertSecondRequest(fake.seen[1]!, fake.seen[0]!);
    assert.equal(result.accessToken, "arc-token");
  });
});

describe("Azure Arc challenge failures", () => {
  const firstAnswers: readonly [string, () => Response, number][] = [
    ["200 with a token", () => token("unchallenged-token"), 200],
    ["500", () => Response.json({ error: "server_error" }, { status: 500 }), 500],
    ["400", () => Response.json({ error: "invalid_request", error_description: "bad resource" }, { status: 400 }), 400],
    ["404", () => Response.json({ error: "identity_not_found" }, { status: 404 }), 404],
  ];
  for (const [label, answer, status] of firstAnswers) {
    test(`acquireToken() refuses a first answer of ${label} with request_failed on Azure Arc`, async () => {
      await withKeyFile(async ({ dir }) => {
        const fake = recorder(answer);
        const fs = counting();
        const error = await rejectsFromArc(
          arcClient({ fetch: fake.fetch }, dir, fs).acquireToken(VAULT),
          "request_failed",
        );
        assert.equal(error.status, status);
        assert.match(error.message, new RegExp(`401 challenge: it answered ${status}`));
        assert.equal(error.endpoint, ENDPOINT);
        // The challenge request is never retried, and nothing is read.
        assert.equal(fake.seen.length, 1);
        assert.deepEqual(fs.lstatCalls, []);
        assert.deepEqual(fs.openCalls, []);
        assertNotShown(error, "unchallenged-token");
      });
    });
  }

  test("acquireToken() keeps the endpoint's error code from a first answer on Azure Arc", async () => {
    await withKeyFile(async ({ dir }) => {
      const fake = recorder(() =>
        Response.json({ error: "invalid_request", error_description: "bad resource" }, { status: 400 })
      );
      const error = await rejectsFromArc(arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT), "request_failed");
      assert.equal(error.error, "invalid_request");
      assert.equal(error.errorDescription, "bad resource");
    });
  });

  /** Hostile challenges, built from the temporary token directory `dir`. */
  const hostile: readonly [string, (dir: string) => string | null, string, string?][] = [
    ["no WWW-Authenticate header", () => null, "arc_challenge_missing"],
    ["an empty WWW-Authenticate header", () => "", "arc_challenge_missing"],
    ["a header without Basic realm=", () => 'Bearer realm="arc"', "arc_challenge_invalid"],
    ["a quoted realm", (dir) => `Basic realm="${dir}/agent.key"`, "arc_challenge_invalid"],
    ["a .. segment", (dir) => `Basic realm=${dir}/../${dir.split("/").pop()}/agent.key`, "arc_key_invalid_directory"],
    ["a .. segment to /etc", (dir) => `Basic realm=${dir}/../../../etc/x.key`, "arc_key_invalid_directory"],
    ["a relative path", () => "Basic realm=tokens/agent.key", "arc_key_invalid_directory"],
    ["another directory", () => "Basic realm=/tmp/agent.key", "arc_key_invalid_directory"],
    [
      "the default directory, not the configured one",
      () => "Basic realm=/var/opt/azcmagent/tokens/a.key",
      "arc_key_invalid_directory",
    ],
    ["a look-alike directory", (dir) => `Basic realm=${dir}-link/agent.key`, "arc_key_invalid_directory"],
    ["a subdirectory", (dir) => `Basic realm=${dir}/sub/agent.key`, "arc_key_invalid_directory"],
    ["a name like x.key.txt", (dir) => `Basic realm=${dir}/x.key.txt`, "arc_key_invalid_name"],
    ["a name like x.txt", (dir) => `Basic realm=${dir}/x.txt`, "arc_key_invalid_name"],
    ["a valid path on darwin", (dir) => `Basic realm=${dir}/agent.key`, "arc_platform_unsupported", "darwin"],
  ];
  for (const [label, header, code, platform] of hostile) {
    test(`acquireToken() refuses a challenge with ${label} with ${code} and reads nothing on Azure Arc`, async () => {
      await withKeyFile(async ({ dir }) => {
        // Every refused path names a readable file with the key, so only the validation keeps it unread.
        await fsp.mkdir(join(dir, "sub"));
        for (const name of ["x.key.txt", "x.txt", "sub/agent.key"]) await fsp.writeFile(join(dir, name), KEY);
        const fake = recorder(() => challenge(header(dir)));
        const fs = counting();
        const client = arcClient({ fetch: fake.fetch }, dir, fs, platform ? { platform } : {});
        assert.equal(client.source, "AzureArc");
        const error = await rejectsFromArc(client.acquireToken(VAULT), code);
        assert.equal(fake.seen.length, 1);
        assert.deepEqual(fs.lstatCalls, []);
        assert.deepEqual(fs.openCalls, []);
        assertNotShown(error, KEY);
      });
    });
  }

  test("acquireToken() reports an unreadable key file as arc_key_permission_denied with the himds advice on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path);
      const fs = counting({
        lstat: fsp.lstat,
        open: (p) => Promise.reject(Object.assign(new Error(`EACCES: open '${p}'`), { code: "EACCES" })),
      });
      const error = await rejectsFromArc(
        arcClient({ fetch: fake.fetch }, dir, fs).acquireToken(VAULT),
        "arc_key_permission_denied",
      );
      assert.match(error.message, /"himds" group/);
      assert.ok(error.message.includes(path));
      assert.equal(fake.seen.length, 1);
      assertNotShown(error, KEY);
    });
  });

  test("acquireToken() refuses a key file over 4096 bytes without reading it on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path);
      const fs = counting();
      const error = await rejectsFromArc(
        arcClient({ fetch: fake.fetch }, dir, fs).acquireToken(VAULT),
        "arc_key_too_large",
      );
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.openCalls, []);
      assert.equal(fake.seen.length, 1);
      assertNotShown(error, KEY);
    }, `${KEY}\n`.repeat(200));
  });

  test("acquireToken() does not answer a second 401 with a third request on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = recorder(() => challenge(`Basic realm=${path}`));
      const fs = counting();
      const error = await rejectsFromArc(
        arcClient({ fetch: fake.fetch }, dir, fs).acquireToken(VAULT),
        "request_failed",
      );
      assert.equal(error.status, 401);
      assert.equal(fake.seen.length, 2);
      assert.equal(fs.openCalls.length, 1);
      assertNotShown(error, KEY);
    });
  });

  test("acquireToken() does not cache a failed challenge on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      let hostile = true;
      const fake = recorder((request) =>
        request.headers.has("authorization")
          ? token()
          : challenge(hostile ? "Basic realm=/tmp/a.key" : `Basic realm=${path}`)
      );
      const client = arcClient({ fetch: fake.fetch }, dir);
      await rejectsFromArc(client.acquireToken(VAULT), "arc_key_invalid_directory");
      hostile = false;
      const result = await client.acquireToken(VAULT);
      assert.equal(result.fromCache, false);
      assert.equal(fake.seen.length, 3);
    });
  });
});

describe("Azure Arc user-assigned identity echo", () => {
  const accepted: readonly [string, ManagedIdentityClientOptions, Record<string, string>][] = [
    ["client_id in another case", { clientId: CLIENT_ID.toUpperCase() }, { client_id: CLIENT_ID }],
    ["object_id", { objectId: OBJECT_ID }, { object_id: OBJECT_ID.toUpperCase() }],
    ["msi_res_id", { resourceId: RESOURCE_ID }, { msi_res_id: RESOURCE_ID }],
    ["mi_res_id", { resourceId: RESOURCE_ID }, { mi_res_id: RESOURCE_ID.toLowerCase() }],
  ];
  for (const [label, options, echo] of accepted) {
    test(`acquireToken() accepts a response echoing ${label} on Azure Arc`, async () => {
      await withKeyFile(async ({ dir, path }) => {
        const fake = agent(path, () => token("user-token", echo));
        const client = arcClient({ fetch: fake.fetch, ...options }, dir);
        assert.equal((await client.acquireToken(VAULT)).accessToken, "user-token");
        const again = await client.acquireToken(VAULT);
        assert.equal(again.fromCache, true);
        assert.equal(fake.seen.length, 2);
      });
    });
  }

  const refused: readonly [string, ManagedIdentityClientOptions, Record<string, unknown>][] = [
    ["no echo of a client ID", { clientId: CLIENT_ID }, {}],
    ["no echo of an object ID", { objectId: OBJECT_ID }, {}],
    ["no echo of a resource ID", { resourceId: RESOURCE_ID }, {}],
    ["another client ID", { clientId: CLIENT_ID }, { client_id: "00000000-0000-0000-0000-000000000000" }],
    ["another object ID", { objectId: OBJECT_ID }, { object_id: "00000000-0000-0000-0000-000000000000" }],
    ["another resource ID", { resourceId: RESOURCE_ID }, { msi_res_id: `${RESOURCE_ID}-other` }],
    ["the client ID as object_id", { clientId: CLIENT_ID }, { object_id: CLIENT_ID }],
    ["the resource ID as client_id", { resourceId: RESOURCE_ID }, { client_id: RESOURCE_ID }],
    ["a client ID that is not a string", { clientId: "12345" }, { client_id: 12345 }],
  ];
  for (const [label, options, echo] of refused) {
    test(`acquireToken() fails with identity_mismatch and caches nothing for ${label} on Azure Arc`, async () => {
      await withKeyFile(async ({ dir, path }) => {
        const fake = agent(path, () => token("system-token", echo));
        const client = arcClient({ fetch: fake.fetch, ...options }, dir);
        const error = await rejectsFromArc(client.acquireToken(VAULT), "identity_mismatch");
        assert.equal(error.status, 200);
        assert.match(error.message, /did not return the requested/);
        assertNotShown(error, "system-token");
        assertNotShown(error, KEY);
        assert.equal(fake.seen.length, 2);
        await rejectsFromArc(client.acquireToken(VAULT), "identity_mismatch");
        assert.equal(fake.seen.length, 4);
      });
    });
  }

  test("acquireToken() needs no echo for the system-assigned identity on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path, () => token("system-token", { client_id: "00000000-0000-0000-0000-000000000000" }));
      const result = await arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT);
      assert.equal(result.accessToken, "system-token");
    });
  });
});

describe("Azure Arc errors", () => {
  // retry: false keeps these to the two requests of the challenge whatever the retry policy is.
  test("acquireToken() surfaces a 404 identity_not_found as request_failed on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path, () =>
        Response.json(
          { error: "identity_not_found", error_description: "Identity not found" },
          { status: 404 },
        ));
      const client = arcClient({ fetch: fake.fetch, clientId: CLIENT_ID, retry: false }, dir);
      const error = await rejectsFromArc(client.acquireToken(VAULT), "request_failed");
      assert.equal(error.status, 404);
      assert.equal(error.error, "identity_not_found");
      assert.equal(error.errorDescription, "Identity not found");
      assert.equal(error.endpoint, ENDPOINT);
      assert.match(error.message, /answered 404 \(identity_not_found: Identity not found\)/);
      assert.equal(fake.seen.length, 2);
    });
  });

  const echoes: readonly [string, number, (key: string) => BodyInit, Record<string, string>?][] = [
    [
      "a JSON error_description",
      400,
      (key) => JSON.stringify({ error: "invalid_request", error_description: `Invalid key ${key}` }),
    ],
    ["a JSON error code", 401, (key) => JSON.stringify({ error: key })],
    ["the whole header in plain text", 500, (key) => `Authorization: Basic ${key} was refused`],
    ["an HTML page", 502, (key) => `<html><body><p>Bad key: ${key}</p></body></html>`, { "content-type": "text/html" }],
  ];
  for (const [label, status, body, headers] of echoes) {
    test(`acquireToken() keeps the key out of the error when a ${status} body echoes it in ${label} on Azure Arc`, async () => {
      await withKeyFile(async ({ dir, path }) => {
        const fake = agent(path, (request) => {
          const sent = request.headers.get("authorization")!.slice("Basic ".length);
          return new Response(body(sent), { status, ...(headers ? { headers } : {}) });
        });
        const client = arcClient({ fetch: fake.fetch, retry: false }, dir);
        const error = await rejectsFromArc(client.acquireToken(VAULT), "request_failed");
        assert.equal(error.status, status);
        assertNotShown(error, KEY);
      });
    });
  }

  test("acquireToken() keeps a key file with a trailing newline out of an echoing error body on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path, (request) =>
        Response.json(
          { error: "invalid_request", error_description: `Invalid ${request.headers.get("authorization")}` },
          { status: 400 },
        ));
      const error = await rejectsFromArc(arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT), "request_failed");
      assertNotShown(error, KEY);
    }, `${KEY}\n`);
  });

  test("acquireToken() keeps the key out of an invalid_response when a 200 body echoes it on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path, (request) => new Response(`Unexpected ${request.headers.get("authorization")}`));
      const error = await rejectsFromArc(arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT), "invalid_response");
      assertNotShown(error, KEY);
    });
  });

  test("acquireToken() keeps the key out of a redirect error on Azure Arc", async () => {
    await withKeyFile(async ({ dir, path }) => {
      const fake = agent(path, () => new Response(null, { status: 302, headers: { location: `http://x/?k=${KEY}` } }));
      const error = await rejectsFromArc(arcClient({ fetch: fake.fetch }, dir).acquireToken(VAULT), "request_failed");
      assert.equal(error.status, 302);
      assertNotShown(error, KEY);
    });
  });
});
