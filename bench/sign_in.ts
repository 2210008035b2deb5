/**
 * `deno task bench:signin`: the developer's own sign-in served over App Service's managed identity
 * protocol (the relay of `azmi emulate --tokens-from az`) beside `@azure/identity`'s
 * `AzureCliCredential`, in one run, over the same fake `az` (tests/helpers/fake_tools.ts, never
 * the real tool) that answers as `az account get-access-token -o json` does after a simulated
 * start-up delay: 1000 ms by default, the real az's typical start on a laptop; its slow end is
 * far slower (Azure/azure-cli#29329: 10 s to initialise, Azure/azure-cli#20404: 13 s).
 *
 * Both clients run in Node 24 child processes of their own, with the same code paths their
 * users get (bench/runtimes.ts installs @azure/identity with npm; azmi is the JavaScript JSR
 * serves, bench/js_build.ts):
 * - `@azure/identity`: one `AzureCliCredential`, which spawns `az` with its process's env (the
 *   child's PATH has the fake first; this process's own env is never changed): the first token,
 *   the next N `getToken` calls one after another, then N concurrent ones for another resource.
 * - azmi: the relay (`serve({ origin: tokenOrigin("az", { env }), sources: ["AppService"] })`)
 *   in this process on loopback, as `azmi emulate` runs it, and in the child a
 *   `ManagedIdentityClient` with its App Service variables: the first token, the next N by the
 *   same client (its cache answers), N fresh clients one after another (each with its own
 *   `TokenCache`, so each asks the relay), then N fresh clients at once for another resource.
 * The fake counts its runs; the child pauses after each phase so that each phase's runs are read.
 *
 * Prints one Markdown table and a JSON line.
 *
 * Usage: deno run -A bench/sign_in.ts [--delay MS (default 1000)] [--calls N (default 100)]
 */

import { serve } from "../src/emulator/mod.ts";
import { tokenOrigin } from "../src/cli/sign_in/index.ts";
import { azAnswer, fakeTools } from "../tests/helpers/fake_tools.ts";
import { BENCH_DIR, installPeers, locateRuntime } from "./runtimes.ts";
import { jsonLines } from "./child_lines.ts";
import { buildJs } from "./js_build.ts";
import { markdownTable } from "../tests/helpers/table.ts";

const FIRST = "https://vault.azure.net";
const SECOND = "https://storage.azure.com";
// A token of JWT shape; no client here decodes it.
const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJiZW5jaCI6InNpZ25faW4ifQ.c2lnbmVkLWluLWJlbmNo";

function flag(name: string, fallback: number, max: number): number {
  const index = Deno.args.indexOf(name);
  if (index === -1) return fallback;
  const value = Number(Deno.args[index + 1]);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`Usage: sign_in.ts [--delay MS (0-60000)] [--calls N (1-1000)]: bad ${name}`);
  }
  return value;
}
const delayMs = flag("--delay", 1000, 60_000);
const calls = Math.max(1, flag("--calls", 100, 1000));

// ---------------------------------------------------------------------------------------------
// The child, for Node: `child.mjs LIBRARY SPECIFIER CALLS ENV_JSON`. After each phase it prints
// `{"phase","ms","calls"}` and waits for a line on stdin before the next.

const CHILD = `
import { createInterface } from "node:readline";
const [library, specifier, callsText, envText] = process.argv.slice(2);
const calls = Number(callsText);
const FIRST = ${JSON.stringify(FIRST)};
const SECOND = ${JSON.stringify(SECOND)};
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const mod = await import(specifier);
async function phase(name, n, run) {
  const started = performance.now();
  const tokens = await run();
  const ms = performance.now() - started;
  if (tokens.some((token) => typeof token !== "string" || token === "")) throw new Error(name + ": no token");
  console.log(JSON.stringify({ phase: name, ms, calls: n }));
  await lines.next();
}
async function sequential(n, acquire) {
  const tokens = [];
  for (let i = 0; i < n; i++) tokens.push(await acquire());
  return tokens;
}
if (library === "identity") {
  const credential = new mod.AzureCliCredential();
  const get = (resource) => credential.getToken(resource + "/.default").then((t) => t.token);
  await phase("first", 1, async () => [await get(FIRST)]);
  await phase("sequential", calls, () => sequential(calls, () => get(FIRST)));
  await phase("concurrent", calls, () => Promise.all(Array.from({ length: calls }, () => get(SECOND))));
} else {
  const env = JSON.parse(envText);
  const fresh = () => new mod.ManagedIdentityClient({ env, cache: new mod.TokenCache() });
  const client = fresh();
  const get = (c, resource) => c.acquireToken(resource).then((t) => t.accessToken);
  await phase("first", 1, async () => [await get(client, FIRST)]);
  await phase("sequential", calls, () => sequential(calls, () => get(client, FIRST)));
  await phase("fresh", calls, () => sequential(calls, () => get(fresh(), FIRST)));
  await phase("concurrent", calls, () => Promise.all(Array.from({ length: calls }, () => get(fresh(), SECOND))));
}
process.exit(0);
`;

interface Phase {
  readonly ms: number;
  readonly calls: number;
  /** The fake az's runs during the phase. */
  readonly runs: number;
}

/** Runs the child for `library`, reading the fake's run count after each phase; kills it past its bound. */
async function measure(
  node: string,
  childPath: string,
  library: "identity" | "azmi",
  specifier: string,
  env: Record<string, string>,
  clientEnv: Record<string, string>,
  runs: () => Promise<number>,
): Promise<Record<string, Phase>> {
  const child = new Deno.Command(node, {
    args: [childPath, library, specifier, String(calls), JSON.stringify(clientEnv)],
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A bound on the child, as bench/hostile.ts bounds its own: three times its slowest expected run
  // (every call one az run: az's start-up plus 200 ms), and a minute to start Node and load the library.
  const limitMs = 60_000 + 3 * (calls + 2) * (delayMs + 200);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, limitMs);
  const stderr = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  const phases: Record<string, Phase> = {};
  try {
    let before = await runs();
    for await (const { phase, ms, calls } of jsonLines<{ phase: string; ms: number; calls: number }>(child.stdout)) {
      const after = await runs();
      phases[phase] = { ms, calls, runs: after - before };
      before = after;
      await writer.write(new TextEncoder().encode("next\n"));
    }
    await writer.close().catch(() => {});
    const status = await child.status;
    if (!status.success && !killed) {
      throw new Error(`the ${library} child failed:\n${(await stderr).trim().slice(-2000)}`);
    }
  } catch (error) {
    // A killed child's pipes break: the error below says why.
    if (!killed) throw error;
  } finally {
    clearTimeout(timer);
  }
  if (killed) throw new Error(`the ${library} child was still running after ${limitMs / 1000} s: killed`);
  return phases;
}

const node = await locateRuntime("node", 24);
const peers = await installPeers();
const azmiJs = await buildJs(`${BENCH_DIR}/azmi-js`);
// Node resolves @azure/identity's bare specifier from the child's own folder.
const childPath = `${peers.dir}/sign-in-child.mjs`;
await Deno.writeTextFile(childPath, CHILD);

const tools = await fakeTools({ az: { stdout: azAnswer(TOKEN, Math.floor(Date.now() / 1000) + 3600), delayMs } });
// The children's whole env: the fake first on PATH, then the system's (sh, cat, sleep); nothing else.
const childEnv = { ...tools.env(), NO_COLOR: "1" };
const running = await serve({ origin: tokenOrigin("az", { env: tools.env() }), sources: ["AppService"] });
console.log(
  `# az's simulated start-up: ${delayMs} ms per run; ${calls} calls per phase; the @azure/identity part takes ` +
    `about ${Math.ceil(((calls + 1) * (delayMs + 30)) / 1000 + 5)} s...`,
);
let identity: Record<string, Phase>;
let azmi: Record<string, Phase>;
try {
  identity = await measure(
    node.command,
    childPath,
    "identity",
    "@azure/identity",
    childEnv,
    {},
    () => tools.runs("az"),
  );
  azmi = await measure(
    node.command,
    childPath,
    "azmi",
    new URL(`file://${azmiJs}`).href,
    childEnv,
    { ...running.env.AppService! },
    () => tools.runs("az"),
  );
} finally {
  await running.close();
  await tools.remove();
}

const time = (ms: number) =>
  ms < 1
    ? `${(ms * 1000).toFixed(ms < 0.01 ? 1 : 0)} µs`
    : ms < 1000
    ? `${ms.toFixed(ms < 10 ? 2 : 0)} ms`
    : `${(ms / 1000).toFixed(2)} s`;
const runsText = (n: number) => `${n} az run${n === 1 ? "" : "s"}`;
const cell = (phase: Phase | undefined, sequential = false) => {
  if (!phase) return "(no cache: as the row above)";
  const each = sequential ? ` (${time(phase.ms / phase.calls)} each)` : "";
  return `${time(phase.ms)}${each}, ${runsText(phase.runs)}`;
};
const total = (phases: Record<string, Phase>) => Object.values(phases).reduce((sum, phase) => sum + phase.runs, 0);
const rows: string[][] = [
  ["", "@azure/identity AzureCliCredential", "azmi: relay + ManagedIdentityClient"],
  ["first token", cell(identity.first), cell(azmi.first)],
  [`next ${calls} sequential, same client`, cell(identity.sequential, true), cell(azmi.sequential, true)],
  [`next ${calls} sequential, a fresh client each`, cell(undefined), cell(azmi.fresh, true)],
  [`${calls} concurrent, another resource (fresh clients for azmi)`, cell(identity.concurrent), cell(azmi.concurrent)],
  ["az runs in all", String(total(identity)), String(total(azmi))],
];
console.log(`\n${markdownTable(rows)}`);
console.log(
  `\nThe same fake az for both (${delayMs} ms start-up simulated, then az 2.54+'s JSON); clients on Node ` +
    `${node.version.replace(/^v/, "")}, @azure/identity ${peers.versions["@azure/identity"]}; the relay on Deno ` +
    `${Deno.version.deno}; ${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores.`,
);
console.log(
  JSON.stringify({
    delayMs,
    calls,
    node: node.version,
    deno: Deno.version.deno,
    identity: { version: peers.versions["@azure/identity"], ...identity },
    azmi,
  }),
);
