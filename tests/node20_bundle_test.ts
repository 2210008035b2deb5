/**
 * The module as JavaScript on Node 20, as JSR's npm users on an older Node get it: `mod.ts`
 * bundled by `deno bundle` into one ES module, imported by a script that Node 20 runs, which
 * serves a loopback App Service endpoint and a loopback Entra token endpoint (workload identity,
 * with a federated token file) from `node:http` in the same process, gets tokens and an error,
 * and prints what it saw as JSON.
 *
 * Runs under `deno test` only (it bundles with the running Deno); skipped under Bun and Node.
 * Node 20 is `AZMI_NODE20` (a path to a node binary, which must be Node 20), else `node` on PATH,
 * else `/usr/bin/node`, whichever is Node 20; skipped, saying so, where there is none.
 * Node 20.18.0 is the oldest that can run the module: it has `URL.parse` (20.18.0),
 * `process.getBuiltinModule` (20.16.0) and `AbortSignal.any` (20.3.0).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;

/** `[major, minor, patch]` of `command --version`, or undefined when it does not run. */
function versionOf(command: string): [number, number, number] | undefined {
  try {
    const text = execFileSync(command, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const match = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
    return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : undefined;
  } catch {
    return undefined;
  }
}

/** The Node 20 to run, or why the test is skipped. */
function findNode20(): { node: string; version: [number, number, number] } | { skip: string } {
  if (!deno) return { skip: "bundled with deno bundle: runs under deno test only" };
  const named = process.env.AZMI_NODE20;
  if (named) {
    const version = versionOf(named);
    // A wrong AZMI_NODE20 is a mistake to report, not a reason to skip.
    if (version?.[0] !== 20) {
      throw new Error(`AZMI_NODE20=${named} is not Node 20 (${version?.join(".") ?? "no version"})`);
    }
    return { node: named, version };
  }
  for (const candidate of ["node", ...(process.platform === "win32" ? [] : ["/usr/bin/node"])]) {
    const version = versionOf(candidate);
    if (version?.[0] === 20) return { node: candidate, version };
  }
  return { skip: "no Node 20 found (neither AZMI_NODE20, node on PATH nor /usr/bin/node is Node 20)" };
}

const found = findNode20();

/** The script Node 20 runs: `node child.mjs ./azmi.mjs`. Plain JavaScript, no TypeScript. */
const CHILD = String.raw`
import { createServer } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const { ManagedIdentityClient, ManagedIdentityError } = await import(pathToFileURL(process.argv[2]).href);
const seen = [];
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => body += chunk);
  req.on("end", () => {
    const url = new URL(req.url, "http://127.0.0.1");
    seen.push({ method: req.method, path: url.pathname, query: url.search, identityHeader: req.headers["x-identity-header"] ?? null, body });
    res.setHeader("content-type", "application/json");
    if (url.searchParams.get("resource") === "https://refused.example") {
      res.statusCode = 400;
      res.end(JSON.stringify({ statusCode: 400, message: "no such resource" }));
    } else if (url.pathname.endsWith("/oauth2/v2.0/token")) {
      res.end(JSON.stringify({ access_token: "wi-token", token_type: "Bearer", expires_in: 3599 }));
    } else {
      const expiresOn = String(Math.floor(Date.now() / 1000) + 3600);
      res.end(JSON.stringify({ access_token: "app-service-token", token_type: "Bearer", expires_on: expiresOn, resource: url.searchParams.get("resource") }));
    }
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = "http://127.0.0.1:" + server.address().port;
const dir = await mkdtemp(join(tmpdir(), "azmi-node20-"));
const result = { node: process.version };
try {
  const appService = new ManagedIdentityClient({ env: { IDENTITY_ENDPOINT: origin + "/msi/token", IDENTITY_HEADER: "node20-header" }, retry: false });
  const first = await appService.acquireToken("https://vault.azure.net");
  const second = await appService.acquireToken("https://vault.azure.net");
  result.appService = {
    source: first.source,
    accessToken: first.accessToken,
    tokenType: first.tokenType,
    fromCache: [first.fromCache, second.fromCache],
    expiresInS: Math.round((first.expiresOn.getTime() - Date.now()) / 1000),
  };
  try {
    await appService.acquireToken("https://refused.example");
    result.refused = null;
  } catch (error) {
    result.refused = { managedIdentityError: error instanceof ManagedIdentityError, code: error.code, status: error.status, message: error.message };
  }
  const file = join(dir, "token");
  await writeFile(file, "federated-assertion\n");
  const workload = new ManagedIdentityClient({
    env: { AZURE_FEDERATED_TOKEN_FILE: file, AZURE_AUTHORITY_HOST: origin, AZURE_TENANT_ID: "tenant-id", AZURE_CLIENT_ID: "client-id" },
    retry: false,
  });
  const token = await workload.acquireToken("https://storage.azure.com");
  result.workloadIdentity = { source: token.source, accessToken: token.accessToken };
} catch (error) {
  result.crash = String(error?.stack ?? error);
} finally {
  server.close();
  await rm(dir, { recursive: true, force: true });
}
result.seen = seen;
console.log(JSON.stringify(result));
`;

function runFile(command: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

test(
  "the bundled module gets tokens from loopback endpoints on Node 20",
  { skip: "skip" in found ? found.skip : false },
  async () => {
    if ("skip" in found) return;
    const [major, minor] = found.version;
    assert.ok(
      major > 20 || minor >= 18,
      `${found.node} is Node ${found.version.join(".")}: the module needs 20.18.0 or later (URL.parse)`,
    );
    const dir = await mkdtemp(join(tmpdir(), "azmi-bundle-"));
    try {
      const root = fileURLToPath(new URL("../", import.meta.url));
      const bundle = join(dir, "azmi.mjs");
      await runFile(deno!.execPath(), [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--format",
        "esm",
        "--output",
        bundle,
        join(root, "mod.ts"),
      ], root);
      await writeFile(join(dir, "child.mjs"), CHILD);
      const { stdout } = await runFile(found.node, ["child.mjs", bundle], dir);
      const result = JSON.parse(stdout.trim().split("\n").pop()!);
      assert.equal(result.crash, undefined, result.crash);
      assert.equal(result.node, `v${found.version.join(".")}`);
      assert.deepEqual(result.appService, {
        source: "AppService",
        accessToken: "app-service-token",
        tokenType: "Bearer",
        fromCache: [false, true],
        expiresInS: result.appService.expiresInS,
      });
      assert.ok(Math.abs(result.appService.expiresInS - 3600) <= 5, `expires in ${result.appService.expiresInS} s`);
      assert.deepEqual(result.refused, {
        managedIdentityError: true,
        code: "request_failed",
        status: 400,
        message: 'Cannot acquire token from "AppService": endpoint answered 400 (no such resource)',
      });
      assert.deepEqual(result.workloadIdentity, { source: "WorkloadIdentity", accessToken: "wi-token" });
      assert.deepEqual(result.seen, [
        {
          method: "GET",
          path: "/msi/token",
          query: "?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net",
          identityHeader: "node20-header",
          body: "",
        },
        {
          method: "GET",
          path: "/msi/token",
          query: "?api-version=2019-08-01&resource=https%3A%2F%2Frefused.example",
          identityHeader: "node20-header",
          body: "",
        },
        {
          method: "POST",
          path: "/tenant-id/oauth2/v2.0/token",
          query: "",
          identityHeader: null,
          body: new URLSearchParams({
            client_id: "client-id",
            scope: "https://storage.azure.com/.default",
            grant_type: "client_credentials",
            client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            client_assertion: "federated-assertion",
          }).toString(),
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
