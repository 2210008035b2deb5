/**
 * readArcKey() (src/arc_key.ts): reading the Azure Arc key file, a key file swapped between the
 * check and the open, a read bounded in time, and a swapper racing the client's requests. The
 * challenge's validation is in tests/arc_challenge_test.ts.
 */

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { ManagedIdentityError } from "../mod.ts";
import { ARC_MAX_KEY_BYTES, type ArcKeyFileSystem, type ArcKeyHandle, readArcKey } from "../src/arc_key.ts";
import { counting, type CountingFileSystem, deferred, rejectsWith } from "./helpers/checks.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { within } from "./helpers/faults.ts";
import { releaseStalls, stall } from "./helpers/stall.ts";
import {
  arcError,
  assertKeyNotShown,
  BOUNDS,
  errnoError,
  fileStat,
  KEY,
  WINDOWS_TOKENS,
  withTempDir,
} from "./helpers/arc_key.ts";

// The key file opens that never return hold the event loop until the file is done.
after(releaseStalls);

describe("readArcKey()", () => {
  test("readArcKey() returns the key file's contents raw", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, `${KEY}\n`);
      const fs = counting();
      assert.equal(await readArcKey(path, "linux", () => fs, BOUNDS), `${KEY}\n`);
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.openCalls, [path]);
      assert.deepEqual(fs.closeCalls, [path]);
    });
  });

  test("readArcKey() checks lstat, opens once, checks the open handle, reads it and closes it", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const order: string[] = [];
      const fs: ArcKeyFileSystem = {
        lstat: (p) => (order.push("lstat"), fsp.lstat(p)),
        open: async (p, flags) => {
          order.push("open");
          const handle = await fsp.open(p, flags);
          return {
            stat: () => (order.push("stat"), handle.stat()),
            read: (
              buffer,
              offset,
              length,
              position,
            ) => (order.push("read"), handle.read(buffer, offset, length, position)),
            close: () => (order.push("close"), handle.close()),
          };
        },
      };
      assert.equal(await readArcKey(path, "linux", () => fs, BOUNDS), KEY);
      assert.deepEqual(order, ["lstat", "open", "stat", "read", "read", "close"]);
    });
  });

  test("readArcKey() opens the key file with O_RDONLY | O_NOFOLLOW | O_NONBLOCK", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const fs = counting();
      assert.equal(await readArcKey(path, "linux", () => fs, BOUNDS), KEY);
      assert.deepEqual(fs.openFlags, [constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)]);
      assert.deepEqual(fs.closeCalls, [path]);
    });
  });

  test("readArcKey() refuses a 4097-byte key file with arc_key_too_large and never reads it", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "big.key");
      await fsp.writeFile(path, KEY.repeat(Math.ceil(4097 / KEY.length)).slice(0, 4097));
      assert.equal((await fsp.stat(path)).size, 4097);
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), (error) => {
        arcError("arc_key_too_large", `"${path}"`, `at most ${ARC_MAX_KEY_BYTES} bytes`, "4097")(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.openCalls, []);
    });
  });

  test("readArcKey() accepts a key file of exactly 4096 bytes", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "max.key");
      const contents = "k".repeat(4096);
      await fsp.writeFile(path, contents);
      assert.equal(ARC_MAX_KEY_BYTES, 4096);
      assert.equal(await readArcKey(path, "linux", () => counting(), BOUNDS), contents);
    });
  });

  test("readArcKey() reports a missing key file as arc_key_not_found", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "missing.key");
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), arcError("arc_key_not_found", `"${path}"`));
      assert.deepEqual(fs.openCalls, []);
    });
  });

  test("readArcKey() refuses a symlink to a valid key file with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, "real.key");
      const link = join(dir, "link.key");
      await fsp.writeFile(target, KEY);
      await fsp.symlink(target, link);
      const fs = counting();
      await assert.rejects(readArcKey(link, "linux", () => fs, BOUNDS), (error) => {
        arcError("arc_key_invalid_file", `"${link}"`, "regular file")(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [link]);
      assert.deepEqual(fs.openCalls, []);
    });
  });

  test("readArcKey() refuses a directory named x.key with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "x.key");
      await fsp.mkdir(path);
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), arcError("arc_key_invalid_file", `"${path}"`));
      assert.deepEqual(fs.openCalls, []);
    });
  });

  test("readArcKey() refuses an empty key file with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "empty.key");
      await fsp.writeFile(path, "");
      await assert.rejects(
        readArcKey(path, "linux", () => counting(), BOUNDS),
        arcError("arc_key_invalid_file", "empty"),
      );
    });
  });

  test("readArcKey() reports EACCES from lstat as arc_key_permission_denied with the himds advice on linux", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    const fs = counting({
      lstat: () => Promise.reject(errnoError("EACCES", "lstat", path)),
      open: fsp.open,
    });
    await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), (error) => {
      arcError("arc_key_permission_denied", `"${path}"`, "permission denied", '"himds" group')(error);
      assert.equal((error as Error & { cause: { code: string } }).cause.code, "EACCES");
      return true;
    });
    assert.deepEqual(fs.openCalls, []);
  });

  test("readArcKey() reports EACCES from open as arc_key_permission_denied with the himds advice on linux", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const fs = counting({
        lstat: fsp.lstat,
        open: (p) => Promise.reject(errnoError("EACCES", "open", p)),
      });
      await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), (error) => {
        arcError("arc_key_permission_denied", `"${path}"`, '"himds" group')(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.openCalls, [path]);
    });
  });

  test("readArcKey() reports EACCES on win32 with the Windows advice, not himds", async () => {
    const path = `${WINDOWS_TOKENS}\\abc.key`;
    const fs = counting({ lstat: () => Promise.reject(errnoError("EACCES", "lstat", path)) });
    await assert.rejects(readArcKey(path, "win32", () => fs, BOUNDS), (error) => {
      arcError("arc_key_permission_denied", `"${path}"`, "administrator", "Hybrid agent extension applications")(
        error,
      );
      assert.doesNotMatch((error as Error).message, /himds/);
      return true;
    });
  });

  test("readArcKey() reports EPERM as arc_key_permission_denied", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    const fs = counting({ lstat: () => Promise.reject(errnoError("EPERM", "lstat", path)) });
    await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), arcError("arc_key_permission_denied", '"himds"'));
  });

  test("readArcKey() reports another file error as arc_key_unreadable with its code", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    const fs = counting({
      lstat: () => Promise.resolve(fileStat(KEY.length)),
      open: () =>
        Promise.resolve({
          stat: () => Promise.resolve(fileStat(KEY.length)),
          read: () => Promise.reject(errnoError("EIO", "read", path)),
          close: () => Promise.resolve(),
        }),
    });
    await assert.rejects(
      readArcKey(path, "linux", () => fs, BOUNDS),
      arcError("arc_key_unreadable", `"${path}"`, "EIO"),
    );
  });

  test("readArcKey() reports a runtime without node:fs as arc_key_unreadable", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    await assert.rejects(
      readArcKey(path, "linux", () => {
        throw new Error('This runtime cannot load the built-in module "node:fs/promises"');
      }, BOUNDS),
      arcError("arc_key_unreadable", `"${path}"`, "node:fs/promises"),
    );
  });

  test("readArcKey() keeps the key file's contents out of every error", async () => {
    await withTempDir(async (dir) => {
      const secret = join(dir, "secret.key");
      await fsp.writeFile(secret, KEY);
      const big = join(dir, "big.key");
      await fsp.writeFile(big, `${KEY}\n`.repeat(200));
      const link = join(dir, "link.key");
      await fsp.symlink(secret, link);
      const attempts: readonly [string, ArcKeyFileSystem][] = [
        [big, counting()],
        [link, counting()],
        [secret, counting({ lstat: fsp.lstat, open: (p) => Promise.reject(errnoError("EACCES", "open", p)) })],
        [secret, counting({ lstat: fsp.lstat, open: (p) => Promise.reject(errnoError("EIO", "open", p)) })],
      ];
      for (const [path, fs] of attempts) {
        await assert.rejects(readArcKey(path, "linux", () => fs, BOUNDS), (error) => {
          assert.ok(error instanceof ManagedIdentityError);
          assertKeyNotShown(error);
          return true;
        });
      }
    });
  });
});

// Issue 9, item 2: whatever the key file's path names between the lstat and the read (a
// symlink out of the directory, a FIFO, a directory, another file), the read opens it once
// without following a link or blocking, checks the open handle, and is bounded in time.

/** What a file outside the token directory holds: it must never be sent or returned. */
const OUTSIDE = "OUTSIDE-SECRET-NOT-A-KEY-9876";

/** `false` when mkfifo(1) can make FIFOs here, else why the FIFO tests are skipped. */
const NO_FIFO: false | string = process.platform !== "win32" && !spawnSync("mkfifo", ["--help"]).error
  ? false
  : "mkfifo is not available on this platform (Windows has no FIFOs): the FIFO cases are skipped";

/** Makes a FIFO at `path`. */
function mkfifo(path: string): void {
  const made = spawnSync("mkfifo", [path]);
  assert.equal(made.status, 0, `mkfifo ${path} failed: ${made.error ?? made.stderr}`);
}

/**
 * Opens the FIFO at `path` for writing without blocking and closes it, which ends any read
 * stuck opening it (the unsafe lstat-then-readFile does that), so a failing test still lets
 * the process exit.
 */
async function releaseFifo(path: string): Promise<void> {
  try {
    await (await fsp.open(path, constants.O_WRONLY | constants.O_NONBLOCK)).close();
  } catch {
    // Nobody is reading it, or it is gone.
  }
}

/** Asserts a refusal with `code` that shows neither the key nor the outside file's contents. */
function refusedWith(code: string, ...fragments: string[]): (error: unknown) => true {
  return (error) => {
    arcError(code, ...fragments)(error);
    assertKeyNotShown(error);
    assertKeyNotShown(error, OUTSIDE);
    return true;
  };
}

/**
 * The real file system, except that `swap` replaces the file at the path after lstat has seen
 * it and before anything opens it: the race, made deterministic. `opened` lists the opens that
 * succeeded.
 */
function swappedAfterLstat(swap: (path: string) => Promise<void>): ArcKeyFileSystem & { opened: string[] } {
  const opened: string[] = [];
  return {
    ...fsp,
    opened,
    lstat: async (path) => {
      const seen = await fsp.lstat(path);
      await swap(path);
      return seen;
    },
    open: async (path, flags) => {
      const handle = await fsp.open(path, flags);
      opened.push(path);
      return handle;
    },
  };
}

/** Puts what `make` creates at a temporary name in place of `path`, by rename (or by removal, then rename). */
async function replaceWith(path: string, make: (temporary: string) => Promise<void>): Promise<void> {
  const temporary = `${path}.swap-${Math.random().toString(36).slice(2)}`;
  await make(temporary);
  try {
    await fsp.rename(temporary, path);
  } catch {
    // rename() cannot put a directory over a file or a file over a directory.
    await fsp.rm(path, { recursive: true, force: true });
    await fsp.rename(temporary, path);
  }
}

describe("readArcKey() when the key file is swapped between lstat and open", () => {
  /** A token directory with the key file and, beside it, a file the key must never be confused with. */
  async function withSwap(
    swap: (path: string, outside: string) => Promise<void>,
    check: (read: Promise<string>, path: string) => Promise<void>,
  ): Promise<void> {
    await withTempDir(async (root) => {
      const outside = join(root, "outside.txt");
      await fsp.writeFile(outside, OUTSIDE);
      await fsp.mkdir(join(root, "tokens"));
      const path = join(root, "tokens", "agent.key");
      await fsp.writeFile(path, KEY);
      const swapping = swappedAfterLstat((p) => swap(p, outside));
      const fs = counting(swapping);
      try {
        await check(within(2000, readArcKey(path, "linux", () => fs, BOUNDS)), path);
        assert.deepEqual(fs.openCalls, [path]);
        assert.deepEqual(fs.closeCalls, swapping.opened, "every handle opened was closed");
      } finally {
        await releaseFifo(path);
      }
    });
  }

  test("readArcKey() refuses a symlink to a file outside the directory swapped in after lstat with arc_key_invalid_file", async () => {
    await withSwap(
      (path, outside) => replaceWith(path, (temporary) => fsp.symlink(outside, temporary)),
      (read, path) => assert.rejects(read, refusedWith("arc_key_invalid_file", `"${path}"`, "regular file")),
    );
  });

  test("readArcKey() refuses a FIFO swapped in after lstat with arc_key_invalid_file, without blocking", {
    skip: NO_FIFO,
  }, async () => {
    await withSwap(
      (path) => replaceWith(path, (temporary) => Promise.resolve(mkfifo(temporary))),
      (read, path) => assert.rejects(read, refusedWith("arc_key_invalid_file", `"${path}"`)),
    );
  });

  test("readArcKey() refuses a directory swapped in after lstat with arc_key_invalid_file", async () => {
    await withSwap(
      (path) => replaceWith(path, (temporary) => fsp.mkdir(temporary)),
      (read, path) => assert.rejects(read, refusedWith("arc_key_invalid_file", `"${path}"`)),
    );
  });

  test("readArcKey() refuses another regular file renamed in after lstat with arc_key_invalid_file", async () => {
    await withSwap(
      (path) => replaceWith(path, (temporary) => fsp.writeFile(temporary, OUTSIDE)),
      (read, path) => assert.rejects(read, refusedWith("arc_key_invalid_file", `"${path}"`, "replaced")),
    );
  });

  test("readArcKey() refuses the key file grown past 4096 bytes after lstat with arc_key_too_large", async () => {
    await withSwap(
      (path) => fsp.appendFile(path, OUTSIDE.repeat(200)),
      (read, path) =>
        assert.rejects(read, refusedWith("arc_key_too_large", `"${path}"`, `at most ${ARC_MAX_KEY_BYTES} bytes`)),
    );
  });

  test("readArcKey() reads at most 4097 bytes and refuses a key file grown after fstat with arc_key_too_large", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const asked: number[] = [];
      const fs = counting({
        lstat: fsp.lstat,
        open: async (p, flags) => {
          const handle = await fsp.open(p, flags);
          return {
            stat: async () => {
              const seen = await handle.stat();
              await fsp.appendFile(p, OUTSIDE.repeat(1000));
              return seen;
            },
            read: (buffer, offset, length, position) => {
              asked.push(length);
              return handle.read(buffer, offset, length, position);
            },
            close: () => handle.close(),
          };
        },
      });
      await assert.rejects(
        readArcKey(path, "linux", () => fs, BOUNDS),
        refusedWith("arc_key_too_large", `"${path}"`, `more than ${ARC_MAX_KEY_BYTES}`),
      );
      assert.ok(asked.length > 0 && Math.max(...asked) <= ARC_MAX_KEY_BYTES + 1, `asked ${asked}`);
      assert.deepEqual(fs.closeCalls, [path]);
    });
  });

  test("readArcKey() refuses a file whose open handle is not the inode lstat saw (no O_NOFOLLOW on Windows)", async () => {
    const path = `${WINDOWS_TOKENS}\\abc.key`;
    const fs = counting({
      lstat: () => Promise.resolve(fileStat(KEY.length)),
      open: () =>
        Promise.resolve({
          stat: () => Promise.resolve({ ...fileStat(OUTSIDE.length), ino: 2 }),
          read: () => Promise.reject(new Error("must not read another file")),
          close: () => Promise.resolve(),
        }),
    });
    await assert.rejects(readArcKey(path, "win32", () => fs, BOUNDS), refusedWith("arc_key_invalid_file", "replaced"));
    assert.deepEqual(fs.closeCalls, [path]);
  });

  const refusals: readonly [string, string][] = [
    ["ELOOP", "a symbolic link"],
    ["EISDIR", "a directory"],
    ["ENXIO", "a socket"],
  ];
  for (const [code, what] of refusals) {
    test(`readArcKey() reports ${code} from open (${what}) as arc_key_invalid_file`, async () => {
      const path = "/var/opt/azcmagent/tokens/a.key";
      const fs = counting({
        lstat: () => Promise.resolve(fileStat(KEY.length)),
        open: () => Promise.reject(errnoError(code, "open", path)),
      });
      await assert.rejects(
        readArcKey(path, "linux", () => fs, BOUNDS),
        refusedWith("arc_key_invalid_file", `"${path}"`),
      );
    });
  }
});

describe("readArcKey() is bounded in time", () => {
  const path = "/var/opt/azcmagent/tokens/a.key";
  const neverOpens = (): CountingFileSystem =>
    counting({ lstat: () => Promise.resolve(fileStat(KEY.length)), open: () => stall() });

  test("readArcKey() ends with timeout when open never settles", async () => {
    const started = Date.now();
    await assert.rejects(
      readArcKey(path, "linux", neverOpens, { timeoutMs: 50 }),
      refusedWith("timeout", `reading the key file "${path}" took longer than 50 ms`),
    );
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
  });

  test("readArcKey() ends with aborted when the caller aborts", async () => {
    const controller = new AbortController();
    const read = readArcKey(path, "linux", neverOpens, { signal: controller.signal, timeoutMs: 15_000 });
    setTimeout(() => controller.abort(), 10);
    await assert.rejects(read, refusedWith("aborted", `"${path}"`));
  });

  test("readArcKey() closes a handle that opens after the time ran out", async () => {
    const late = deferred<ArcKeyHandle>();
    const fs = counting({ lstat: () => Promise.resolve(fileStat(KEY.length)), open: () => late.promise });
    await assert.rejects(readArcKey(path, "linux", () => fs, { timeoutMs: 20 }), refusedWith("timeout"));
    late.resolve({
      stat: () => Promise.resolve(fileStat(KEY.length)),
      read: () => Promise.reject(new Error("must not read")),
      close: () => Promise.resolve(),
    });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(fs.closeCalls, [path]);
  });
});

describe("Azure Arc key file races through the client", () => {
  const ENV = { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token", IMDS_ENDPOINT: "x" };
  const VAULT = "https://vault.azure.net";

  /** A fake agent: the challenge names `path`; each Authorization sent is recorded in `sent`. */
  function agent(path: string) {
    const sent: string[] = [];
    const fake = recorder((request) => {
      const authorization = request.headers.get("authorization");
      if (authorization === null) {
        return new Response(null, { status: 401, headers: { "www-authenticate": `Basic realm=${path}` } });
      }
      sent.push(authorization);
      return Response.json({ access_token: "arc-token", expires_in: 3600 });
    });
    return { fetch: fake.fetch, sent };
  }

  /** The outcome of a call: "ok" or its error code; fails (rather than hangs) after 2 s, within bun's 5 s per test. */
  const outcome = (call: Promise<unknown>): Promise<string> =>
    within(2000, call.then(() => "ok", (error: ManagedIdentityError) => error.code ?? String(error)));

  test("acquireToken() never sends another file's contents and never hangs while the key file is swapped in a loop", async () => {
    await withTempDir(async (root) => {
      const dir = join(root, "tokens");
      await fsp.mkdir(dir);
      const outside = join(root, "outside.txt");
      await fsp.writeFile(outside, OUTSIDE);
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      // One FIFO outside the directory, hard-linked in each time, so that it can be released at the end.
      const fifo = join(root, "pool.fifo");
      if (NO_FIFO) console.log(`(${NO_FIFO})`);
      else mkfifo(fifo);
      const states: ((temporary: string) => Promise<void>)[] = [
        (temporary) => fsp.writeFile(temporary, KEY),
        (temporary) => fsp.symlink(outside, temporary),
        (temporary) => fsp.writeFile(temporary, KEY),
        (temporary) => fsp.mkdir(temporary),
        (temporary) => fsp.writeFile(temporary, KEY),
        (temporary) => fsp.writeFile(temporary, `${KEY}${OUTSIDE.repeat(200)}`),
        (temporary) => fsp.writeFile(temporary, KEY),
        (temporary) => NO_FIFO ? fsp.writeFile(temporary, KEY) : fsp.link(fifo, temporary),
      ];
      // The swapper stops itself after 20,000 swaps or 2.5 s, whichever comes first.
      let stop = false;
      let swaps = 0;
      const deadline = Date.now() + 2500;
      const swapper = (async () => {
        for (; !stop && swaps < 20_000 && Date.now() < deadline; swaps++) {
          await replaceWith(path, states[swaps % states.length]!).catch(() => {});
        }
      })();
      const { fetch, sent } = agent(path);
      const client = testClient({ env: ENV, fetch, timeoutMs: 1000 }, { arcTokenDirectory: dir });
      const outcomes: string[] = [];
      try {
        for (let call = 0; call < 200; call++) {
          outcomes.push(await outcome(client.acquireToken(VAULT, { forceRefresh: true })));
        }
      } finally {
        stop = true;
        await swapper;
        if (!NO_FIFO) await releaseFifo(fifo);
      }
      const counts: Record<string, number> = {};
      for (const code of outcomes) counts[code] = (counts[code] ?? 0) + 1;
      const summary = `${swaps} swaps; outcomes ${JSON.stringify(counts)}`;
      for (const authorization of sent) {
        assert.ok(!authorization.includes(OUTSIDE), `the outside file was sent as the key (${summary})`);
        assert.equal(authorization, `Basic ${KEY}`, summary);
      }
      const allowed = ["ok", "arc_key_invalid_file", "arc_key_not_found", "arc_key_too_large"];
      assert.deepEqual(Object.keys(counts).filter((code) => !allowed.includes(code)), [], summary);
      assert.ok(swaps > 0 && (counts.ok ?? 0) > 0, summary);
    });
  });

  test("acquireToken() refuses a FIFO key file with arc_key_invalid_file at once, and a later forceRefresh settles", {
    skip: NO_FIFO,
  }, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      mkfifo(path);
      const { fetch, sent } = agent(path);
      const client = testClient({ env: ENV, fetch }, { arcTokenDirectory: dir });
      try {
        const started = Date.now();
        assert.equal(await outcome(client.acquireToken(VAULT)), "arc_key_invalid_file");
        assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
        assert.equal(await outcome(client.acquireToken(VAULT, { forceRefresh: true })), "arc_key_invalid_file");
        await replaceWith(path, (temporary) => fsp.writeFile(temporary, KEY));
        assert.equal(await outcome(client.acquireToken(VAULT, { forceRefresh: true })), "ok");
        assert.deepEqual(sent, [`Basic ${KEY}`]);
      } finally {
        await releaseFifo(path);
      }
    });
  });

  test("acquireToken() ends with timeout when opening the key file hangs, then aborted on the caller's abort, and a later call is not stuck", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      let hang = true;
      const fs = counting({ lstat: fsp.lstat, open: (p, flags) => hang ? stall() : fsp.open(p, flags) });
      const { fetch, sent } = agent(path);
      const client = testClient({ env: ENV, fetch, timeoutMs: 50 }, { arcTokenDirectory: dir, arcFileSystem: fs });

      const started = Date.now();
      const timedOut = await within(2000, rejectsWith(client.acquireToken(VAULT), "timeout", "AzureArc"));
      assert.ok(timedOut.message.includes(`"${path}" took longer than 50 ms`), timedOut.message);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);

      const patient = testClient({ env: ENV, fetch, timeoutMs: 15_000 }, { arcTokenDirectory: dir, arcFileSystem: fs });
      const controller = new AbortController();
      const aborted = patient.acquireToken(VAULT, { signal: controller.signal });
      setTimeout(() => controller.abort(), 10);
      await within(2000, rejectsWith(aborted, "aborted", "AzureArc"));

      hang = false;
      assert.equal(await outcome(client.acquireToken(VAULT, { forceRefresh: true })), "ok");
      assert.equal(await outcome(patient.acquireToken(VAULT, { forceRefresh: true })), "ok");
      assert.deepEqual(sent, [`Basic ${KEY}`, `Basic ${KEY}`]);
    });
  });
});
