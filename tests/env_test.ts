import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { detectSource, type EnvRecord } from "../mod.ts";
import { ENV_NAMES, envReader } from "../src/env.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** An env record that remembers every variable read from it. */
function watchedEnv(values: Record<string, string>): { env: EnvRecord; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy(values, {
    get(target, name) {
      if (typeof name === "string") read.add(name);
      return Reflect.get(target, name);
    },
  });
  return { env, read };
}

describe("envReader()", () => {
  test("envReader() returns the value of a set variable", () => {
    assert.equal(
      envReader({ MSI_ENDPOINT: "http://127.0.0.1:41741/token" })("MSI_ENDPOINT"),
      "http://127.0.0.1:41741/token",
    );
  });

  test("envReader() counts an empty string as unset", () => {
    const read = envReader({ IDENTITY_ENDPOINT: "", IDENTITY_HEADER: "h" });
    assert.equal(read("IDENTITY_ENDPOINT"), undefined);
    assert.equal(read("IDENTITY_HEADER"), "h");
    assert.equal(read("MSI_ENDPOINT"), undefined);
  });

  test("envReader() keeps whitespace values as they are", () => {
    assert.equal(envReader({ DEFAULT_IDENTITY_CLIENT_ID: " " })("DEFAULT_IDENTITY_CLIENT_ID"), " ");
  });

  test("envReader() with an env record never reads the process env", () => {
    // PATH is set in every process that runs these tests; the record does not have it.
    const fromProcess = envReader()("PATH");
    assert.equal(typeof fromProcess, "string");
    assert.notEqual(fromProcess, "");
    assert.equal(envReader({})("PATH"), undefined);
    assert.equal(envReader({ OTHER: "x" })("PATH"), undefined);
  });

  test("envReader() reads the record at each call, never a snapshot", () => {
    const record: Record<string, string> = {};
    const read = envReader(record);
    assert.equal(read("MSI_ENDPOINT"), undefined);
    record.MSI_ENDPOINT = "http://127.0.0.1:41741/token";
    assert.equal(read("MSI_ENDPOINT"), "http://127.0.0.1:41741/token");
  });

  test("detectSource() counts an empty variable as unset", () => {
    assert.equal(
      detectSource({ IDENTITY_ENDPOINT: "", IDENTITY_HEADER: "h" }, { fileExists: () => false }),
      "DefaultToIMDS",
    );
    assert.equal(detectSource({ MSI_ENDPOINT: "http://127.0.0.1:41741/token", MSI_SECRET: "" }), "CloudShell");
  });
});

describe("ENV_NAMES", () => {
  test("ENV_NAMES lists every variable of PROTOCOL.md once", () => {
    const expected = [
      "IDENTITY_ENDPOINT",
      "IDENTITY_HEADER",
      "IDENTITY_SERVER_THUMBPRINT",
      "IMDS_ENDPOINT",
      "MSI_ENDPOINT",
      "MSI_SECRET",
      "AZURE_POD_IDENTITY_AUTHORITY_HOST",
      "DEFAULT_IDENTITY_CLIENT_ID",
      "ProgramData",
      "ProgramFiles",
    ];
    for (const name of expected) assert.ok(ENV_NAMES.includes(name), `ENV_NAMES lacks ${name}`);
    assert.equal(new Set(ENV_NAMES).size, ENV_NAMES.length);
  });

  test("ENV_NAMES contains every variable detection and the sources read", async () => {
    const endpoint = "http://127.0.0.1:41741/token";
    const scenarios: { values: Record<string, string>; platform: string }[] = [
      { values: {}, platform: "linux" },
      { values: {}, platform: "win32" },
      { values: { ProgramFiles: "C:\\Program Files", ProgramData: "C:\\ProgramData" }, platform: "win32" },
      { values: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:41741/" }, platform: "linux" },
      { values: { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: "h" }, platform: "linux" },
      {
        values: {
          IDENTITY_ENDPOINT: "https://127.0.0.1:41741/token",
          IDENTITY_HEADER: "h",
          IDENTITY_SERVER_THUMBPRINT: "A".repeat(40),
        },
        platform: "linux",
      },
      { values: { IDENTITY_ENDPOINT: endpoint, IMDS_ENDPOINT: "http://127.0.0.1:41742" }, platform: "linux" },
      {
        values: {
          IDENTITY_ENDPOINT: endpoint,
          IMDS_ENDPOINT: "http://127.0.0.1:41742",
          ProgramData: "C:\\ProgramData",
        },
        platform: "win32",
      },
      { values: { MSI_ENDPOINT: endpoint, MSI_SECRET: "s" }, platform: "linux" },
      { values: { MSI_ENDPOINT: endpoint, MSI_SECRET: "s", DEFAULT_IDENTITY_CLIENT_ID: "c" }, platform: "linux" },
      { values: { MSI_ENDPOINT: endpoint }, platform: "linux" },
    ];
    const read = new Set<string>();
    const sources = new Set<string>();
    for (const { values, platform } of scenarios) {
      const watched = watchedEnv(values);
      sources.add(detectSource(watched.env, { platform, fileExists: () => false }));
      const fake = recorder();
      try {
        const client = testClient({ env: watched.env, fetch: fake.fetch, retry: false }, { platform });
        await client.acquireToken("https://vault.azure.net");
      } catch {
        // A source refusing the fake endpoint's answer has read its variables by then.
      }
      for (const name of watched.read) read.add(name);
    }
    // Every source was reached, so the reads cover them all.
    assert.deepEqual(
      [...sources].sort(),
      ["AppService", "AzureArc", "AzureML", "CloudShell", "DefaultToIMDS", "ServiceFabric"],
    );
    assert.ok(read.size > 0);
    for (const name of read) assert.ok(ENV_NAMES.includes(name), `"${name}" is read but not in ENV_NAMES`);
  });
});

describe("the process environment on Deno without --allow-env", () => {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;

  test(
    "new ManagedIdentityClient() reports invalid_configuration naming --allow-env instead of crashing",
    { skip: deno ? false : "Deno's permissions only" },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "azmi-env-"));
      try {
        const script = join(dir, "no_env.ts");
        const mod = new URL("../mod.ts", import.meta.url).href;
        await writeFile(
          script,
          `import { ManagedIdentityClient, ManagedIdentityError } from ${JSON.stringify(mod)};
try {
  new ManagedIdentityClient();
  console.log(JSON.stringify({ created: true }));
} catch (error) {
  console.log(JSON.stringify({ error: error instanceof ManagedIdentityError, code: error.code, message: error.message }));
}
`,
        );
        // Deno.Command, not node:child_process: Deno's node layer passes its own permissions on
        // when a Deno process spawns Deno, which would hide what this test is about.
        const { Deno } = globalThis as unknown as {
          Deno: {
            execPath(): string;
            Command: new (command: string, options: { args: string[] }) => {
              output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
            };
          };
        };
        const child = await new Deno.Command(Deno.execPath(), { args: ["run", "--no-prompt", "--quiet", script] })
          .output();
        const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
        assert.equal(child.code, 0, decode(child.stderr));
        const outcome = JSON.parse(decode(child.stdout).trim()) as { error: boolean; code: string; message: string };
        assert.equal(outcome.error, true);
        assert.equal(outcome.code, "invalid_configuration");
        // The exact flag, with the variable the client read first.
        assert.match(outcome.message, /run it with --allow-env=([A-Za-z_]+)\b/);
        const name = /--allow-env=([A-Za-z_]+)/.exec(outcome.message)![1]!;
        assert.ok(ENV_NAMES.includes(name), name);
        assert.ok(outcome.message.includes(`"${name}"`), outcome.message);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
