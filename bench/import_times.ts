/**
 * The time of one `import()` of each client in a fresh process, on Deno, Node and Bun: the median
 * of 5, after one run of each to warm the caches, the runs interleaved (every client and runtime
 * once per round) so that a change of the machine's load falls on all of them alike.
 *
 * What each runtime imports is what its users would:
 * - Deno: azmi's TypeScript source (as `jsr:` serves it to Deno), the peers through Deno's npm
 *   layer (`npm:` specifiers, bench/import_time.ts).
 * - Node and Bun: the JavaScript that JSR's npm compatibility layer serves for azmi
 *   (bench/js_build.ts: one `.js` file per module, not the TypeScript source, which would time
 *   Node's type stripping), and the peers installed with npm (bench/runtimes.ts).
 * The child starts its clock just before `import()` and stops it when the promise settles, so
 * the runtime's own start-up is not counted.
 *
 *   deno run -A bench/import_times.ts   (prints the rows alone)
 */

import { BENCH_DIR, installPeers, locateRuntime, PEER_PACKAGES } from "./runtimes.ts";
import { buildJs } from "./js_build.ts";

const here = decodeURIComponent(new URL(".", import.meta.url).pathname);

/** The clients, in table order: bench/import_time.ts's argument and the npm package (none for azmi). */
export const CLIENTS = [
  { id: "azmi", npm: undefined },
  { id: "msal", npm: "@azure/msal-node" },
  { id: "identity", npm: "@azure/identity" },
] as const satisfies readonly { id: string; npm: keyof typeof PEER_PACKAGES | undefined }[];

/** Milliseconds per client (in {@linkcode CLIENTS} order) for one runtime. */
export interface RuntimeRow {
  /** "Deno 2.9.6", "Node 24.21.0", "Bun 1.4.5". */
  readonly runtime: string;
  readonly ms: readonly number[];
}

/** The measured rows and what was measured. */
export interface ImportTimes {
  readonly rows: readonly RuntimeRow[];
  /** Each peer package's version as each runtime loaded it, such as `{ "@azure/msal-node": "Deno 7.2.3, npm 7.2.3" }`. */
  readonly versions: Readonly<Record<string, string>>;
}

async function child(command: string, args: string[], cwd: string): Promise<number> {
  const result = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(result.stdout).trim();
  const ms = Number(text.split("\n").pop());
  if (!result.success || !Number.isFinite(ms)) {
    throw new Error(`${command} ${args.join(" ")} failed:\n${text}\n${new TextDecoder().decode(result.stderr)}`);
  }
  return ms;
}

/** The script a Node or Bun child evaluates: times one `import()` of `specifier`. */
function timer(specifier: string): string {
  return `const start = performance.now(); await import(${JSON.stringify(specifier)}); ` +
    `console.log((performance.now() - start).toFixed(2));`;
}

/** The version Deno resolves an `npm:` specifier to. */
async function denoVersion(name: string, range: string): Promise<string> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `npm:${name}@${range}`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const { redirects } = JSON.parse(new TextDecoder().decode(info.stdout)) as { redirects: Record<string, string> };
  return /@([^@/]+)$/.exec(redirects[`npm:${name}@${range}`] ?? "")?.[1] ?? "?";
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Measures every row; `rounds` runs of each (after one warm-up run). */
export async function importTimes(rounds = 5): Promise<ImportTimes> {
  const node = await locateRuntime("node", 24);
  const bun = await locateRuntime("bun", 1);
  const peers = await installPeers();
  const azmiJs = await buildJs(`${BENCH_DIR}/azmi-js`);
  const specifier = (client: (typeof CLIENTS)[number]) =>
    client.npm === undefined ? new URL(`file://${azmiJs}`).href : client.npm;
  const runtimes: { name: string; run: (client: (typeof CLIENTS)[number]) => Promise<number> }[] = [
    {
      name: `Deno ${Deno.version.deno}`,
      run: (client) => child(Deno.execPath(), ["run", "-A", "import_time.ts", client.id], here),
    },
    {
      name: `Node ${node.version.replace(/^v/, "")}`,
      run: (client) => child(node.command, ["--input-type=module", "-e", timer(specifier(client))], peers.dir),
    },
    {
      name: `Bun ${bun.version}`,
      run: (client) => child(bun.command, ["-e", timer(specifier(client))], peers.dir),
    },
  ];
  const times = runtimes.map(() => CLIENTS.map((): number[] => []));
  for (let round = -1; round < rounds; round++) {
    for (const [r, runtime] of runtimes.entries()) {
      for (const [c, client] of CLIENTS.entries()) {
        const ms = await runtime.run(client);
        if (round >= 0) times[r]![c]!.push(ms); // round -1 warms the caches
      }
    }
  }
  const versions: Record<string, string> = {};
  for (const [name, range] of Object.entries(PEER_PACKAGES)) {
    versions[name] = `Deno ${await denoVersion(name, range)}, npm ${peers.versions[name]}`;
  }
  return { rows: runtimes.map((runtime, r) => ({ runtime: runtime.name, ms: times[r]!.map(median) })), versions };
}

if (import.meta.main) {
  const { rows, versions } = await importTimes();
  for (const row of rows) {
    console.log(`${row.runtime.padEnd(14)} ${CLIENTS.map((c, i) => `${c.id} ${row.ms[i]!.toFixed(1)} ms`).join(", ")}`);
  }
  console.log(Object.entries(versions).map(([name, v]) => `${name}: ${v}`).join("; "));
}
