/**
 * A proxy in the environment never sees a local endpoint's request (docs/security.md, "No
 * proxy for local endpoints"): a child process of this runtime, with every proxy variable set
 * to a loopback proxy that counts connections, acquires a token from a loopback endpoint of each
 * local source. Deno's and Bun's `fetch` honour those variables, and Node's does with
 * `NODE_USE_ENV_PROXY=1`; the proxy would receive `X-IDENTITY-HEADER`, the Arc key or the Azure
 * ML secret in clear and could answer with a token of its choosing. Workload identity's request
 * to Microsoft Entra ID is a remote HTTPS request, which must keep going through the proxy.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { readClaims, serve } from "../src/emulator/mod.ts";
import type { Outcome, Plan } from "./helpers/acquire_child.ts";
import { runChild } from "./helpers/child.ts";

const CHILD = fileURLToPath(new URL("./helpers/acquire_child.ts", import.meta.url));

/** A loopback "proxy" that records every connection and what it asked for, and answers 502. */
async function countingProxy(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    seen.push("(connected)");
    const index = seen.length - 1;
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", (chunk: Uint8Array) => {
      // The request line only: what was asked for (an absolute URL, or CONNECT host:port).
      seen[index] = new TextDecoder().decode(chunk).split("\r\n")[0]!;
      socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Every proxy variable the runtimes read, upper and lower case, with a NO_PROXY that matches nothing here. */
function proxyEnv(proxy: string): Record<string, string> {
  const env: Record<string, string> = { NODE_USE_ENV_PROXY: "1" };
  for (const name of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]) {
    env[name] = proxy;
    env[name.toLowerCase()] = proxy;
  }
  env.NO_PROXY = env.no_proxy = "example.invalid";
  return env;
}

const LOCAL_SOURCES = ["DefaultToIMDS", "AppService", "AzureArc", "CloudShell", "AzureML", "ServiceFabric"] as const;

describe("a proxy in the environment", () => {
  test("never sees the request of any local source, and the token is the endpoint's", { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-proxy-"));
    const running = await serve({ sources: LOCAL_SOURCES, arcKeyDirectory: dir });
    const proxy = await countingProxy();
    try {
      const plans: Plan[] = LOCAL_SOURCES.map((source) => ({
        source,
        env: { ...running.env[source]! },
        resource: "https://vault.azure.net",
        internal: { arcTokenDirectory: dir },
        timeoutMs: 5000,
      }));
      const run = await runChild(CHILD, [JSON.stringify(plans)], proxyEnv(proxy.url), 60_000);
      assert.equal(run.code, 0, run.stderr);
      const outcomes = run.lines.slice(0, -1).map((line) => JSON.parse(line.text) as Outcome);
      assert.deepEqual(
        outcomes.map((o) => [o.source, o.detected, o.code]),
        LOCAL_SOURCES.map((s) => [s, s, undefined]),
      );
      for (const outcome of outcomes) {
        assert.equal(readClaims(outcome.token!)?.iss, running.issuer, `${outcome.source}: not the emulator's token`);
      }
      assert.deepEqual(proxy.seen, [], "the proxy saw a local endpoint's request");
      // Each local source reached the emulator itself.
      for (const source of LOCAL_SOURCES) {
        assert.ok(running.emulator.requests.some((r) => r.source === source && r.status === 200), source);
      }
    } finally {
      await proxy.close();
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("still carries workload identity's request to a remote Microsoft Entra ID", { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-proxy-"));
    const proxy = await countingProxy();
    try {
      const { writeFile } = await import("node:fs/promises");
      const file = join(dir, "token");
      await writeFile(file, "federated-token");
      const plans: Plan[] = [{
        source: "WorkloadIdentity",
        env: {
          AZURE_FEDERATED_TOKEN_FILE: file,
          AZURE_TENANT_ID: "00000000-0000-0000-0000-000000000001",
          AZURE_CLIENT_ID: "00000000-0000-0000-0000-000000000002",
          // A name that resolves nowhere: only the proxy can carry the request.
          AZURE_AUTHORITY_HOST: "https://login.example.test",
        },
        resource: "https://vault.azure.net",
        timeoutMs: 5000,
      }];
      const run = await runChild(CHILD, [JSON.stringify(plans)], proxyEnv(proxy.url), 60_000);
      assert.equal(run.code, 0, run.stderr);
      const [outcome] = run.lines.slice(0, -1).map((line) => JSON.parse(line.text) as Outcome);
      assert.equal(outcome?.detected, "WorkloadIdentity");
      assert.notEqual(outcome?.code, undefined, "no token can come from a proxy that answers 502");
      assert.ok(
        proxy.seen.some((line) => /^CONNECT login\.example\.test:443 /.test(line)),
        `the proxy saw: ${JSON.stringify(proxy.seen)}`,
      );
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
