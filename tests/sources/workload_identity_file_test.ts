/**
 * Workload identity's token file (docs/sources.md): its rotation on an injected clock, every way it
 * can be unusable, and a read that hangs. Token files live in temporary directories; every endpoint
 * is a fake handler given as the client's `fetch`, so nothing leaves the process.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { type ManagedIdentityError, TokenCache } from "../../mod.ts";
import type { FileHandleView } from "../../src/file_read.ts";
import type { InternalOptions } from "../../src/internal.ts";
import type { TokenFileSystem } from "../../src/sources/workload_identity.ts";
import { endpointOf, onlyRequest, recorder, testClient } from "../helpers/fake.ts";
import { counting, rejectsWith } from "../helpers/checks.ts";
import { within } from "../helpers/faults.ts";
import { assertNoLeak, renderings } from "../helpers/leaks.ts";
import {
  ASSERTION,
  expectedForm,
  form,
  MINUTE,
  NOW,
  ROTATED,
  SECOND,
  token,
  VAULT,
  wiClient,
  wiEnv,
  withTokenFile,
} from "../helpers/workload_identity.ts";

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
      assert.equal(files.openCalls.length, 1, "the file was read again before 5 minutes");

      now = NOW + 5 * MINUTE;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.openCalls.length, 2);
      now = NOW + 9 * MINUTE;
      await client.acquireToken(VAULT, { forceRefresh: true });
      assert.equal(files.openCalls.length, 2, "the new contents are kept for 5 minutes from their read");

      const sent = fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_assertion"));
      assert.deepEqual(sent, [ASSERTION, ASSERTION, ASSERTION, ROTATED, ROTATED]);
      assert.deepEqual(files.openCalls, [path, path]);
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
      assert.equal(files.openCalls.length, 2, "the file read 'in the future' was used again");
      const sent = fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_assertion"));
      assert.deepEqual(sent, [ASSERTION, ROTATED]);
    });
  });

  test("acquireToken() keeps the tenant, authority host and token file of construction: the cache key names them", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder((_request, index) => token(`token-${index}`));
      const env: Record<string, string | undefined> = { ...wiEnv(path) };
      const cache = new TokenCache();
      const client = testClient({ env, fetch: fake.fetch, cache }, { tokenFileSystem: counting() });
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
      assert.equal(files.openCalls.length, 3);
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
      const denied = counting({
        open: (p) =>
          Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: "EACCES" })),
      });
      await assertRefused(path, /cannot be read by this process/, { tokenFileSystem: denied });
      assert.deepEqual(denied.openCalls, [path]);
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
      assert.deepEqual(files.openCalls, [path, path]);
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
