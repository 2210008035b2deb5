/**
 * The emulator's servers against requests no well-behaved client sends (issue 17, section 3): a
 * malformed or aborted request is answered with a 4xx or dropped, a body above 64 KiB is refused
 * with 413 without being buffered, and the server keeps serving. Under `deno test`, `bun test`
 * and `node --test`, `serve()` runs each runtime's own server (Deno.serve, Bun.serve, node:http);
 * `azmi emulate` also runs as a child process of the runtime under test. Raw requests go over
 * node:net sockets to 127.0.0.1 (tests/helpers/assault.ts, whose exchange() is checked first:
 * an exchange that ends leaves no timer behind); every loop is bounded in count and time.
 * bench/emulator_load.ts is the longer load run.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { MAX_REQUEST_BODY_BYTES, type RunningEmulator, serve } from "../src/emulator/mod.ts";
import {
  acceptable,
  attacks,
  exchange,
  exportedEnv,
  loadRun,
  normalRequests,
  type Outcome,
  procRss,
  type SourceEnv,
  targets,
} from "./helpers/assault.ts";
import { type EmulateChild, runChild, spawnEmulate } from "./helpers/child.ts";

const MiB = 1024 * 1024;
/**
 * How much the serving process's resident set may grow during a load run: 64 MiB. A run sends
 * dozens of 32 MiB bodies, chunked bodies without end and 1 MiB request targets; measured growth
 * with the 64 KiB cap is 7 to 32 MiB per runtime (docs/benchmarks.md, "The emulator under load"), and without it one 64 MiB
 * body alone grew the emulator by 189 to 358 MiB.
 */
const RSS_BOUND = 64 * MiB;
const runtime = (globalThis as { Deno?: unknown }).Deno
  ? "Deno"
  : (globalThis as { Bun?: unknown }).Bun
  ? "Bun"
  : `Node ${process.versions.node}`;

/** Every normal request `env` allows, once each: throws on the first failure. */
async function serving(env: SourceEnv): Promise<void> {
  for (const request of normalRequests(env)) await request();
}

const portOf = (url: string) => Number(new URL(url).port);

/** A load run's count of hostile requests: each of them against each server `env` names, twice. */
const everyAttackTwice = (env: SourceEnv) => attacks().length * targets(env).length * 2;

describe("exchange(), the raw client of these tests", () => {
  test("a server that drops the connection during a pause step ends the exchange, and leaves nothing running", {
    timeout: 60_000,
  }, async () => {
    // The pause (20 s) is far longer than the server takes to drop the connection (200 ms).
    const child = fileURLToPath(new URL("./helpers/exchange_child.ts", import.meta.url));
    const run = await runChild(child, ["20000"], {}, 40_000);
    assert.equal(run.code, 0, run.stderr);
    const last = run.lines.at(-1);
    assert.ok(last, `no outcome printed: ${run.stderr}`);
    const outcome = JSON.parse(last.text) as Outcome;
    assert.equal(outcome.end, "dropped");
    assert.ok(outcome.ms < 5_000, `the exchange ended after ${outcome.ms} ms`);
    const delay = run.exitedAt - last.at;
    assert.ok(delay < 1_000, `the process took ${Math.round(delay)} ms to exit after the exchange ended`);
  });
});

describe("serve() against malformed, aborted and oversized requests, one at a time", () => {
  let running: RunningEmulator;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "azmi-robust-"));
    running = await serve({
      sources: ["AppService", "CloudShell", "WorkloadIdentity", "ServiceFabric"],
      federatedTokenDirectory: dir,
    });
  });
  after(async () => {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  });

  const endpoints = () => [
    { source: "CloudShell", port: portOf(running.urls.CloudShell!), path: "/msi/token", tls: false },
    {
      source: "WorkloadIdentity",
      port: portOf(running.urls.WorkloadIdentity!),
      path: new URL(running.urls.WorkloadIdentity!).pathname,
      tls: false,
    },
    // node:https, Deno.serve and Bun.serve with TLS: the same requests inside TLS.
    { source: "ServiceFabric", port: portOf(running.urls.ServiceFabric!), path: "/msi/token", tls: true },
  ];

  for (const [index, attack] of attacks().entries()) {
    test(`${attack.kind}: ${attack.name} is ${attack.expect === "413" ? "refused with 413 at once" : "refused or dropped"}, and the server keeps serving`, async () => {
      // In turn: Cloud Shell's server and Entra's (both read a POST form), Service Fabric's (HTTPS).
      const target = endpoints()[index % 3]!;
      const outcome = await exchange(target.port, attacks(target.path)[index]!.steps, 3_000, target.tls);
      assert.ok(
        acceptable(attack, outcome),
        `${runtime}, ${target.source}: ${attack.name} ended ${outcome.end} ${
          outcome.status ?? ""
        } after ${outcome.ms} ms`,
      );
      if (attack.expect === "413") assert.equal(outcome.sent, 0, "refused before any body byte was sent");
      await serving(running.env as SourceEnv);
    });
  }

  test("plain HTTP, garbage and a handshake cut short on the HTTPS port are dropped or refused", async () => {
    const port = portOf(running.urls.ServiceFabric!);
    for (
      const steps of [
        [{ text: "GET /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }],
        [{ text: "\x16\x03\x01\xff\xff" + "\xee".repeat(1000) }],
        [{ text: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" }, { pauseMs: 20 }, { hangup: true }],
      ] as const
    ) {
      const outcome = await exchange(port, steps, 3_000);
      assert.ok(
        outcome.end === "dropped" || outcome.end === "hungup" ||
          (outcome.status !== undefined && outcome.status >= 400 && outcome.status < 500),
        `${runtime}: ${JSON.stringify(steps[0]).slice(0, 40)} ended ${JSON.stringify(outcome)}`,
      );
    }
    await serving(running.env as SourceEnv);
  });

  /** Cloud Shell's form, `resource=...&pad=aaa...`, of exactly `size` bytes. */
  const form = (size: number) => {
    const start = `resource=${encodeURIComponent("https://vault.azure.net")}&pad=`;
    return start + "a".repeat(size - start.length);
  };
  const post = (port: number, body: string, chunked: boolean) => {
    const head = `POST /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nMetadata: true\r\n` +
      "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n";
    if (!chunked) return exchange(port, [{ text: `${head}Content-Length: ${body.length}\r\n\r\n${body}` }], 5_000);
    // In 1000-byte chunks, then the last chunk.
    let text = `${head}Transfer-Encoding: chunked\r\n\r\n`;
    for (let at = 0; at < body.length; at += 1000) {
      const piece = body.slice(at, at + 1000);
      text += `${piece.length.toString(16)}\r\n${piece}\r\n`;
    }
    return exchange(port, [{ text: `${text}0\r\n\r\n` }], 5_000);
  };

  test("the body cap is 64 KiB: a 64 KiB form gets a token, one byte more is 413, with a length or chunked", async () => {
    assert.equal(MAX_REQUEST_BODY_BYTES, 64 * 1024);
    const port = portOf(running.urls.CloudShell!);
    for (const chunked of [false, true]) {
      const at = await post(port, form(MAX_REQUEST_BODY_BYTES), chunked);
      assert.deepEqual([at.end, at.status], ["answered", 200], `${runtime}: 64 KiB, chunked ${chunked}`);
      const over = await post(port, form(MAX_REQUEST_BODY_BYTES + 1), chunked);
      assert.deepEqual([over.end, over.status], ["answered", 413], `${runtime}: 64 KiB + 1, chunked ${chunked}`);
    }
    await serving(running.env as SourceEnv);
  });

  test("a 413 over fetch is JSON that says what the cap is", async () => {
    const response = await fetch(running.urls.CloudShell!, {
      method: "POST",
      headers: { Metadata: "true", "Content-Type": "application/x-www-form-urlencoded" },
      body: form(256 * 1024),
      signal: AbortSignal.timeout(10_000),
    }).catch((error) => error as Error);
    // A client that is still sending when the server answers and closes may see the close instead.
    if (response instanceof Response) {
      assert.equal(response.status, 413);
      const body = await response.json() as { error?: string; error_description?: string };
      assert.equal(body.error, "request_too_large");
      assert.match(body.error_description ?? "", /65536 bytes/);
    }
    await serving(running.env as SourceEnv);
  });
});

describe("serve() answers what its handlers answer, whatever happens in them", () => {
  test("a handler that throws is a JSON 500, and the server keeps serving", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-robust-throw-"));
    // Arc's key directory under a file: writing the challenge's key file throws.
    await writeFile(join(dir, "file"), "");
    const running = await serve({ sources: ["AzureArc"], arcKeyDirectory: join(dir, "file", "keys") });
    try {
      const response = await fetch(`${running.urls.AzureArc}?resource=x&api-version=2020-06-01`, {
        headers: { Metadata: "true" },
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(response.status, 500);
      const body = await response.json() as { error?: string };
      assert.equal(body.error, "emulator_error", `${runtime}: ${JSON.stringify(body)}`);
      const discovery = await fetch(running.openIdConfiguration, { signal: AbortSignal.timeout(10_000) });
      assert.equal(discovery.status, 200);
      await discovery.body?.cancel();
    } finally {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a delay fault holds its delay, a hang fault holds until the client gives up, then ends", async () => {
    const running = await serve({
      sources: ["AppService"],
      faults: { AppService: [{ delayMs: 600 }, { hang: true }] },
    });
    try {
      const env = running.env as SourceEnv;
      const url = `${running.urls.AppService}?resource=x&api-version=2019-08-01`;
      const headers = { "X-IDENTITY-HEADER": running.emulator.secret };
      const started = performance.now();
      const delayed = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
      await delayed.body?.cancel();
      // node:http's request "close" comes once the body is read: the delay must not end there.
      assert.ok(performance.now() - started >= 500, `${runtime}: answered after ${performance.now() - started} ms`);
      const hung = await fetch(url, { headers, signal: AbortSignal.timeout(700) }).then(
        (response) => `answered ${response.status}`,
        (error: Error) => error.name,
      );
      assert.equal(hung, "TimeoutError", runtime);
      // The server saw the client go: the hung handler ended (and logged its request) instead of
      // waiting for ever.
      for (let waited = 0; waited < 3_000 && running.emulator.requests.length < 2; waited += 50) {
        await new Promise((wake) => setTimeout(wake, 50));
      }
      assert.equal(running.emulator.requests.length, 2, `${runtime}: the hung handler never ended`);
      await serving(env);
    } finally {
      await running.close();
    }
  });
});

describe("serve().close() with clients still connected", () => {
  test("close() ends at once while clients hold connections open: after a 413, mid-head, mid-body", async () => {
    const running = await serve({ sources: ["CloudShell"] });
    const port = portOf(running.urls.CloudShell!);
    const holds = [
      // Answered 413 at once, then the client neither sends the rest nor closes.
      `POST /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${2 ** 30}\r\n\r\n${"a".repeat(100_000)}`,
      "GET /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ",
      "POST /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc",
    ];
    const sockets = await Promise.all(holds.map((text) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => socket.write(text, "latin1", () => resolve(socket)));
        socket.on("error", reject);
      })
    ));
    try {
      await new Promise((wake) => setTimeout(wake, 300));
      const started = performance.now();
      const closed = running.close().then(() => performance.now() - started);
      const ms = await Promise.race([closed, new Promise<number>((wake) => setTimeout(() => wake(Infinity), 5_000))]);
      assert.ok(ms < 1_000, `${runtime}: close() took ${ms} ms with ${holds.length} connections held open`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await running.close().catch(() => {});
    }
  });
});

describe("serve() under a load of hostile requests mixed with normal ones", () => {
  test("no normal request fails, memory stays bounded, the server keeps serving", { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-robust-load-"));
    const running = await serve({
      sources: ["AppService", "CloudShell", "WorkloadIdentity", "ServiceFabric"],
      federatedTokenDirectory: dir,
    });
    try {
      const env = running.env as SourceEnv;
      // Warm up: the first requests compile and allocate what every later one reuses.
      for (let round = 0; round < 5; round++) await serving(env);
      // A body that trickles in: refused with 408 once it has taken longer than the deadline.
      const trickle = exchange(portOf(running.urls.CloudShell!), [
        { text: "POST /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nMetadata: true\r\nContent-Length: 1000\r\n\r\n" },
        ...Array.from({ length: 60 }, () => [{ text: "a" }, { pauseMs: 250 }]).flat(),
      ], 14_000);
      const report = await loadRun({
        env,
        // Every hostile request against every server, twice.
        attacks: everyAttackTwice(env),
        concurrency: 8,
        normal: 120,
        maxMs: 30_000,
        exchangeMs: 2_000,
        rss: () => process.memoryUsage().rss,
      });
      const summary = `${runtime}: ${JSON.stringify(report)}`;
      console.log(`# load run, ${summary}`);
      assert.deepEqual(report.normal, { ok: 120, failed: 0, errors: [] }, summary);
      assert.equal(report.attacks, everyAttackTwice(env), summary);
      assert.deepEqual(report.unexpected, [], summary);
      const growth = report.rss!.peak - report.rss!.before;
      assert.ok(growth < RSS_BOUND, `${summary}: RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
      const trickled = await trickle;
      assert.deepEqual([trickled.end, trickled.status], ["answered", 408], `${runtime}: ${JSON.stringify(trickled)}`);
      assert.ok(trickled.ms >= 9_000, `answered after ${trickled.ms} ms`);
      await serving(env);
    } finally {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("azmi emulate as a child process", () => {
  test("survives the hostile mix, keeps serving, stays bounded in memory and exits 0 on SIGTERM", {
    timeout: 90_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-robust-cli-"));
    let emulate: EmulateChild | undefined;
    try {
      emulate = await spawnEmulate(["--arc-key-dir", join(dir, "arc"), "--federated-token-dir", join(dir, "wi")]);
      const { pid, stdout, stderr } = emulate;
      const env = exportedEnv(stdout());
      assert.ok(env.AppService && env.CloudShell && env.WorkloadIdentity && env.ServiceFabric, stdout());
      await serving(env);
      const report = await loadRun({
        env,
        attacks: everyAttackTwice(env),
        concurrency: 8,
        normal: 60,
        maxMs: 30_000,
        exchangeMs: 2_000,
        rss: () => procRss(pid),
      });
      const summary = `${runtime}, azmi emulate: ${JSON.stringify(report)}`;
      console.log(`# load run, ${summary}`);
      assert.ok(emulate.running(), `azmi emulate ended: ${stderr()}`);
      assert.deepEqual(report.normal, { ok: 60, failed: 0, errors: [] }, summary);
      assert.equal(report.attacks, everyAttackTwice(env), summary);
      assert.deepEqual(report.unexpected, [], summary);
      if (report.rss) {
        const growth = report.rss.peak - report.rss.before;
        assert.ok(growth < RSS_BOUND, `${summary}: RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
      }
      await serving(env);
      // process.kill, not child.kill: Deno's node:child_process reports a child it signalled itself
      // as ended by the signal, whatever its exit code.
      process.kill(pid, "SIGTERM");
      assert.equal(await emulate.exited, 0, stderr());
      assert.match(stderr(), /SIGTERM received, stopping/);
      // Nothing from the hostile requests reached the emulator's output: no stack traces, no warnings.
      assert.doesNotMatch(stderr(), /Error|\n\s+at |warn|legacy/i, stderr());
    } finally {
      await emulate?.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a client that keeps sending a refused body holds up no answer, its own or another's", {
    timeout: 60_000,
  }, async () => {
    // Each oversized request twice, all at once on one server. Deno.serve read a cancelled body to
    // its end on the thread that serves every connection: every 413 came when the clients stopped
    // sending, 3 s on this machine, or never within the deadline (src/emulator/serve.ts).
    const emulate = await spawnEmulate(["--source", "AppService"]);
    try {
      const [target] = targets(exportedEnv(emulate.stdout()));
      assert.ok(target, emulate.stdout());
      const oversized = attacks(target.path).filter((attack) => attack.kind === "oversized");
      assert.ok(oversized.length >= 5, "the attacks include 413 at once and bodies without end");
      for (let round = 0; round < 3; round++) {
        const outcomes = await Promise.all(
          [...oversized, ...oversized].map((attack) => exchange(target.port, attack.steps, 5_000, target.tls)),
        );
        for (const [index, outcome] of outcomes.entries()) {
          const what = `${runtime}, round ${round}, ${oversized[index % oversized.length]!.name}: ${
            JSON.stringify(outcome)
          }`;
          assert.ok(outcome.end === "dropped" || outcome.status === 413, what);
          assert.ok(outcome.ms < 1_500, what);
        }
      }
      assert.ok(emulate.running(), emulate.stderr());
    } finally {
      await emulate.kill();
    }
  });
});
