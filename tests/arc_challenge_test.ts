/**
 * validateArcChallenge() (src/arc_key.ts): the hostile challenges it refuses before reading
 * anything, the order of its checks, and what it accepts on Linux and on Windows. Reading the key
 * file is in tests/arc_key_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ARC_LINUX_TOKEN_DIRECTORY, arcTokenDirectory, validateArcChallenge } from "../src/arc_key.ts";
import { counting } from "./helpers/checks.ts";
import { arcError, assertKeyNotShown, challengeThenRead, KEY, WINDOWS_TOKENS } from "./helpers/arc_key.ts";

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
      assert.deepEqual(fs.openCalls, []);
    });
  }

  test("validateArcChallenge() refuses darwin even when it is given a token directory", () => {
    assert.throws(
      () => validateArcChallenge("Basic realm=/var/opt/azcmagent/tokens/a.key", "darwin", ARC_LINUX_TOKEN_DIRECTORY),
      arcError("arc_platform_unsupported", '"darwin"'),
    );
  });

  test("validateArcChallenge() refuses a realm of 1 MiB at once and quotes only its start", () => {
    const long = "k".repeat(1024 * 1024);
    const cases: [string, string][] = [
      [`Basic realm=${ARC_LINUX_TOKEN_DIRECTORY}/${long}.key`, "arc_key_invalid_name"],
      [`Basic realm=/var/opt/${long}/a.key`, "arc_key_invalid_directory"],
      [`Basic realm=${ARC_LINUX_TOKEN_DIRECTORY}/${long}`, "arc_key_invalid_name"],
    ];
    for (const [header, code] of cases) {
      const started = performance.now();
      assert.throws(() => validateArcChallenge(header, "linux", ARC_LINUX_TOKEN_DIRECTORY), (error) => {
        arcError(code)(error);
        assert.ok((error as Error).message.length < 1000, `a message of ${(error as Error).message.length} characters`);
        return true;
      });
      assert.ok(performance.now() - started < 1000);
    }
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
      assert.deepEqual(fs.openCalls, []);
    });
  }

  test("validateArcChallenge() names the Windows token directory it expected", () => {
    assert.throws(
      () => validateArcChallenge("Basic realm=C:\\Windows\\Temp\\abc.key", "win32", WINDOWS_TOKENS),
      arcError("arc_key_invalid_directory", `"${WINDOWS_TOKENS}"`, '"C:\\Windows\\Temp\\abc.key"'),
    );
  });
});
