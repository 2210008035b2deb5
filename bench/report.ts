/**
 * `deno task bench`: measures azmi beside msal-node and @azure/identity in one run, against
 * the same local App Service endpoint, and prints one table:
 * - cache-hit latency (an acquireToken the cache answers),
 * - endpoint requests made by N concurrent cold calls,
 * - time of one import() in a fresh process (median of 5), on Deno, Node and Bun
 *   (bench/import_times.ts: on Node and Bun, azmi as the JavaScript JSR's npm layer serves, the
 *   peers installed with npm),
 * - minified + gzipped size (deno bundle --minify --code-splitting, then gzip), of what a plain
 *   import loads and of everything, each package's entry measured alike (bench/size.ts).
 * Then the time to error with IMDS absent (bench/absent.ts, its own table).
 * Then runs `deno bench` on bench/cache_hit_bench.ts for the detailed latency statistics.
 *
 * The clients read their endpoint from the environment: this process starts the endpoint and
 * gives the variables to its child processes only; its own environment is left alone.
 */

import { BENCH_HEADER, startEndpoint } from "./endpoint.ts";
import { importTimes } from "./import_times.ts";
import { bundleSizes, totals } from "./size.ts";
import { markdownTable } from "../tests/helpers/table.ts";

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

/**
 * A peer's size as bench/size.ts measures azmi's (`deno task size`): its entry bundled with code
 * splitting, `eager` what a plain import loads (the entry's chunk and those it imports
 * statically), `whole` every chunk. The entry is the package's whole export list (`export *`),
 * as mod.ts is azmi's: a runtime loads all of it, whatever names the importer picks.
 */
async function packageSize(specifier: string): Promise<{ eager: number; whole: number }> {
  return totals(await bundleSizes(await tempEntry(`export * from "${specifier}";\n`)));
}

/** The bundle of the one class a managed identity user imports: what a bundler's tree shaking keeps. */
async function oneClassSize(specifier: string, name: string): Promise<number> {
  return totals(await bundleSizes(await tempEntry(`export { ${name} } from "${specifier}";\n`))).whole;
}

const temporary: string[] = [];
async function tempEntry(text: string): Promise<string> {
  const entry = await Deno.makeTempFile({ suffix: ".ts" });
  temporary.push(entry);
  await Deno.writeTextFile(entry, text);
  return entry;
}

console.log("# measuring (about two minutes)...");
type Measured = Record<string, { cold: Record<string, number>; hitMicros: number; hitRequests: number }>;
const measured = JSON.parse((await run(["run", "-A", "measure.ts"])).trim().split("\n").pop()!) as Measured;
const names = Object.keys(measured);
await endpoint.close();
const imports = await importTimes();
const own = new URL("../mod.ts", import.meta.url).href;
const sizes = [
  totals(await bundleSizes(decodeURIComponent(new URL(own).pathname))),
  await packageSize("npm:@azure/msal-node@7.2"),
  await packageSize("npm:@azure/identity@4.14"),
];
const oneClass = [
  await oneClassSize(own, "ManagedIdentityClient"),
  await oneClassSize("npm:@azure/msal-node@7.2", "ManagedIdentityApplication"),
  await oneClassSize("npm:@azure/identity@4.14", "ManagedIdentityCredential"),
];
for (const entry of temporary) await Deno.remove(entry);

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
  ...imports.rows.map((row): [string, ...string[]] => [
    `import(), ms, ${row.runtime} (fresh process, median of 5)`,
    ...row.ms.map((ms) => ms.toFixed(1)),
  ]),
  ["minified + gzipped, what an import loads", ...sizes.map((size) => kb(size.eager))],
  ["minified + gzipped, everything", ...sizes.map((size) => kb(size.whole))],
];
console.log(`\n${markdownTable(rows)}`);
console.log(
  `\nazmi's import leaves out the Azure Arc and Service Fabric code (loaded on first use of those sources) and the`,
);
console.log("failure path (loaded on the first failure); each peer's lazy chunks are counted alike.");
console.log(
  `Tree-shaken to the one class (a bundler's best case): ${
    names.map((name, i) => `${name} ${kb(oneClass[i]!)}`).join(", ")
  }.`,
);
console.log(
  `Peers: ${Object.entries(imports.versions).map(([name, versions]) => `${name} (${versions})`).join(", ")}.`,
);
console.log(`${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores.`);

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
