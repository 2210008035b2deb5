import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManagedIdentityError } from "../mod.ts";
import {
  ARC_LINUX_TOKEN_DIRECTORY,
  ARC_MAX_KEY_BYTES,
  type ArcKeyFileSystem,
  arcTokenDirectory,
  readArcKey,
  validateArcChallenge,
} from "../src/arc_key.ts";
import { counting, renderings } from "./helpers/checks.ts";

const KEY = "SECRET-KEY-CONTENTS-1234";
const WINDOWS_TOKENS = "C:\\ProgramData\\AzureConnectedMachineAgent\\Tokens";

/** An error shaped like the one node:fs throws for `code`. */
function errnoError(code: string, syscall: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

/** A predicate for assert.throws/rejects: a ManagedIdentityError of `code` from AzureArc whose message has each fragment. */
function arcError(code: string, ...fragments: string[]): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.source, "AzureArc");
    assert.equal(error.name, "ManagedIdentityError");
    for (const fragment of fragments) {
      assert.ok(error.message.includes(fragment), `expected ${JSON.stringify(fragment)} in: ${error.message}`);
    }
    return true;
  };
}

function assertKeyNotShown(error: unknown, key = KEY): void {
  for (const text of renderings(error)) {
    assert.ok(!text.includes(key), `the key file's contents appear in the error: ${text}`);
  }
}

/** Validates `header`, then (only when valid) reads the key through `fs`, as the Arc source does. */
async function challengeThenRead(
  header: string | null,
  platform: string,
  directory: string | undefined,
  fs: ArcKeyFileSystem,
): Promise<string> {
  const path = validateArcChallenge(header, platform, directory);
  return await readArcKey(path, platform, () => fs);
}

/** Runs `body` with a fresh temporary directory, removed afterwards. */
async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-arc-key-"));
  try {
    await body(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

interface Hostile {
  readonly label: string;
  readonly header: string | null;
  readonly platform?: string;
  readonly code: string;
  /** What the message must say: what was expected, what was found. */
  readonly says: readonly string[];
}

const HOSTILE: readonly Hostile[] = [
  {
    label: "a missing header",
    header: null,
    code: "arc_challenge_missing",
    says: ['"WWW-Authenticate: Basic realm=<key file>"', "found none"],
  },
  {
    label: "an empty header",
    header: "",
    code: "arc_challenge_missing",
    says: ['"WWW-Authenticate: Basic realm=<key file>"'],
  },
  {
    label: "a blank header",
    header: "   ",
    code: "arc_challenge_missing",
    says: ['"WWW-Authenticate: Basic realm=<key file>"'],
  },
  {
    label: "a header without Basic realm=",
    header: 'Bearer authorization_uri="https://login.microsoftonline.com"',
    code: "arc_challenge_invalid",
    says: ['"Basic realm=<key file path>"', "found no realm"],
  },
  {
    label: "a quoted realm",
    header: 'Basic realm="/var/opt/azcmagent/tokens/a.key"',
    code: "arc_challenge_invalid",
    says: ["<key file path>", "quoted"],
  },
  {
    label: "an empty realm",
    header: "Basic realm=",
    code: "arc_challenge_invalid",
    says: ["<key file path>", "empty"],
  },
  {
    label: "a realm followed by another parameter",
    header: 'Basic realm=/var/opt/azcmagent/tokens/a.key, charset="UTF-8"',
    code: "arc_challenge_invalid",
    says: ["<key file path>", "listed"],
  },
  {
    label: "a .. segment that comes back to the token directory",
    header: "Basic realm=/var/opt/azcmagent/tokens/../tokens/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens/../tokens/a.key"'],
  },
  {
    label: "a .. segment that climbs out to /etc",
    header: "Basic realm=/var/opt/azcmagent/tokens/../../../etc/x.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens/../../../etc/x.key"'],
  },
  {
    label: "a . segment",
    header: "Basic realm=/var/opt/azcmagent/tokens/./a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens/./a.key"'],
  },
  {
    label: "a doubled slash",
    header: "Basic realm=/var/opt/azcmagent/tokens//a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens//a.key"'],
  },
  {
    label: "a relative path",
    header: "Basic realm=tokens/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"tokens/a.key"'],
  },
  {
    label: "a bare file name",
    header: "Basic realm=a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"a.key"'],
  },
  {
    label: "another directory",
    header: "Basic realm=/tmp/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/tmp/a.key"'],
  },
  {
    label: "a look-alike directory name (a symlink beside the token directory)",
    header: "Basic realm=/var/opt/azcmagent/tokens-link/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens-link/a.key"'],
  },
  {
    label: "a subdirectory of the token directory",
    header: "Basic realm=/var/opt/azcmagent/tokens/sub/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens/sub/a.key"'],
  },
  {
    label: "the parent of the token directory",
    header: "Basic realm=/var/opt/azcmagent/a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/a.key"'],
  },
  {
    label: "a backslash in a Linux path",
    header: "Basic realm=/var/opt/azcmagent/tokens/..\\a.key",
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, '"/var/opt/azcmagent/tokens/..\\a.key"'],
  },
  {
    label: "a Windows path on Linux",
    header: `Basic realm=${WINDOWS_TOKENS}\\abc.key`,
    code: "arc_key_invalid_directory",
    says: [`"${ARC_LINUX_TOKEN_DIRECTORY}"`, `"${WINDOWS_TOKENS}\\abc.key"`],
  },
  {
    label: "a name ending in .key.txt",
    header: "Basic realm=/var/opt/azcmagent/tokens/x.key.txt",
    code: "arc_key_invalid_name",
    says: ['".key"', '"x.key.txt"'],
  },
  {
    label: "a name ending in .txt",
    header: "Basic realm=/var/opt/azcmagent/tokens/x.txt",
    code: "arc_key_invalid_name",
    says: ['".key"', '"x.txt"'],
  },
  {
    label: "a name that is only .key",
    header: "Basic realm=/var/opt/azcmagent/tokens/.key",
    code: "arc_key_invalid_name",
    says: ['".key"'],
  },
  {
    label: "a name in upper case on Linux, where names are case-sensitive",
    header: "Basic realm=/var/opt/azcmagent/tokens/a.KEY",
    code: "arc_key_invalid_name",
    says: ['".key"', '"a.KEY"'],
  },
  {
    label: "a trailing slash (a directory, no file name)",
    header: "Basic realm=/var/opt/azcmagent/tokens/",
    code: "arc_key_invalid_name",
    says: ['".key"', '""'],
  },
  {
    label: "platform darwin",
    header: "Basic realm=/var/opt/azcmagent/tokens/a.key",
    platform: "darwin",
    code: "arc_platform_unsupported",
    says: ["Linux or Windows", '"darwin"'],
  },
  {
    label: "platform freebsd",
    header: "Basic realm=/var/opt/azcmagent/tokens/a.key",
    platform: "freebsd",
    code: "arc_platform_unsupported",
    says: ["Linux or Windows", '"freebsd"'],
  },
];

describe("validateArcChallenge() refuses hostile challenges before reading anything", () => {
  for (const hostile of HOSTILE) {
    test(`validateArcChallenge() refuses ${hostile.label} with ${hostile.code}`, async () => {
      const platform = hostile.platform ?? "linux";
      const fs = counting();
      await assert.rejects(
        challengeThenRead(hostile.header, platform, arcTokenDirectory(platform, undefined), fs),
        arcError(hostile.code, ...hostile.says),
      );
      assert.deepEqual(fs.lstatCalls, []);
      assert.deepEqual(fs.readFileCalls, []);
    });
  }

  test("validateArcChallenge() refuses darwin even when it is given a token directory", () => {
    assert.throws(
      () => validateArcChallenge("Basic realm=/var/opt/azcmagent/tokens/a.key", "darwin", ARC_LINUX_TOKEN_DIRECTORY),
      arcError("arc_platform_unsupported", '"darwin"'),
    );
  });

  test("validateArcChallenge() does not echo a refused header in its message", () => {
    const header = `Negotiate ${KEY}`;
    assert.throws(() => validateArcChallenge(header, "linux", ARC_LINUX_TOKEN_DIRECTORY), (error) => {
      arcError("arc_challenge_invalid")(error);
      assertKeyNotShown(error);
      return true;
    });
  });
});

describe("validateArcChallenge() check order", () => {
  const cases: readonly [string, string | null, string, string][] = [
    ["a missing header on darwin", null, "darwin", "arc_challenge_missing"],
    ["a header without realm on darwin", "Bearer x", "darwin", "arc_challenge_invalid"],
    ["a quoted realm on darwin", 'Basic realm="/tmp/x.txt"', "darwin", "arc_challenge_invalid"],
    ["a bad name in a bad directory on darwin", "Basic realm=/tmp/x.txt", "darwin", "arc_platform_unsupported"],
    ["a bad name in a bad directory", "Basic realm=/tmp/x.txt", "linux", "arc_key_invalid_name"],
    [
      "a bad name after a .. segment",
      "Basic realm=/var/opt/azcmagent/tokens/../x.txt",
      "linux",
      "arc_key_invalid_name",
    ],
    ["a bad name in a relative path", "Basic realm=tokens/x.txt", "linux", "arc_key_invalid_name"],
    ["a bad name in a UNC path on Windows", "Basic realm=\\\\server\\share\\x.txt", "win32", "arc_key_invalid_name"],
    ["a good name in a bad directory", "Basic realm=/tmp/x.key", "linux", "arc_key_invalid_directory"],
  ];
  for (const [label, header, platform, code] of cases) {
    test(`validateArcChallenge() reports ${label} as ${code}`, () => {
      assert.throws(
        () => validateArcChallenge(header, platform, arcTokenDirectory(platform, undefined)),
        arcError(code),
      );
    });
  }
});

describe("validateArcChallenge() on Linux", () => {
  test("validateArcChallenge() returns the path of a key file in /var/opt/azcmagent/tokens", () => {
    assert.equal(
      validateArcChallenge(
        "Basic realm=/var/opt/azcmagent/tokens/3f2a9c1e-agent.key",
        "linux",
        ARC_LINUX_TOKEN_DIRECTORY,
      ),
      "/var/opt/azcmagent/tokens/3f2a9c1e-agent.key",
    );
  });

  test("validateArcChallenge() trims whitespace around the realm", () => {
    assert.equal(
      validateArcChallenge("Basic realm=/var/opt/azcmagent/tokens/a.key  ", "linux", ARC_LINUX_TOKEN_DIRECTORY),
      "/var/opt/azcmagent/tokens/a.key",
    );
  });

  test("validateArcChallenge() checks against the given token directory only", () => {
    assert.equal(validateArcChallenge("Basic realm=/tmp/t/a.key", "linux", "/tmp/t"), "/tmp/t/a.key");
    assert.throws(
      () => validateArcChallenge("Basic realm=/var/opt/azcmagent/tokens/a.key", "linux", "/tmp/t"),
      arcError("arc_key_invalid_directory", '"/tmp/t"', `"${ARC_LINUX_TOKEN_DIRECTORY}/a.key"`),
    );
  });

  // The third parameter is optional; leaving it out must mean the agent's own directory, not
  // "this platform is not Linux" on Linux.
  test("validateArcChallenge() uses the agent's token directory when none is given", () => {
    assert.equal(
      validateArcChallenge("Basic realm=/var/opt/azcmagent/tokens/a.key", "linux"),
      "/var/opt/azcmagent/tokens/a.key",
    );
    assert.throws(() => validateArcChallenge("Basic realm=/tmp/a.key", "linux"), arcError("arc_key_invalid_directory"));
  });
});

describe("validateArcChallenge() on Windows", () => {
  test("arcTokenDirectory() is %ProgramData%\\AzureConnectedMachineAgent\\Tokens on win32", () => {
    assert.equal(arcTokenDirectory("win32", "C:\\ProgramData"), WINDOWS_TOKENS);
    assert.equal(arcTokenDirectory("win32", "C:\\ProgramData\\"), WINDOWS_TOKENS);
    assert.equal(arcTokenDirectory("win32", undefined), WINDOWS_TOKENS);
    assert.equal(arcTokenDirectory("win32", "D:\\Data"), "D:\\Data\\AzureConnectedMachineAgent\\Tokens");
  });

  test("arcTokenDirectory() is /var/opt/azcmagent/tokens on linux and undefined elsewhere", () => {
    assert.equal(arcTokenDirectory("linux", "C:\\ProgramData"), "/var/opt/azcmagent/tokens");
    assert.equal(ARC_LINUX_TOKEN_DIRECTORY, "/var/opt/azcmagent/tokens");
    assert.equal(arcTokenDirectory("darwin", undefined), undefined);
    assert.equal(arcTokenDirectory("unknown", "C:\\ProgramData"), undefined);
  });

  const accepted = [
    `${WINDOWS_TOKENS}\\abc.key`,
    "c:\\programdata\\azureconnectedmachineagent\\tokens\\abc.key",
    "C:\\PROGRAMDATA\\AZURECONNECTEDMACHINEAGENT\\TOKENS\\ABC.KEY",
    "C:/ProgramData/AzureConnectedMachineAgent/Tokens/abc.key",
    "C:\\ProgramData/AzureConnectedMachineAgent\\Tokens/abc.key",
  ];
  for (const path of accepted) {
    test(`validateArcChallenge() accepts ${path} on win32`, () => {
      assert.equal(validateArcChallenge(`Basic realm=${path}`, "win32", arcTokenDirectory("win32", undefined)), path);
    });
  }

  test("validateArcChallenge() accepts a key file under a custom %ProgramData% on win32", () => {
    const directory = arcTokenDirectory("win32", "D:\\Data\\");
    const path = "D:\\Data\\AzureConnectedMachineAgent\\Tokens\\abc.key";
    assert.equal(validateArcChallenge(`Basic realm=${path}`, "win32", directory), path);
    assert.throws(
      () => validateArcChallenge(`Basic realm=${WINDOWS_TOKENS}\\abc.key`, "win32", directory),
      arcError("arc_key_invalid_directory"),
    );
  });

  const refused: readonly [string, string, string][] = [
    ["a .. segment", `${WINDOWS_TOKENS}\\..\\Tokens\\abc.key`, "arc_key_invalid_directory"],
    ["a .. segment that climbs out", `${WINDOWS_TOKENS}\\..\\..\\..\\Windows\\abc.key`, "arc_key_invalid_directory"],
    [
      "a .. segment with forward slashes",
      "C:/ProgramData/AzureConnectedMachineAgent/Tokens/../x/abc.key",
      "arc_key_invalid_directory",
    ],
    ["another drive", "D:\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\abc.key", "arc_key_invalid_directory"],
    ["a UNC path", "\\\\server\\share\\x.key", "arc_key_invalid_directory"],
    ["a UNC path with forward slashes", "//server/share/x.key", "arc_key_invalid_directory"],
    ["a device path", `\\\\?\\${WINDOWS_TOKENS}\\abc.key`, "arc_key_invalid_directory"],
    ["a relative path", "Tokens\\abc.key", "arc_key_invalid_directory"],
    ["a drive-relative path", "C:abc.key", "arc_key_invalid_directory"],
    [
      "a rooted path without a drive",
      "\\ProgramData\\AzureConnectedMachineAgent\\Tokens\\abc.key",
      "arc_key_invalid_directory",
    ],
    ["a subdirectory", `${WINDOWS_TOKENS}\\sub\\abc.key`, "arc_key_invalid_directory"],
    ["another directory", "C:\\Windows\\Temp\\abc.key", "arc_key_invalid_directory"],
    ["a Linux path", "/var/opt/azcmagent/tokens/abc.key", "arc_key_invalid_directory"],
    ["a name ending in .key.txt", `${WINDOWS_TOKENS}\\abc.key.txt`, "arc_key_invalid_name"],
    ["a name ending in .txt", `${WINDOWS_TOKENS}\\abc.txt`, "arc_key_invalid_name"],
    ["a name ending in .key.", `${WINDOWS_TOKENS}\\abc.key.`, "arc_key_invalid_name"],
    ["an alternate data stream", `${WINDOWS_TOKENS}\\abc.key:stream`, "arc_key_invalid_name"],
  ];
  for (const [label, path, code] of refused) {
    test(`validateArcChallenge() refuses ${label} on win32 with ${code}`, async () => {
      const fs = counting();
      await assert.rejects(
        challengeThenRead(`Basic realm=${path}`, "win32", arcTokenDirectory("win32", "C:\\ProgramData"), fs),
        arcError(code),
      );
      assert.deepEqual(fs.lstatCalls, []);
      assert.deepEqual(fs.readFileCalls, []);
    });
  }

  test("validateArcChallenge() names the Windows token directory it expected", () => {
    assert.throws(
      () => validateArcChallenge("Basic realm=C:\\Windows\\Temp\\abc.key", "win32", WINDOWS_TOKENS),
      arcError("arc_key_invalid_directory", `"${WINDOWS_TOKENS}"`, '"C:\\Windows\\Temp\\abc.key"'),
    );
  });
});

describe("readArcKey()", () => {
  test("readArcKey() returns the key file's contents raw", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, `${KEY}\n`);
      const fs = counting();
      assert.equal(await readArcKey(path, "linux", () => fs), `${KEY}\n`);
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.readFileCalls, [path]);
    });
  });

  test("readArcKey() checks the size with lstat before it reads", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const order: string[] = [];
      const fs: ArcKeyFileSystem = {
        lstat: (p) => (order.push("lstat"), fsp.lstat(p)),
        readFile: (p, encoding) => (order.push("readFile"), fsp.readFile(p, encoding)),
      };
      assert.equal(await readArcKey(path, "linux", () => fs), KEY);
      assert.deepEqual(order, ["lstat", "readFile"]);
    });
  });

  test("readArcKey() refuses a 4097-byte key file with arc_key_too_large and never reads it", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "big.key");
      await fsp.writeFile(path, KEY.repeat(Math.ceil(4097 / KEY.length)).slice(0, 4097));
      assert.equal((await fsp.stat(path)).size, 4097);
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs), (error) => {
        arcError("arc_key_too_large", `"${path}"`, `at most ${ARC_MAX_KEY_BYTES} bytes`, "4097")(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.readFileCalls, []);
    });
  });

  test("readArcKey() accepts a key file of exactly 4096 bytes", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "max.key");
      const contents = "k".repeat(4096);
      await fsp.writeFile(path, contents);
      assert.equal(ARC_MAX_KEY_BYTES, 4096);
      assert.equal(await readArcKey(path, "linux", () => counting()), contents);
    });
  });

  test("readArcKey() reports a missing key file as arc_key_not_found", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "missing.key");
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs), arcError("arc_key_not_found", `"${path}"`));
      assert.deepEqual(fs.readFileCalls, []);
    });
  });

  test("readArcKey() refuses a symlink to a valid key file with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, "real.key");
      const link = join(dir, "link.key");
      await fsp.writeFile(target, KEY);
      await fsp.symlink(target, link);
      const fs = counting();
      await assert.rejects(readArcKey(link, "linux", () => fs), (error) => {
        arcError("arc_key_invalid_file", `"${link}"`, "regular file")(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [link]);
      assert.deepEqual(fs.readFileCalls, []);
    });
  });

  test("readArcKey() refuses a directory named x.key with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "x.key");
      await fsp.mkdir(path);
      const fs = counting();
      await assert.rejects(readArcKey(path, "linux", () => fs), arcError("arc_key_invalid_file", `"${path}"`));
      assert.deepEqual(fs.readFileCalls, []);
    });
  });

  test("readArcKey() refuses an empty key file with arc_key_invalid_file", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "empty.key");
      await fsp.writeFile(path, "");
      await assert.rejects(readArcKey(path, "linux", () => counting()), arcError("arc_key_invalid_file", "empty"));
    });
  });

  test("readArcKey() reports EACCES from lstat as arc_key_permission_denied with the himds advice on linux", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    const fs = counting({
      lstat: () => Promise.reject(errnoError("EACCES", "lstat", path)),
      readFile: () => Promise.resolve(KEY),
    });
    await assert.rejects(readArcKey(path, "linux", () => fs), (error) => {
      arcError("arc_key_permission_denied", `"${path}"`, "permission denied", '"himds" group')(error);
      assert.equal((error as Error & { cause: { code: string } }).cause.code, "EACCES");
      return true;
    });
    assert.deepEqual(fs.readFileCalls, []);
  });

  test("readArcKey() reports EACCES from readFile as arc_key_permission_denied with the himds advice on linux", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "agent.key");
      await fsp.writeFile(path, KEY);
      const fs = counting({
        lstat: fsp.lstat,
        readFile: (p) => Promise.reject(errnoError("EACCES", "open", p)),
      });
      await assert.rejects(readArcKey(path, "linux", () => fs), (error) => {
        arcError("arc_key_permission_denied", `"${path}"`, '"himds" group')(error);
        assertKeyNotShown(error);
        return true;
      });
      assert.deepEqual(fs.lstatCalls, [path]);
      assert.deepEqual(fs.readFileCalls, [path]);
    });
  });

  test("readArcKey() reports EACCES on win32 with the Windows advice, not himds", async () => {
    const path = `${WINDOWS_TOKENS}\\abc.key`;
    const fs = counting({ lstat: () => Promise.reject(errnoError("EACCES", "lstat", path)) });
    await assert.rejects(readArcKey(path, "win32", () => fs), (error) => {
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
    await assert.rejects(readArcKey(path, "linux", () => fs), arcError("arc_key_permission_denied", '"himds"'));
  });

  test("readArcKey() reports another file error as arc_key_unreadable with its code", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    const fs = counting({
      lstat: () => Promise.resolve({ size: KEY.length, isFile: () => true, isSymbolicLink: () => false }),
      readFile: () => Promise.reject(errnoError("EIO", "read", path)),
    });
    await assert.rejects(readArcKey(path, "linux", () => fs), arcError("arc_key_unreadable", `"${path}"`, "EIO"));
  });

  test("readArcKey() reports a runtime without node:fs as arc_key_unreadable", async () => {
    const path = "/var/opt/azcmagent/tokens/a.key";
    await assert.rejects(
      readArcKey(path, "linux", () => {
        throw new Error('This runtime cannot load the built-in module "node:fs/promises"');
      }),
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
        [secret, counting({ lstat: fsp.lstat, readFile: (p) => Promise.reject(errnoError("EACCES", "open", p)) })],
        [secret, counting({ lstat: fsp.lstat, readFile: (p) => Promise.reject(errnoError("EIO", "read", p)) })],
      ];
      for (const [path, fs] of attempts) {
        await assert.rejects(readArcKey(path, "linux", () => fs), (error) => {
          assert.ok(error instanceof ManagedIdentityError);
          assertKeyNotShown(error);
          return true;
        });
      }
    });
  });
});
