/**
 * `deno task bench:emulator`: the load run of `azmi emulate` (docs/benchmarks.md): on Deno, Node 24
 * and Bun, each in a child process of its own serving every source, first one 64 MiB POST with
 * its Content-Length and one 200 MiB chunked POST (what grew the emulator by 200 MiB to 1.1 GiB
 * before bodies were capped), then a mix of malformed, aborted and oversized requests
 * (tests/helpers/assault.ts: bad methods, Hosts and header bytes, garbage request lines,
 * HTTP/0.9, absurd Content-Lengths, heads and bodies that never end, hang-ups mid-head and
 * mid-body, 32 MiB bodies, chunked bodies without end) beside normal token requests to App
 * Service, Cloud Shell and workload identity's Entra endpoint, all over loopback.
 *
 * It prints, per runtime: the normal requests that failed (there must be none), how the hostile
 * ones ended, the child's resident set size (from /proc, else `ps`) before, at its peak and after,
 * and whether the child was still serving at the end and exited 0 on SIGTERM. Every loop is
 * bounded: `--attacks` hostile requests, `--normal` normal ones, `--seconds` at most per runtime.
 *
 * Usage: deno run -A bench/emulator_load.ts [--attacks N] [--normal N] [--concurrency N] [--seconds S]
 *        [--runtimes deno,node,bun]   (defaults 2000, 600, 16, 120, all three; Node 22 too when
 *        AZMI_NODE22 names its binary)
 */

import { exchange, exportedEnv, loadRun, normalRequests, procRss, rssDuring } from "../tests/helpers/assault.ts";
import { locateRuntime } from "./runtimes.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);
const MiB = 1024 * 1024;

function flag(name: string, fallback: number): number {
  const index = Deno.args.indexOf(`--${name}`);
  const value = index < 0 ? fallback : Number(Deno.args[index + 1]);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`--${name} takes a whole number: got ${Deno.args[index + 1]}`);
  }
  return value;
}
const ATTACKS = flag("attacks", 2000);
const NORMAL = flag("normal", 600);
const CONCURRENCY = flag("concurrency", 16);
const SECONDS = flag("seconds", 120);
const runtimesFlag = Deno.args.indexOf("--runtimes");
const WANTED = runtimesFlag < 0 ? ["deno", "node", "bun", "node22"] : Deno.args[runtimesFlag + 1]!.split(",");

/** A child's resident set size: /proc on Linux, else `ps` (macOS), else unknown. */
async function rssOf(pid: number): Promise<number | undefined> {
  const fromProc = await procRss(pid);
  if (fromProc !== undefined) return fromProc;
  try {
    const { stdout } = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)], stdout: "piped" })
      .output();
    const kib = Number(new TextDecoder().decode(stdout).trim());
    return Number.isFinite(kib) && kib > 0 ? kib * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

async function measure(name: string, command: string, args: string[]): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "azmi-bench-emulator-" });
  const child = new Deno.Command(command, {
    args: [
      ...args,
      `${root}src/cli.ts`,
      "emulate",
      "--arc-key-dir",
      `${dir}/arc`,
      "--federated-token-dir",
      `${dir}/wi`,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  let stdout = "";
  let stderr = "";
  const decoder = new TextDecoder();
  const reading = Promise.all([
    child.stdout.pipeTo(new WritableStream({ write: (chunk) => void (stdout += decoder.decode(chunk)) })),
    child.stderr.pipeTo(new WritableStream({ write: (chunk) => void (stderr += decoder.decode(chunk)) })),
  ]);
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((done) => exited = done);
  try {
    for (let waited = 0; waited < 60_000 && !/SIGTERM\.\n/.test(stdout) && !exited; waited += 50) {
      await new Promise((wake) => setTimeout(wake, 50));
    }
    if (!/SIGTERM\.\n/.test(stdout)) throw new Error(`azmi emulate did not start on ${name}: ${stderr}`);
    const env = exportedEnv(stdout);
    for (const request of normalRequests(env)) await request();
    const exitedEarly = () =>
      exited
        ? `; azmi emulate had exited (code ${exited.code}): ${stderr.trim().split("\n").slice(-3).join(" / ")}`
        : "";

    // One big body each, as the issue measured them: 64 MiB with a Content-Length, 200 MiB chunked.
    const shell = Number(new URL(env.CloudShell!.MSI_ENDPOINT!).port);
    const head = "POST /msi/token HTTP/1.1\r\nHost: 127.0.0.1\r\nMetadata: true\r\n" +
      "Content-Type: application/x-www-form-urlencoded\r\n";
    const big: string[] = [];
    for (
      const [label, steps] of [
        ["one 64 MiB POST", [{ text: `${head}Content-Length: ${64 * MiB}\r\n\r\n` }, { body: 64 * MiB }]],
        ["one 200 MiB chunked POST", [{ text: `${head}Transfer-Encoding: chunked\r\n\r\n` }, {
          body: 200 * MiB,
          chunked: true,
        }]],
      ] as const
    ) {
      let outcome = "";
      const measured = await rssDuring(() => rssOf(child.pid), async () => {
        const ended = await exchange(shell, steps, 30_000);
        outcome = `${ended.end === "answered" ? ended.status : ended.end} after ${ended.ms} ms, ${
          mib(ended.sent)
        } sent`;
      }, 20);
      const { before, peak } = measured ?? { before: 0, peak: 0 };
      big.push(
        `${label}: ${outcome}; RSS ${mib(before)} -> peak ${mib(peak)} (+${mib(peak - before)})${exitedEarly()}`,
      );
    }

    const report = await loadRun({
      env,
      attacks: ATTACKS,
      concurrency: CONCURRENCY,
      normal: NORMAL,
      maxMs: SECONDS * 1000,
      exchangeMs: 3_000,
      rss: () => rssOf(child.pid),
    });
    let serving = "yes";
    try {
      for (const request of normalRequests(env)) await request();
    } catch (error) {
      serving = `no: ${error}`;
    }
    const alive = exited === undefined;
    if (alive) child.kill("SIGTERM");
    const code = (await status).code;
    console.log(`\n## ${name}`);
    for (const line of big) console.log(`- ${line}`);
    console.log(
      `- load run: ${report.attacks} hostile requests (${CONCURRENCY} at a time) beside ${NORMAL} normal ones, ` +
        `${(report.ms / 1000).toFixed(1)} s`,
    );
    console.log(`- normal requests: ${report.normal.ok} ok, ${report.normal.failed} failed`);
    for (const error of report.normal.errors.slice(0, 5)) console.log(`  - ${error}`);
    console.log(
      `- hostile requests ended: ${
        Object.entries(report.outcomes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(", ")
      }`,
    );
    console.log(`- outcomes the attack does not allow: ${report.unexpected.length}`);
    for (const line of report.unexpected.slice(0, 5)) console.log(`  - ${line}`);
    if (report.rss) {
      const { before, peak, after } = report.rss;
      console.log(`- RSS: ${mib(before)} before, ${mib(peak)} at peak (+${mib(peak - before)}), ${mib(after)} after`);
    } else {
      console.log("- RSS: not readable here");
    }
    console.log(
      `- alive at the end: ${alive ? "yes" : "no"}; still serving: ${serving}; exit code on SIGTERM: ${code}`,
    );
  } finally {
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    await status;
    await reading.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const runs: [string, () => Promise<[string, string[]]>][] = [
  [
    "deno",
    () =>
      Promise.resolve([
        Deno.execPath(),
        // The permissions `deno task cli` gives.
        ["run", "--quiet", "--allow-env", "--allow-net", "--allow-read", "--allow-write"],
      ]),
  ],
  ["node", async () => [(await locateRuntime("node", 24)).command, []]],
  ["bun", async () => [(await locateRuntime("bun", 1)).command, []]],
  ["node22", () => Promise.resolve([Deno.env.get("AZMI_NODE22") ?? "", []])],
];
console.log(
  `# azmi emulate under load: ${ATTACKS} hostile requests, ${NORMAL} normal ones, ${CONCURRENCY} at a time, ` +
    `at most ${SECONDS} s per runtime`,
);
for (const [name, locate] of runs) {
  if (!WANTED.includes(name)) continue;
  const [command, args] = await locate();
  if (!command) continue; // Node 22 only when AZMI_NODE22 names it
  const version = new TextDecoder().decode(
    (await new Deno.Command(command, { args: ["--version"], stdout: "piped" }).output()).stdout,
  ).trim().split("\n")[0];
  await measure(`${name} (${version})`, command, args);
}
