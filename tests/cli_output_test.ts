/**
 * The exit codes, through the commands (issue 17, section 2): each library error code leaves
 * `azmi token` and `azmi doctor` with the exit code the CLI promises.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type EnvRecord, type FetchLike, ManagedIdentityError } from "../mod.ts";
import { type CliIo, EXIT_CODES, main } from "../src/cli.ts";
import { exitCodeOf } from "../src/cli/common.ts";
import { createEmulator } from "../src/emulator/mod.ts";
import { INTERNAL, type InternalOptions } from "../src/internal.ts";
import { closedPort } from "./helpers/sockets.ts";

const VAULT = "https://vault.azure.net";

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** `main(args)` with an environment record, a fetch and the internal seam; what it printed. */
async function run(
  args: string[],
  options: Partial<Pick<CliIo, "env" | "fetch" | "until">> & { internal?: InternalOptions } = {},
): Promise<Run> {
  let out = "";
  let err = "";
  const { internal, ...rest } = options;
  const io: CliIo = {
    env: {},
    ...rest,
    stdout: (text) => out += text,
    stderr: (text) => err += text,
    ...(internal ? { [INTERNAL]: internal } : {}),
  };
  const code = await main(args, io);
  return { code, out, err };
}

// ---------------------------------------------------------------------------------------------
// The exit codes, through the commands.

const THUMBPRINT_FIXTURE = (name: string) =>
  readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), "utf8");

/** What the README and `azmi --help` promise for each code, written out here independently of src/cli/common.ts. */
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
      new URL(request.url).pathname === "/" ? new Response(null, { status: 404 }) : new Promise<Response>(() => {}),
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
      arcFileSystem: { lstat: () => new Promise(() => {}), open: () => new Promise(() => {}) },
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
          const { code: exitCode, out, err } = await run(args, { env, fetch, internal });
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
