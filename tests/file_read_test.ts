/**
 * Reading a secret file (src/file_read.ts: Azure Arc's key, workload identity's token file)
 * leaves nothing behind that keeps the process alive. On Deno, an `AbortSignal.timeout` with an
 * `abort` listener holds the event loop open until it fires: a listener left on the attempt's
 * timeout would keep a script that got its token running for `timeoutMs` more.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

describe("secret file reads and the process's lifetime", () => {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;

  test(
    "a Deno script that reads the token file and Arc's key exits at once, not after timeoutMs",
    { skip: deno ? false : "Deno's timers only" },
    async () => {
      const dir = await realpath(await mkdtemp(join(tmpdir(), "azmi-lifetime-")));
      try {
        await writeFile(join(dir, "azure-identity-token"), "header.payload.signature");
        await writeFile(join(dir, "agent.key"), "key");
        const script = join(dir, "lifetime.ts");
        const fake = new URL("./helpers/fake.ts", import.meta.url).href;
        await writeFile(
          script,
          `import { testClient } from ${JSON.stringify(fake)};
const dir = ${JSON.stringify(dir)};
const tokenFile = ${JSON.stringify(join(dir, "azure-identity-token"))};
const keyFile = ${JSON.stringify(join(dir, "agent.key"))};
const platform = Deno.build.os === "windows" ? "win32" : "linux";
const token = () => Response.json({ access_token: "t", expires_in: 3600 });
const workload = testClient({
  env: { AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_TENANT_ID: "t", AZURE_CLIENT_ID: "c" },
  fetch: token,
  timeoutMs: 20000,
});
await workload.acquireToken("https://vault.azure.net");
const arc = testClient({
  env: { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token", IMDS_ENDPOINT: "http://127.0.0.1:40342" },
  fetch: (request) => request.headers.has("authorization")
    ? token()
    : new Response(null, { status: 401, headers: { "www-authenticate": "Basic realm=" + keyFile } }),
  timeoutMs: 20000,
}, { arcTokenDirectory: dir, platform });
await arc.acquireToken("https://vault.azure.net");
console.log("done");
`,
        );
        const { Deno } = globalThis as unknown as {
          Deno: {
            execPath(): string;
            Command: new (command: string, options: { args: string[] }) => {
              output(): Promise<{ code: number; stdout: Uint8Array; stderr: Uint8Array }>;
            };
          };
        };
        const started = performance.now();
        const child = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-prompt", "--quiet", `--allow-read=${dir}`, script],
        }).output();
        const took = performance.now() - started;
        const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
        assert.equal(child.code, 0, decode(child.stderr));
        assert.equal(decode(child.stdout).trim(), "done");
        assert.ok(took < 10_000, `the process lived ${Math.round(took)} ms: something kept it alive`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
