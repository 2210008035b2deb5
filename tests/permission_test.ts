/**
 * A runtime's refusal of a permission (Deno without `--allow-net` or `--allow-read`, Node's
 * permission model) is `invalid_configuration` naming the flag to add: never `unavailable`,
 * which would let a credential chain move on silently, and never retried. On every runtime with
 * refusals in the shapes Deno and Node produce; on Deno also for real, in child processes given
 * no permissions.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CredentialUnavailableError, type ManagedIdentityEvent } from "../mod.ts";
import type { ArcKeyFileSystem } from "../src/arc_key.ts";
import type { TokenFileSystem } from "../src/sources/workload_identity.ts";
import { loopback, recorder, testClient } from "./helpers/fake.ts";
import { rejectsWith } from "./helpers/checks.ts";
import type { Outcome } from "./helpers/refusal_child.ts";

const VAULT = "https://vault.azure.net";
const APP_SERVICE = { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/msi/token", IDENTITY_HEADER: "h" };

/** Deno's permission error class, as `Deno.errors.NotCapable` is shaped. */
class NotCapable extends Error {
  override name = "NotCapable";
}

const denoNet = (target: string) =>
  new NotCapable(`Requires net access to "${target}", run again with the --allow-net flag`);
const denoRead = (path: string) =>
  new NotCapable(`Requires read access to "${path}", run again with the --allow-read flag`);

/** A fetch option that counts its calls and throws `error`. */
function throwing(error: unknown) {
  const calls: string[] = [];
  return {
    calls,
    fetch: (request: Request): Promise<Response> => {
      calls.push(request.url);
      return Promise.reject(error);
    },
  };
}

/** Awaits `invalid_configuration` that is not a CredentialUnavailableError and names `flag`. */
async function refused(promise: Promise<unknown>, flag: string, source?: string) {
  const error = await rejectsWith(promise, "invalid_configuration", source);
  assert.ok(!(error instanceof CredentialUnavailableError), "a refusal is not unavailable");
  assert.ok(error.message.includes(flag), `"${flag}" is not named: ${error.message}`);
  return error;
}

describe("a permission refused to the request is invalid_configuration, on every runtime", () => {
  test("acquireToken() with a fetch that throws NotCapable names --allow-net=<host:port>, one attempt, no retry", async () => {
    const events: ManagedIdentityEvent[] = [];
    const fake = throwing(denoNet("127.0.0.1:40342"));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch, onEvent: (event) => events.push(event) });
    const error = await refused(client.acquireToken(VAULT), "--allow-net=127.0.0.1:40342", "AppService");
    assert.equal(error.endpoint, "http://127.0.0.1:40342/msi/token");
    assert.equal(fake.calls.length, 1, "never retried");
    assert.deepEqual(events, []);
    assert.doesNotMatch(error.message, /unavailable|api-version/);
  });

  test("acquireToken() finds NotCapable wrapped as a TypeError's cause", async () => {
    const fake = throwing(new TypeError("fetch failed", { cause: denoNet("127.0.0.1:40342") }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await refused(client.acquireToken(VAULT), "--allow-net=127.0.0.1:40342");
    assert.equal(fake.calls.length, 1);
  });

  test("acquireToken() names the host alone when the endpoint uses the default port", async () => {
    const fake = throwing(denoNet("127.0.0.1:80"));
    const client = testClient({ env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1" }, fetch: fake.fetch });
    const error = await refused(client.acquireToken(VAULT), "--allow-net=127.0.0.1", "DefaultToIMDS");
    assert.doesNotMatch(error.message, /--allow-net=127\.0\.0\.1:/);
  });

  test("acquireToken() on IMDS: the first-contact probe passes a refusal on, and does not remember IMDS as absent", async () => {
    const fake = throwing(denoNet("127.0.0.1:80"));
    const client = testClient({
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1" },
      fetch: fake.fetch,
      imdsProbe: true,
    });
    await refused(client.acquireToken(VAULT), "--allow-net=127.0.0.1", "DefaultToIMDS");
    assert.equal(fake.calls.length, 1, "one probe");
    const again = await refused(client.acquireToken(VAULT), "--allow-net=127.0.0.1");
    assert.doesNotMatch(again.message, /No managed identity endpoint here/);
    assert.equal(fake.calls.length, 2, "asked again, not remembered as absent");
  });

  test("acquireToken() with Deno's node:net refusal for a host name (getaddrinfo EPERM) names --allow-net", async () => {
    const error = Object.assign(new Error("getaddrinfo EPERM localhost"), {
      errno: -1,
      code: "EPERM",
      syscall: "getaddrinfo",
      hostname: "localhost",
    });
    const fake = throwing(error);
    const client = testClient({
      env: { IDENTITY_ENDPOINT: "http://localhost:40342/msi/token", IDENTITY_HEADER: "h" },
      fetch: fake.fetch,
    });
    await refused(client.acquireToken(VAULT), "--allow-net=localhost:40342");
    assert.equal(fake.calls.length, 1);
  });

  test("acquireToken() under Node's permission model (ERR_ACCESS_DENIED) names --allow-net", async () => {
    const denied = Object.assign(
      new Error("Access to this API has been restricted. Use --allow-net to manage permissions."),
      { code: "ERR_ACCESS_DENIED", permission: "Net" },
    );
    const fake = throwing(new TypeError("fetch failed", { cause: denied }));
    const client = testClient({ env: APP_SERVICE, fetch: fake.fetch });
    await refused(client.acquireToken(VAULT), "--allow-net");
    assert.equal(fake.calls.length, 1);
  });

  test("acquireToken() with workload identity names Entra's host when the token request is refused", async () => {
    const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-perm-"));
    try {
      const path = join(dir, "azure-identity-token");
      await fsp.writeFile(path, "header.payload.signature");
      const fake = throwing(denoNet("login.microsoftonline.com:443"));
      const client = testClient({
        env: { AZURE_FEDERATED_TOKEN_FILE: path, AZURE_TENANT_ID: "t", AZURE_CLIENT_ID: "c" },
        fetch: fake.fetch,
      });
      await refused(client.acquireToken(VAULT), "--allow-net=login.microsoftonline.com", "WorkloadIdentity");
      assert.equal(fake.calls.length, 1);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test("acquireToken() still reports unavailable for a refused connection", async () => {
    const refusedConnection = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:40342"), {
        code: "ECONNREFUSED",
        syscall: "connect",
        address: "127.0.0.1",
        port: 40342,
      }),
    });
    const client = testClient({ env: APP_SERVICE, fetch: throwing(refusedConnection).fetch, retry: false });
    const error = await rejectsWith(client.acquireToken(VAULT), "unavailable");
    assert.ok(error instanceof CredentialUnavailableError);
    assert.match(error.message, /ECONNREFUSED 127\.0\.0\.1:40342/);
  });
});

describe("a permission refused to a file read is invalid_configuration, on every runtime", () => {
  const ARC_DIR = "/var/opt/azcmagent/tokens";
  const ARC_ENV = {
    IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
    IMDS_ENDPOINT: "http://127.0.0.1:40342",
  };
  const agent = () =>
    recorder(() =>
      new Response(null, { status: 401, headers: { "www-authenticate": `Basic realm=${ARC_DIR}/abc.key` } })
    );
  const arcFiles = (error: unknown): ArcKeyFileSystem => ({
    lstat: () => Promise.reject(error),
    open: () => Promise.reject(error),
  });

  test("acquireToken() on Azure Arc names --allow-read=<token directory> when Deno refuses the key file", async () => {
    const fake = agent();
    const client = testClient({ env: ARC_ENV, fetch: fake.fetch }, {
      arcFileSystem: arcFiles(denoRead(`${ARC_DIR}/abc.key`)),
    });
    const error = await refused(client.acquireToken(VAULT), `--allow-read=${ARC_DIR}`, "AzureArc");
    assert.doesNotMatch(error.message, /himds/, "not the OS's advice");
    assert.equal(fake.seen.length, 1, "the challenge only");
  });

  test("acquireToken() on Azure Arc under Node's permission model names --allow-fs-read", async () => {
    const denied = Object.assign(new Error("Access to this API has been restricted"), {
      code: "ERR_ACCESS_DENIED",
      permission: "FileSystemRead",
      resource: `${ARC_DIR}/abc.key`,
    });
    const client = testClient({ env: ARC_ENV, fetch: agent().fetch }, { arcFileSystem: arcFiles(denied) });
    await refused(client.acquireToken(VAULT), `--allow-fs-read=${ARC_DIR}`, "AzureArc");
  });

  test("acquireToken() on Azure Arc keeps the OS's EACCES as arc_key_permission_denied (the himds group)", async () => {
    const eacces = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    const client = testClient({ env: ARC_ENV, fetch: agent().fetch }, { arcFileSystem: arcFiles(eacces) });
    const error = await rejectsWith(client.acquireToken(VAULT), "arc_key_permission_denied", "AzureArc");
    assert.match(error.message, /himds/);
  });

  test("acquireToken() with workload identity names --allow-read=<token file> when Deno refuses it", async () => {
    const path = "/var/run/secrets/azure/tokens/azure-identity-token";
    const files: TokenFileSystem = { open: () => Promise.reject(denoRead(path)) };
    const fake = recorder();
    const client = testClient(
      { env: { AZURE_FEDERATED_TOKEN_FILE: path, AZURE_TENANT_ID: "t", AZURE_CLIENT_ID: "c" }, fetch: fake.fetch },
      { tokenFileSystem: files },
    );
    await refused(client.acquireToken(VAULT), `--allow-read=${path}`, "WorkloadIdentity");
    assert.equal(fake.seen.length, 0);
  });
});

describe("on Deno, for real: a child process without the permissions", () => {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const skip = deno ? false : "Deno's permissions only";

  /** Runs tests/helpers/refusal_child.ts with `flags` and returns each scenario's outcome. */
  /** Runs the child; `dir` is a real path (no link on the way, as macOS's /var is), since flags name paths. */
  async function child(flags: string[], port: number, dir: string, scenarios: string[]) {
    const plan = {
      port,
      dir,
      keyFile: join(dir, "agent.key"),
      tokenFile: join(dir, "azure-identity-token"),
      scenarios,
    };
    // Deno.Command, not node:child_process: Deno's node layer passes its own permissions on
    // when a Deno process spawns Deno, which would hide what these tests are about.
    const { Deno } = globalThis as unknown as {
      Deno: {
        execPath(): string;
        Command: new (command: string, options: { args: string[] }) => {
          output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
        };
      };
    };
    const script = new URL("./helpers/refusal_child.ts", import.meta.url).href;
    const args = ["run", "--no-prompt", "--quiet", ...flags, script, JSON.stringify(plan)];
    const result = await new Deno.Command(Deno.execPath(), { args }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assert.equal(result.code, 0, decode(result.stderr));
    const outcomes = decode(result.stdout).trim().split("\n").map((line) => JSON.parse(line) as Outcome);
    return new Map(outcomes.map((outcome) => [outcome.scenario, outcome]));
  }

  test("without --allow-net or --allow-read: every request and file read names the flag to add", { skip }, async () => {
    const server = await loopback((_request, response) => response.end());
    const dir = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "azmi-perm-")));
    try {
      await fsp.writeFile(join(dir, "agent.key"), "key");
      await fsp.writeFile(join(dir, "azure-identity-token"), "header.payload.signature");
      const port = Number(new URL(server.url).port);
      const scenarios = ["app-service", "imds", "fetch", "net", "net-localhost", "arc-key", "token-file"];
      const outcomes = await child([], port, dir, scenarios);
      const net = `--allow-net=127.0.0.1:${port}`;
      const expected: Record<string, string> = {
        "app-service": net,
        "imds": net,
        "fetch": net,
        "net": net,
        "net-localhost": `--allow-net=localhost:${port}`,
        "arc-key": `--allow-read=${dir}`,
        "token-file": `--allow-read=${join(dir, "azure-identity-token")}`,
      };
      for (const [scenario, flag] of Object.entries(expected)) {
        const outcome = outcomes.get(scenario);
        assert.ok(outcome, `no outcome for ${scenario}`);
        assert.equal(outcome.code, "invalid_configuration", `${scenario}: ${outcome.message}`);
        assert.equal(outcome.name, "ManagedIdentityError", scenario);
        assert.ok(outcome.message?.includes(flag), `${scenario} does not name ${flag}: ${outcome.message}`);
        assert.equal(outcome.retries, 0, `${scenario} was retried`);
      }
      // The fetch option's calls: one attempt each (Arc's is the challenge, answered by the fake agent).
      for (const scenario of ["fetch", "net", "net-localhost", "arc-key"]) {
        assert.equal(outcomes.get(scenario)?.attempts, 1, scenario);
      }
      assert.equal(outcomes.get("imds")?.again, "invalid_configuration", "IMDS is not remembered as absent");
      // azmi doctor names the flag where it checks whether the endpoint answers, and calls nothing unreachable.
      const doctor = (await child([], port, dir, ["doctor"])).get("doctor")!;
      assert.match(doctor.message!, new RegExp(`Not tried: the runtime refused to connect: grant ${net}\\.`));
      assert.doesNotMatch(doctor.message!, /Unreachable|Nothing accepts connections/);
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test(
    "with --allow-read for the token file but no --allow-net: the request to Entra ID names --allow-net",
    { skip },
    async () => {
      const server = await loopback((_request, response) => response.end());
      const dir = await fsp.realpath(await fsp.mkdtemp(join(tmpdir(), "azmi-perm-")));
      try {
        const path = join(dir, "azure-identity-token");
        await fsp.writeFile(path, "header.payload.signature");
        const port = Number(new URL(server.url).port);
        const outcomes = await child([`--allow-read=${path}`], port, dir, ["entra"]);
        const outcome = outcomes.get("entra")!;
        assert.equal(outcome.code, "invalid_configuration", outcome.message);
        assert.ok(outcome.message?.includes(`--allow-net=127.0.0.1:${port}`), outcome.message);
        assert.equal(outcome.retries, 0);
        assert.equal(server.requests.length, 0);
      } finally {
        await server.close();
        await fsp.rm(dir, { recursive: true, force: true });
      }
    },
  );
});
