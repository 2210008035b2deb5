/**
 * A process ends when its work ends: once a call has settled, nothing of the client keeps the
 * process alive (no listener on a long-lived signal, no timer, no socket), on every source and
 * path. A child process of this runtime acquires a token from each of the seven sources (the
 * emulator, in this process) and prints its last line; it must exit within a second of it,
 * although every attempt's timeout is far longer.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { ALL_SOURCES, serve } from "../src/emulator/mod.ts";
import type { Fault } from "../src/emulator/mod.ts";
import type { Outcome, Plan } from "./helpers/acquire_child.ts";
import { runChild } from "./helpers/child.ts";
import { closedPort, silentServer } from "./helpers/sockets.ts";

const CHILD = fileURLToPath(new URL("./helpers/acquire_child.ts", import.meta.url));
// Far longer than the allowed second: a listener or timer left on it shows.
const TIMEOUT_MS = 20_000;
// Endpoints that the in-process emulator's handler answers (no server listens there).
const APP_SERVICE_IN_PROCESS = { IDENTITY_ENDPOINT: "http://127.0.0.1:9/token", IDENTITY_HEADER: "h" };

async function exitDelay(
  plans: (dir: string, env: (source: (typeof ALL_SOURCES)[number]) => Record<string, string>) => Plan[],
  faults: Partial<Record<(typeof ALL_SOURCES)[number], readonly Fault[]>> = {},
): Promise<{ outcomes: Outcome[]; delayMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), "azmi-exit-"));
  const running = await serve({ arcKeyDirectory: dir, federatedTokenDirectory: dir, faults });
  try {
    const run = await runChild(CHILD, [JSON.stringify(plans(dir, (s) => ({ ...running.env[s]! })))], {}, 60_000);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.lines.at(-1)?.text, "done", run.stderr);
    return {
      outcomes: run.lines.slice(0, -1).map((line) => JSON.parse(line.text) as Outcome),
      delayMs: run.exitedAt - run.lines.at(-1)!.at,
    };
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
}

describe("a process that used the client", () => {
  test("exits within 1 s of its last token, one from each of the seven sources", { timeout: 90_000 }, async () => {
    const { outcomes, delayMs } = await exitDelay((dir, env) =>
      ALL_SOURCES.map((source) => ({
        source,
        env: env(source),
        resource: "https://vault.azure.net",
        internal: { arcTokenDirectory: dir },
        timeoutMs: TIMEOUT_MS,
      }))
    );
    assert.deepEqual(
      outcomes.map((o) => [o.detected, o.code, typeof o.token]),
      ALL_SOURCES.map((s) => [s, undefined, "string"]),
    );
    assert.ok(delayMs < 1000, `the process took ${Math.round(delayMs)} ms to exit after its last line`);
  });

  test(
    "exits within 1 s of its last error: endpoint errors, a retry, a refused connection",
    { timeout: 90_000 },
    async () => {
      const port = await closedPort();
      const { outcomes, delayMs } = await exitDelay(
        (dir, env) => [
          // Every source answers 400, which none retries (IMDS: its probe and then the request).
          ...ALL_SOURCES.map((source) => ({
            source,
            env: env(source),
            resource: "https://vault.azure.net",
            internal: { arcTokenDirectory: dir },
            timeoutMs: TIMEOUT_MS,
          })),
          // Nothing listens: the connection is refused.
          {
            source: "AppService",
            env: { IDENTITY_ENDPOINT: `http://127.0.0.1:${port}/token`, IDENTITY_HEADER: "h" },
            resource: "https://vault.azure.net",
            timeoutMs: TIMEOUT_MS,
          },
        ],
        Object.fromEntries(ALL_SOURCES.map((source) => [source, [{ status: 400 }, { status: 400 }]])),
      );
      assert.equal(outcomes.length, ALL_SOURCES.length + 1);
      for (const outcome of outcomes) assert.notEqual(outcome.code, undefined, JSON.stringify(outcome));
      assert.ok(delayMs < 1000, `the process took ${Math.round(delayMs)} ms to exit after its last line`);
    },
  );

  test("exits within 1 s of its last call: a retry, an abort and a timeout on endpoints that never answer", {
    timeout: 90_000,
  }, async () => {
    const silent = await silentServer();
    try {
      const never = { IDENTITY_ENDPOINT: `${silent.origin}/token`, IDENTITY_HEADER: "h" };
      const { outcomes, delayMs } = await exitDelay(
        (_dir, env) => [
          // A 500, retried after 1 s, then the token.
          { source: "AppService", env: env("AppService"), resource: "https://vault.azure.net", timeoutMs: TIMEOUT_MS },
          // The caller gives up on an endpoint that never answers.
          { source: "AppService", env: never, resource: "https://a.example", timeoutMs: TIMEOUT_MS, abortAfterMs: 200 },
          // The attempt's own timeout ends it.
          { source: "AppService", env: never, resource: "https://b.example", timeoutMs: 300, retry: false },
        ],
        { AppService: [{ status: 500 }] },
      );
      assert.deepEqual(outcomes.map((o) => o.code ?? typeof o.token), ["string", "aborted", "timeout"]);
      assert.ok(delayMs < 1000, `the process took ${Math.round(delayMs)} ms to exit after its last line`);
    } finally {
      await silent.close();
    }
  });

  test(
    "stays alive while an in-process emulator leaves a request unanswered, as a real connection holds it, and exits after the timeout",
    {
      timeout: 90_000,
    },
    async () => {
      // The emulator's handler as `fetch`, `silent`: nothing but the wait itself holds the process
      // while the attempt's (unref'd) timeout runs. Without its hold the process would end with
      // the call still pending, printing nothing (Node: exit code 13, an unsettled top-level
      // await; Deno and Bun keep a process alive for the timeout themselves).
      const { outcomes, delayMs } = await exitDelay(() => [
        {
          source: "AppService",
          env: APP_SERVICE_IN_PROCESS,
          resource: "https://c.example",
          timeoutMs: 300,
          retry: false,
          inProcess: "silent",
        },
      ]);
      assert.deepEqual(outcomes.map((o) => o.code ?? typeof o.token), ["timeout"]);
      assert.ok(delayMs < 1000, `the process took ${Math.round(delayMs)} ms to exit after its last line`);
    },
  );
});
