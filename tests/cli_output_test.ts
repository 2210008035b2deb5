/**
 * Output that is safe to print (issue 17, section 2): every value from an endpoint, a file or the
 * environment that `azmi` prints has its control, format and separator characters escaped
 * visibly (`visible()` in src/redact.ts), URLs are printed without their `user:password@` part,
 * Azure Arc's challenge path never carries such a character into an error, and each library
 * error code leaves each command with the exit code the CLI promises.
 */

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type EnvRecord, type FetchLike, ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { exitCodeOf } from "../src/cli/common.ts";
import { validateArcChallenge } from "../src/arc_key.ts";
import { createEmulator } from "../src/emulator/mod.ts";
import type { InternalOptions } from "../src/internal.ts";
import { visible } from "../src/redact.ts";
import { withoutUserinfo } from "../src/sources/source.ts";
import { runChild } from "./helpers/child.ts";
import { type CliRun, run } from "./helpers/cli.ts";
import { closedPort } from "./helpers/sockets.ts";
import { neverAnswers, releaseStalls, stall } from "./helpers/stall.ts";

// The key file reads that never return hold the event loop until the file is done.
after(releaseStalls);

const VAULT = "https://vault.azure.net";
const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));

/**
 * Text that takes over a terminal when printed raw: an OSC title change ended by BEL, ESC [2J,
 * the 8-bit CSI `\x9b` (and NEL `\x85`), NUL and DEL, the bidirectional override and isolate that
 * reorder a line (Trojan Source), a zero-width space, the line separator, a BOM, a tag
 * character, and a carriage return and line feed that would forge a line of output.
 */
const HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\x85\x00\x7f\u202e\u2066\u200b\u2028\ufeff\u{e0041}\r\nFORGED";
/** How a line that `HOSTILE` forged would begin. */
const FORGED = /^FORGED/m;

/**
 * Fails when `text` holds a character that must never reach a terminal raw: C0 controls but
 * the line feed (and the tab, where a format separates columns with it), DEL, C1 controls,
 * format characters (Unicode Cf: bidirectional controls, zero-width characters, the BOM, tag
 * characters), the line and paragraph separators, and lone surrogates. A raw line feed
 * shows as a line that `HOSTILE` forged.
 */
function assertPrintable(text: string, where: string, { tabs = false } = {}): void {
  for (const match of text.matchAll(/[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/gu)) {
    const char = match[0];
    if (char === "\n" || (tabs && char === "\t")) continue;
    const code = char.codePointAt(0)!.toString(16).padStart(4, "0");
    const around = JSON.stringify(text.slice(Math.max(0, match.index - 40), match.index + 40));
    assert.fail(`${where}: U+${code} printed raw at ${match.index}, in ${around}`);
  }
  assert.doesNotMatch(text, FORGED, `${where}: a line feed printed raw`);
}

/** Runs `args` and fails when anything printed holds a raw control, format or separator character. */
async function runPrintable(args: string[], options: Parameters<typeof run>[1] = {}, tabs = false): Promise<CliRun> {
  const result = await run(args, options);
  const name = `azmi ${args.map((arg) => JSON.stringify(arg)).join(" ")}`;
  assertPrintable(result.out, `${name} stdout`, { tabs });
  assertPrintable(result.err, `${name} stderr`);
  return result;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
/** A JWT-shaped token with these claims (unsigned: nothing here verifies it). */
const jwt = (claims: Record<string, unknown>) => `${base64url({ typ: "JWT", alg: "none" })}.${base64url(claims)}.c2ln`;

describe("visible()", () => {
  test("escapes C0, DEL and C1 as \\xHH, and every other control, format or separator character as \\uHHHH", () => {
    for (let code = 0; code < 0x20; code++) {
      assert.equal(visible(`a${String.fromCharCode(code)}b`), `a\\x${code.toString(16).padStart(2, "0")}b`);
    }
    for (let code = 0x7f; code <= 0x9f; code++) {
      assert.equal(visible(String.fromCharCode(code)), `\\x${code.toString(16)}`);
    }
    assert.equal(visible("\u00ad"), "\\xad"); // the soft hyphen, a format character
    for (const char of ["\u061c", "\u200b", "\u200e", "\u200f", "\u2028", "\u2029", "\u2060", "\ufeff"]) {
      assert.equal(visible(char), `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
    }
    // Every bidirectional embedding, override and isolate (the characters of Trojan Source, CVE-2021-42574).
    for (let code = 0x202a; code <= 0x202e; code++) {
      assert.equal(visible(String.fromCharCode(code)), `\\u${code.toString(16)}`);
    }
    for (let code = 0x2066; code <= 0x2069; code++) {
      assert.equal(visible(String.fromCharCode(code)), `\\u${code.toString(16)}`);
    }
    assert.equal(visible("\u{e0041}\u{e007f}"), "\\u{e0041}\\u{e007f}"); // tag characters
    assert.equal(visible("\ud800x\udfff"), "\\ud800x\\udfff"); // lone surrogates
    assert.equal(visible(HOSTILE).includes("FORGED"), true);
  });

  test("leaves printable text alone: ASCII, backslashes, accents, CJK, emoji, a no-break space", () => {
    const text = "https://vault.azure.net/ C:\\ProgramData\\x.key \\x1b café 東京 🔑 \u00a0 ~";
    assert.equal(visible(text), text);
  });

  test("no code point that needs escaping is left raw, across all of Unicode", { timeout: 60_000 }, () => {
    const all: string[] = [];
    for (let code = 0; code <= 0x10ffff; code++) all.push(String.fromCodePoint(code));
    // Lone surrogates too: the BMP loop above put each one alone between two other characters.
    assertPrintable(visible(all.join("")), "visible(every code point)");
  });

  test("is linear: 4 MiB of escapes, bidirectional controls, tag characters or plain text take seconds at most", {
    timeout: 60_000,
  }, () => {
    const MiB = 1024 * 1024;
    for (
      const [name, text] of [
        ["ESC", "\x1b".repeat(4 * MiB)],
        ["CSI", "\x9b[".repeat(2 * MiB)],
        ["RLO", "\u202e".repeat(4 * MiB)],
        ["tags", "\u{e0041}".repeat(2 * MiB)],
        ["lone surrogates", "\ud800".repeat(4 * MiB)],
        ["plain", "a".repeat(4 * MiB)],
        ["mixed", `${HOSTILE}x`.repeat(MiB / 8)],
      ] as const
    ) {
      const started = performance.now();
      const shown = visible(text);
      const ms = performance.now() - started;
      assert.ok(shown.length >= text.length, name);
      // About 0.2 s per MiB of escapes (the output is 4 to 9 times as long); a quadratic pass would take hours.
      assert.ok(ms < 4000, `${name}: ${ms.toFixed(0)} ms for ${text.length} characters`);
    }
  });
});

describe("withoutUserinfo()", () => {
  test("replaces user:password@ in every notation a URL parser reads as credentials", () => {
    for (
      const value of [
        "http://user:pa55word@127.0.0.1:41741/msi/token",
        "http://:pa55word@localhost/token",
        "HTTP://user:pa55@word@127.0.0.1/", // the last @ ends the credentials
        "http:\\\\user:pa55word@127.0.0.1/x", // a backslash is a slash in an http: URL
        "http:/\\user:pa55word@127.0.0.1/x",
        "http:user:pa55word@127.0.0.1/x", // no slashes at all
        "  http://user:pa55word@127.0.0.1/x", // leading blanks, which a URL parser strips
        "ht\ttp://us\ner:pa55\rword@127.0.0.1/x", // tabs and line breaks, which it removes
        "https://user:pa55word@login.microsoftonline.com/",
        "ftp://user:pa55word@127.0.0.1/",
        "user:pa55word@127.0.0.1/x",
        "//user:pa55word@127.0.0.1/x",
        // No URL parser reads these, and they would show a password written unencoded.
        "http://user:pa/55word@127.0.0.1/x",
        "http://user:pa55?word@127.0.0.1/x",
        "http://user:pa55#word@127.0.0.1/x",
        "http://user:pa55word@127.0.0.1/a@127.0.0.1",
      ]
    ) {
      // Each http: case that a URL parser reads at all, it reads with credentials.
      const parsed = URL.parse(value);
      if (parsed?.protocol === "http:") assert.notEqual(parsed.password, "", value);
      const shown = withoutUserinfo(value);
      assert.ok(!/pa55/.test(shown), `${JSON.stringify(value)} shown as ${JSON.stringify(shown)}`);
      assert.match(shown, /\[redacted\]@/, value);
      // What is left still names the host.
      assert.match(shown, /127\.0\.0\.1|localhost|login\.microsoftonline\.com/, value);
    }
  });

  test("leaves a value without @ as it is, and takes any @ as the end of credentials", () => {
    assert.equal(withoutUserinfo("http://127.0.0.1/a@b"), "http://[redacted]@b");
    assert.equal(withoutUserinfo("HTTP:\\127.0.0.1?x=a@b"), "HTTP:\\[redacted]@b");
    for (
      const value of [
        "http://127.0.0.1:41741/msi/token",
        "https://login.microsoftonline.com/",
        "http:\\\\127.0.0.1\\x",
        "not a url",
        "",
      ]
    ) {
      assert.equal(withoutUserinfo(value), value);
    }
  });

  test("is linear on hostile text of a few MiB", { timeout: 60_000 }, () => {
    const MiB = 1024 * 1024;
    for (
      const text of [
        "a".repeat(4 * MiB),
        " ".repeat(4 * MiB),
        `http:${"\t".repeat(4 * MiB)}x`,
        `http:${"/\t".repeat(2 * MiB)}x`,
        "a:".repeat(2 * MiB),
        `http://${"@".repeat(4 * MiB)}`,
        `http://${"a".repeat(4 * MiB)}`,
        `@${"a:".repeat(2 * MiB)}`,
        `${"\t".repeat(4 * MiB)}a`,
      ]
    ) {
      const started = performance.now();
      withoutUserinfo(text);
      const ms = performance.now() - started;
      assert.ok(ms < 1000, `${ms.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 12))}...`);
    }
  });
});

/** The variables that are URLs, and an environment that makes each one the one a command shows. */
const URL_VARIABLES: readonly { name: string; env: (url: string) => EnvRecord }[] = [
  { name: "IDENTITY_ENDPOINT", env: (url) => ({ IDENTITY_ENDPOINT: url, IDENTITY_HEADER: "h" }) },
  { name: "MSI_ENDPOINT", env: (url) => ({ MSI_ENDPOINT: url }) },
  { name: "AZURE_POD_IDENTITY_AUTHORITY_HOST", env: (url) => ({ AZURE_POD_IDENTITY_AUTHORITY_HOST: url }) },
  {
    name: "AZURE_AUTHORITY_HOST",
    env: (url) => ({
      AZURE_AUTHORITY_HOST: url,
      AZURE_FEDERATED_TOKEN_FILE: "/nonexistent/azure-identity-token",
      AZURE_TENANT_ID: "72f988bf-0000-4000-8000-00000000a2f1",
      AZURE_CLIENT_ID: "57679cee-1393-417d-8d06-5cb8a22df18a",
    }),
  },
  { name: "IMDS_ENDPOINT", env: (url) => ({ IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token", IMDS_ENDPOINT: url }) },
];

describe("azmi detect, detect --json, doctor and token print URLs without user:password@", () => {
  for (const variable of URL_VARIABLES) {
    test(`${variable.name} with credentials, in each notation, is shown with [redacted]@ by every command`, async () => {
      for (
        const url of [
          "http://azmi-user:pa55word@127.0.0.1:41741/msi/token",
          "http:\\\\azmi-user:pa55word@127.0.0.1:41741/msi/token",
          "http:azmi-user:pa55word@127.0.0.1:41741/msi/token",
        ]
      ) {
        const env = variable.env(url);
        const fetch: FetchLike = () => Response.json({ error: "invalid_request" }, { status: 400 });
        for (const args of [["detect"], ["detect", "--json"], ["doctor", "--timeout", "1000"], ["token"]]) {
          const { out, err } = await runPrintable(args[0] === "token" ? ["token", VAULT] : args, { env, fetch });
          const printed = out + err;
          const label = `${args.join(" ")} with ${variable.name}=${url}`;
          assert.ok(!printed.includes("pa55"), `${label} prints the password:\n${printed}`);
          assert.ok(!printed.includes("azmi-user"), `${label} prints the user:\n${printed}`);
          if (args[0] !== "token") {
            assert.match(printed, /\[redacted\]@127\.0\.0\.1:41741/, label);
          }
          if (args[1] === "--json") {
            const json = JSON.parse(out);
            if (variable.name in json.variables) assert.equal(json.variables[variable.name], withoutUserinfo(url));
          }
        }
      }
    });
  }
});

/** An environment for each source with a hostile value in every variable that is shown. */
const HOSTILE_ENVS: Readonly<Record<string, EnvRecord>> = {
  AppService: { IDENTITY_ENDPOINT: `http://127.0.0.1:41741/${HOSTILE}`, IDENTITY_HEADER: HOSTILE },
  "AppService, an endpoint that is no URL": { IDENTITY_ENDPOINT: HOSTILE, IDENTITY_HEADER: "h" },
  ServiceFabric: {
    IDENTITY_ENDPOINT: `https://127.0.0.1:2377/${HOSTILE}`,
    IDENTITY_HEADER: "h",
    IDENTITY_SERVER_THUMBPRINT: HOSTILE,
  },
  AzureML: { MSI_ENDPOINT: `http://127.0.0.1:46808/${HOSTILE}`, MSI_SECRET: "s", DEFAULT_IDENTITY_CLIENT_ID: HOSTILE },
  CloudShell: { MSI_ENDPOINT: `http://localhost:50342/${HOSTILE}` },
  AzureArc: { IDENTITY_ENDPOINT: `http://127.0.0.1:40342/${HOSTILE}`, IMDS_ENDPOINT: HOSTILE },
  WorkloadIdentity: {
    AZURE_FEDERATED_TOKEN_FILE: `/nonexistent/${HOSTILE}`,
    AZURE_TENANT_ID: HOSTILE,
    AZURE_CLIENT_ID: HOSTILE,
    AZURE_AUTHORITY_HOST: `http://127.0.0.1:41741/${HOSTILE}`,
  },
  "WorkloadIdentity, a valid tenant": {
    AZURE_FEDERATED_TOKEN_FILE: `/nonexistent/${HOSTILE}`,
    AZURE_TENANT_ID: "72f988bf-0000-4000-8000-00000000a2f1",
    AZURE_CLIENT_ID: "57679cee-1393-417d-8d06-5cb8a22df18a",
  },
  DefaultToIMDS: { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:41799/${HOSTILE}` },
  "DefaultToIMDS, a host that is no URL": { AZURE_POD_IDENTITY_AUTHORITY_HOST: HOSTILE },
};

/** An endpoint that answers every request with hostile text in every field and header it could. */
const hostileEndpoint: FetchLike = () =>
  Response.json(
    { error: HOSTILE, error_description: HOSTILE, message: HOSTILE, correlationId: HOSTILE },
    { status: 400, headers: { "x-ms-correlation-id": "\x9b31m\x85" } },
  );

describe("azmi prints no raw control character from the environment", () => {
  for (const [name, env] of Object.entries(HOSTILE_ENVS)) {
    test(`${name}: detect, detect --json, doctor and token print escapes, never the characters`, async () => {
      const detect = await runPrintable(["detect"], { env });
      const json = await runPrintable(["detect", "--json"], { env });
      const doctor = await runPrintable(["doctor", "--timeout", "1000"], { env, fetch: hostileEndpoint });
      const token = await runPrintable(["token", VAULT], { env, fetch: hostileEndpoint });
      for (const [command, result] of [["detect", detect], ["doctor", doctor]] as const) {
        assert.match(result.out + result.err, /\\x1b/, `${command} shows the escape, not nothing`);
      }
      assert.notEqual(token.code, EXIT_CODES.ok);
      if (json.code === EXIT_CODES.ok) {
        // JSON's own escapes: the values read back exactly as set.
        const parsed = JSON.parse(json.out) as { variables: Record<string, string> };
        for (const [variable, value] of Object.entries(parsed.variables)) {
          if (value !== "<set, redacted>") assert.equal(value, env[variable], variable);
        }
      }
    });
  }

  test("a hostile --client-id, resource and unknown flag are printed escaped", async () => {
    const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" };
    const runs = [
      await runPrintable(["doctor", `${VAULT}/${HOSTILE}`, "--client-id", HOSTILE, "--timeout", "1000"], {
        env,
        fetch: hostileEndpoint,
      }),
      await runPrintable(["token", `${VAULT}/${HOSTILE}`, "--client-id", HOSTILE], { env, fetch: hostileEndpoint }),
      await runPrintable(["token", VAULT, `--${HOSTILE}`], { env }),
      await runPrintable([HOSTILE], { env }),
      await runPrintable(["emulate", "--source", HOSTILE], { env }),
    ];
    // `token` names neither the resource nor the ID on failure: the others show them escaped.
    for (const { out, err } of [runs[0]!, ...runs.slice(2)]) assert.match(out + err, /\\x1b/);
    assert.equal(runs[2]!.code, EXIT_CODES.usage);
  });
});

describe("azmi prints no raw control character from an endpoint", () => {
  const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" };
  const token = jwt({
    aud: HOSTILE,
    appid: HOSTILE,
    oid: HOSTILE,
    tid: "72f988bf-0000-4000-8000-00000000a2f1",
  });
  const fetch: FetchLike = (request) =>
    new URL(request.url).pathname === "/"
      ? new Response(HOSTILE, { status: 404, headers: { "x-hostile": "\x9b\x85" } })
      : Response.json({ access_token: token, expires_in: 3600, token_type: HOSTILE, resource: HOSTILE });

  test("doctor shows the token type and the aud, appid and oid claims escaped", async () => {
    const { code, out } = await runPrintable(["doctor", VAULT, "--timeout", "2000"], { env, fetch });
    assert.equal(code, EXIT_CODES.ok, out);
    assert.ok(out.includes(`a ${visible(HOSTILE)} token for`), out);
    assert.ok(out.includes(`Claims: aud=${visible(HOSTILE)}, appid=${visible(HOSTILE)}, oid=${visible(HOSTILE)}`), out);
    assert.equal(out.split("\n").filter((line) => line.startsWith("Result:")).length, 1, "no forged line");
  });

  for (const format of [[], ["--json"], ["-o", "json"], ["-o", "tsv"], ["-o", "none"]]) {
    test(`token ${format.join(" ") || "(bare)"} prints the token and an escaped token type`, async () => {
      const result = await runPrintable(["token", VAULT, ...format], { env, fetch }, format.includes("tsv"));
      assert.equal(result.code, EXIT_CODES.ok, result.err);
      assert.equal(result.err, "");
      if (format.includes("none")) return assert.equal(result.out, "");
      assert.equal(result.out.split(token).length, 2, "the token, once");
      if (format.includes("tsv")) {
        const columns = result.out.replace(/\n$/, "").split("\t");
        const json = await run(["token", VAULT, "-o", "json"], { env, fetch });
        assert.equal(columns.length, Object.keys(JSON.parse(json.out)).length, "no column shifted");
        assert.equal(columns.at(-1), visible(HOSTILE));
      } else if (format.length > 0) {
        assert.equal(JSON.parse(result.out).tokenType, visible(HOSTILE));
      }
    });
  }

  test("-o tsv still refuses a token that holds a tab or a line break, printing nothing", async () => {
    for (const bad of ["a\tb", "a\nb"]) {
      const tabbed: FetchLike = () => Response.json({ access_token: bad, expires_in: 3600 });
      const { code, out, err } = await runPrintable(["token", VAULT, "-o", "tsv"], { env, fetch: tabbed });
      assert.equal(code, EXIT_CODES.failed);
      assert.equal(out, "");
      assert.match(err, /^azmi token: -o tsv cannot print accessToken: it holds a control or format character/);
    }
  });
});

describe("Azure Arc's challenge path", () => {
  const DIR = "/var/opt/azcmagent/tokens";
  for (
    const [label, char] of [
      ["DEL", "\x7f"],
      ["the 8-bit CSI", "\x9b"],
      ["NEL", "\x85"],
      ["C1's first", "\x80"],
      ["C1's last", "\x9f"],
      ["a soft hyphen (a format character)", "\u00ad"],
      ["a right-to-left override", "\u202e"],
      ["a zero-width space", "\u200b"],
      ["ESC", "\x1b"],
    ] as const
  ) {
    test(`is refused with ${label} in it, and the error quotes it escaped`, () => {
      assert.throws(() => validateArcChallenge(`Basic realm=${DIR}/a${char}[31m.key`, "linux", DIR), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "arc_challenge_invalid");
        assertPrintable(error.message, "message");
        assert.ok(error.message.includes(visible(char)), error.message);
        return true;
      });
    });
  }

  test("an invalid name, directory or Windows directory is quoted escaped", () => {
    const cases: [string, string, string | undefined][] = [
      [`Basic realm=${DIR}/${"\u00e9".repeat(300)}.key`, "linux", DIR],
      [`Basic realm=/etc/passwd.key`, "linux", DIR],
      ["Basic realm=C:\\ProgramData\\x.key", "win32", "C:\\Program\x1bData\x9b\\AzureConnectedMachineAgent\\Tokens"],
    ];
    for (const [header, platform, directory] of cases) {
      assert.throws(() => validateArcChallenge(header, platform, directory), (error) => {
        assert.ok(error instanceof ManagedIdentityError);
        assertPrintable(error.message, header);
        return true;
      });
    }
  });

  test("a \\x9b in the challenge reaches neither error.message nor azmi token's stderr", async () => {
    const challenge: FetchLike = () =>
      new Response(JSON.stringify({ error: "unauthorized_client" }), {
        status: 401,
        headers: { "www-authenticate": `Basic realm=${DIR}/\x9b31m\x85.key` },
      });
    const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token", IMDS_ENDPOINT: "x" };
    const client = new ManagedIdentityClient({ env, fetch: challenge, cache: new TokenCache(), retry: false });
    await assert.rejects(client.acquireToken(VAULT), (error) => {
      assert.ok(error instanceof ManagedIdentityError);
      assert.equal(error.code, "arc_challenge_invalid");
      assertPrintable(error.message, "message");
      assert.match(error.message, /\\x9b31m\\x85\.key/);
      return true;
    });
    const { code, err } = await runPrintable(["token", VAULT], { env, fetch: challenge });
    assert.equal(code, EXIT_CODES.failed);
    assert.match(err, /\\x9b31m\\x85\.key.*\(arc_challenge_invalid\)\n$/);
  });
});

describe("azmi emulate prints no raw control character", () => {
  test("a directory flag holding one is a usage error, named escaped, before anything starts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-out-"));
    try {
      for (const flag of ["--arc-key-dir", "--federated-token-dir"]) {
        const source = flag === "--arc-key-dir" ? "arc" : "wi";
        const { code, out, err } = await runPrintable(["emulate", "--source", source, flag, join(dir, HOSTILE)], {
          until: AbortSignal.timeout(3000),
        });
        assert.equal(code, EXIT_CODES.usage, err);
        assert.equal(out, "");
        assert.match(err, new RegExp(`^azmi emulate: Flag "${flag}" .*\\\\x1b`));
      }
      assert.deepEqual(await readdir(dir), [], "nothing was written");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test(
    "a temporary directory (TMPDIR) holding one is refused, named escaped, exit 5",
    { timeout: 60_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "azmi-out-"));
      const hostile = join(dir, "tmp\x1b[2J\x9b");
      await mkdir(hostile);
      try {
        const child = await runChild(CLI, ["emulate", "--source", "wi"], { TMPDIR: hostile, TMP: hostile }, 20_000);
        const printed = child.lines.map((line) => line.text).join("\n");
        assert.equal(child.killed, false, `emulate kept running:\n${printed}`);
        assert.equal(child.code, EXIT_CODES.configuration, child.stderr);
        assertPrintable(printed, "stdout");
        assertPrintable(child.stderr, "stderr");
        assert.match(child.stderr, /AZURE_FEDERATED_TOKEN_FILE.*\\x1b\[2J\\x9b/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

// ---------------------------------------------------------------------------------------------
// The exit codes, through the commands.

const THUMBPRINT_FIXTURE = (name: string) =>
  readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), "utf8");

/** What docs/cli.md ("Exit codes") and `azmi --help` promise for each code, written out here independently of src/cli/common.ts. */
const PROMISED: Readonly<Record<string, number>> = {
  unsupported_identity: 5,
  invalid_configuration: 5,
  unavailable: 3,
  request_failed: 1,
  invalid_response: 1,
  timeout: 4,
  aborted: 4, // the CLI's one abort is its deadline: `azmi token` and `doctor` say "no token within the deadline"
  certificate_mismatch: 5,
  identity_mismatch: 1,
  arc_challenge_missing: 1,
  arc_challenge_invalid: 1,
  arc_platform_unsupported: 1,
  arc_key_invalid_name: 1,
  arc_key_invalid_directory: 1,
  arc_key_not_found: 1,
  arc_key_permission_denied: 1,
  arc_key_invalid_file: 1,
  arc_key_too_large: 1,
  arc_key_unreadable: 1,
};

/** The codes that src/errors.ts lists in `ManagedIdentityErrorCode`. */
function listedCodes(): string[] {
  const text = readFileSync(fileURLToPath(new URL("../src/errors.ts", import.meta.url)), "utf8");
  const union = /export type ManagedIdentityErrorCode =([\s\S]*?);/.exec(text)?.[1] ?? "";
  return [...union.matchAll(/\|\s*"([a-z_]+)"/g)].map((match) => match[1]!);
}

/** A scenario that makes the library fail with one code; `close` ends what it started. */
interface Scenario {
  readonly args?: readonly string[];
  readonly env: EnvRecord;
  readonly fetch?: FetchLike;
  readonly internal?: InternalOptions;
  /** What `token` prints on stderr, and `doctor` on stdout, when the code is the expected one. */
  readonly says?: RegExp;
  close?(): Promise<void>;
}

const LINUX: InternalOptions = { platform: "linux" };
const APP_SERVICE = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" };
const ARC = { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token", IMDS_ENDPOINT: "x" };

/** Azure Arc: the challenge names `realm`; the second request gets `answer`. The probe (GET /) gets a 404. */
function arcEndpoint(realm: string | undefined, answer: () => Response = () => Response.json({})): FetchLike {
  return (request) => {
    if (new URL(request.url).pathname === "/") return new Response(null, { status: 404 });
    if (request.headers.has("authorization")) return answer();
    return Response.json({ error: "unauthorized_client" }, {
      status: 401,
      headers: realm === undefined ? {} : { "www-authenticate": `Basic realm=${realm}` },
    });
  };
}

const refusingFs = (code: string) => ({
  lstat: () => Promise.reject(Object.assign(new Error(`${code}: refused`), { code })),
  open: () => Promise.reject(Object.assign(new Error(`${code}: refused`), { code })),
});

/** A real HTTPS server on loopback with the test-only certificate that the pin does not name. */
async function mismatchedServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpsServer(
    { cert: THUMBPRINT_FIXTURE("test_only_other_cert.pem"), key: THUMBPRINT_FIXTURE("test_only_other_key.pem") },
    (_request, response) => response.end("{}"),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/metadata/identity/oauth2/token`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

const SCENARIOS: Readonly<Record<string, (dir: string) => Scenario | Promise<Scenario>>> = {
  unsupported_identity: () => ({
    args: ["--client-id", "57679cee-1393-417d-8d06-5cb8a22df18a"],
    env: { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" }, // Cloud Shell: system-assigned only
    fetch: () => Response.json({}),
  }),
  invalid_configuration: () => ({ env: { IDENTITY_ENDPOINT: "not a URL", IDENTITY_HEADER: "h" } }),
  unavailable: async () => ({ env: { ...APP_SERVICE, IDENTITY_ENDPOINT: `http://127.0.0.1:${await closedPort()}/t` } }),
  request_failed: () => ({
    env: APP_SERVICE,
    fetch: createEmulator({ secret: "h" }).handler("AppService"),
    args: ["--client-id", "00000000-0000-0000-0000-00000000dead"],
  }),
  invalid_response: () => ({ env: APP_SERVICE, fetch: () => Response.json({ not: "a token" }) }),
  timeout: () => ({
    env: APP_SERVICE,
    args: ["--timeout", "300"],
    fetch: (request) =>
      new URL(request.url).pathname === "/" ? new Response(null, { status: 404 }) : neverAnswers(request),
    says: /no token within the 300 ms deadline \(--timeout\)/,
  }),
  aborted: (dir) => ({
    // The key file's read never finishes: the deadline aborts it (the library's `aborted`).
    env: ARC,
    args: ["--timeout", "300"],
    fetch: arcEndpoint(`${dir}/stuck.key`),
    internal: {
      platform: "linux",
      arcTokenDirectory: dir,
      arcFileSystem: { lstat: () => stall(), open: () => stall() },
    },
    says: /no token within the 300 ms deadline \(--timeout\)/,
  }),
  certificate_mismatch: async () => {
    const server = await mismatchedServer();
    const pin = new X509Certificate(THUMBPRINT_FIXTURE("test_only_sf_cert.pem")).fingerprint;
    return {
      env: { IDENTITY_ENDPOINT: server.url, IDENTITY_HEADER: "h", IDENTITY_SERVER_THUMBPRINT: pin },
      close: server.close,
    };
  },
  identity_mismatch: (dir) => ({
    env: ARC,
    args: ["--client-id", "57679cee-1393-417d-8d06-5cb8a22df18a"],
    fetch: arcEndpoint(`${dir}/good.key`, () => Response.json({ access_token: "t", expires_in: 3600 })),
    internal: { platform: "linux", arcTokenDirectory: dir },
  }),
  arc_challenge_missing: () => ({ env: ARC, fetch: arcEndpoint(undefined), internal: LINUX }),
  arc_challenge_invalid: () => ({ env: ARC, fetch: arcEndpoint('"/var/opt/azcmagent/tokens/a.key"'), internal: LINUX }),
  arc_platform_unsupported: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/good.key`),
    internal: { platform: "darwin", arcTokenDirectory: dir },
  }),
  arc_key_invalid_name: () => ({ env: ARC, fetch: arcEndpoint("/var/opt/azcmagent/tokens/a.txt"), internal: LINUX }),
  arc_key_invalid_directory: () => ({ env: ARC, fetch: arcEndpoint("/etc/a.key"), internal: LINUX }),
  arc_key_not_found: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/missing.key`),
    internal: { platform: "linux", arcTokenDirectory: dir },
  }),
  arc_key_permission_denied: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/good.key`),
    internal: { platform: "linux", arcTokenDirectory: dir, arcFileSystem: refusingFs("EACCES") },
  }),
  arc_key_invalid_file: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/directory.key`),
    internal: { platform: "linux", arcTokenDirectory: dir },
  }),
  arc_key_too_large: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/large.key`),
    internal: { platform: "linux", arcTokenDirectory: dir },
  }),
  arc_key_unreadable: (dir) => ({
    env: ARC,
    fetch: arcEndpoint(`${dir}/good.key`),
    internal: { platform: "linux", arcTokenDirectory: dir, arcFileSystem: refusingFs("EIO") },
  }),
};

describe("every error code leaves azmi token and azmi doctor with its exit code", () => {
  test("the table names every code that src/errors.ts lists, and only those", () => {
    assert.deepEqual(Object.keys(PROMISED).sort(), listedCodes().sort());
    assert.deepEqual(Object.keys(SCENARIOS).sort(), listedCodes().sort());
  });

  test("exitCodeOf() maps each code as promised, apart from aborted, which the CLI sees only as its deadline", () => {
    for (const [code, exit] of Object.entries(PROMISED)) {
      if (code === "aborted") continue;
      assert.equal(exitCodeOf(new ManagedIdentityError(code, "x")), exit, code);
    }
    assert.equal(exitCodeOf(new ManagedIdentityError("some_future_code", "x")), EXIT_CODES.failed);
  });

  for (const [code, exit] of Object.entries(PROMISED)) {
    for (const command of ["token", "doctor"] as const) {
      test(`${code} -> exit ${exit}, through azmi ${command}`, { timeout: 30_000 }, async () => {
        const dir = await mkdtemp(join(tmpdir(), "azmi-exit-"));
        await writeFile(join(dir, "good.key"), "a-key");
        await writeFile(join(dir, "large.key"), "k".repeat(5000));
        await mkdir(join(dir, "directory.key"));
        const scenario = await SCENARIOS[code]!(dir);
        try {
          const own = scenario.args ?? [];
          const args = command === "token"
            ? ["token", VAULT, ...own]
            : ["doctor", VAULT, ...own, ...(own.includes("--timeout") ? [] : ["--timeout", "5000"])];
          const { env, fetch, internal } = scenario;
          const { code: exitCode, out, err } = await runPrintable(args, { env, fetch, internal });
          const said = command === "token" ? err : out;
          if (scenario.says) assert.match(said, scenario.says);
          else if (command === "token") assert.match(said, new RegExp(`\\(${code}\\)\\n$`), said);
          else assert.match(said, new RegExp(`Failed \\(${code}\\)`), said);
          assert.equal(exitCode, exit, said);
          if (command === "doctor") assert.match(out, new RegExp(`\\(exit code ${exit}\\)\\n$`));
        } finally {
          await scenario.close?.();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  }
});
