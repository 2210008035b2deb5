/**
 * `deno task bench`: measures azmi beside msal-node and @azure/identity in one run, against
 * the same local App Service endpoint, and prints one table:
 * - cache-hit latency (an acquireToken the cache answers),
 * - endpoint requests made by N concurrent cold calls,
 * - time of one import() in a fresh process (median of 5),
 * - minified + gzipped size (deno bundle --minify, then gzip).
 * Then the time to error with IMDS absent (bench/absent.ts, its own table).
 * Then runs `deno bench` on bench/cache_hit_bench.ts for the detailed latency statistics.
 *
 * The clients read their endpoint from the environment: this process starts the endpoint and
 * gives the variables to its child processes only; its own environment is left alone.
 */

import { BENCH_HEADER, startEndpoint } from "./endpoint.ts";
import { bundleSizes, totals } from "./size.ts";

const here = new URL(".", import.meta.url).pathname;
const endpoint = startEndpoint();
const env = { IDENTITY_ENDPOINT: endpoint.url, IDENTITY_HEADER: BENCH_HEADER, NO_COLOR: "1" };

async function run(args: string[], withEnv = true): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: here,
    ...(withEnv ? { env } : {}),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(output.stderr)}`);
  return text;
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function importMs(which: string): Promise<number> {
  await run(["run", "-A", "import_time.ts", which], false); // warm the module cache
  const times: number[] = [];
  for (let i = 0; i < 5; i++) times.push(Number((await run(["run", "-A", "import_time.ts", which], false)).trim()));
  return median(times);
}

async function peerSize(specifier: string, name: string): Promise<number> {
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(entry, `export { ${name} } from "${specifier}";\n`);
    const chunks = await bundleSizes(entry);
    return totals(chunks).whole;
  } finally {
    await Deno.remove(entry);
  }
}

console.log("# measuring (about a minute)...");
type Measured = Record<string, { cold: Record<string, number>; hitMicros: number; hitRequests: number }>;
const measured = JSON.parse((await run(["run", "-A", "measure.ts"])).trim().split("\n").pop()!) as Measured;
const names = Object.keys(measured);
const imports = [await importMs("azmi"), await importMs("msal"), await importMs("identity")];
const own = totals(await bundleSizes(new URL("../mod.ts", import.meta.url).pathname));
const sizes = [
  own.whole,
  await peerSize("npm:@azure/msal-node@7.2", "ManagedIdentityApplication"),
  await peerSize("npm:@azure/identity@4.14", "ManagedIdentityCredential"),
];
await endpoint.close();

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const rows: [string, ...string[]][] = [
  ["", ...names],
  ["cache hit, µs per call", ...names.map((n) => measured[n]!.hitMicros.toFixed(2))],
  [
    "cache hit vs azmi",
    ...names.map((n) => `${(measured[n]!.hitMicros / measured[names[0]!]!.hitMicros).toFixed(1)}x`),
  ],
  ...Object.keys(measured[names[0]!]!.cold).map((n): [string, ...string[]] => [
    `requests for ${n} concurrent cold calls`,
    ...names.map((name) => String(measured[name]!.cold[n])),
  ]),
  ["import(), ms (fresh process, median of 5)", ...imports.map((ms) => ms.toFixed(1))],
  ["minified + gzipped", ...sizes.map(kb)],
];
const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
console.log(`\n${line(rows[0]!)}\n|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const row of rows.slice(1)) console.log(line(row));
console.log(
  `\nazmi eager import: ${
    kb(own.eager)
  } (Azure Arc and Service Fabric code loads on first use of those sources, the failure path on the first failure)`,
);
console.log(`Deno ${Deno.version.deno}, ${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores`);

// Time to error with IMDS absent: each library in fresh child processes of its own.
console.log(`\n${await run(["run", "-A", "absent.ts"], false)}`);

// The detailed latency statistics, from deno bench, against a fresh endpoint.
const second = startEndpoint();
console.log("\n# deno bench bench/cache_hit_bench.ts (100 cache hits per iteration)");
console.log(
  await new Deno.Command(Deno.execPath(), {
    args: ["bench", "-A", "cache_hit_bench.ts"],
    cwd: here,
    env: { ...env, IDENTITY_ENDPOINT: second.url },
    stdout: "piped",
    stderr: "inherit",
  }).output().then((o) => new TextDecoder().decode(o.stdout)),
);
await second.close();
