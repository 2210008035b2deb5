/**
 * `deno task bench:hostile`: how long a token request takes to fail when the endpoint answers
 * with a hostile body at the 1 MiB read cap (docs/security.md, "Linear work on hostile text"),
 * for azmi, msal-node and @azure/identity, on Deno, Node 24 and Bun, all with default options.
 *
 * One loopback App Service endpoint (IDENTITY_ENDPOINT, IDENTITY_HEADER) serves each body: the
 * worst cases of tests/helpers/hostile.ts that made the redaction gate quadratic or heavy (a `<`
 * at every character, tags never closed, escapes that decode into `<`, backslashes, words one
 * character short of a token, NULs), each after an echo of the request's secret, in three
 * shapes: a 400 with the text as its body, a 200 whose body is that text (not JSON), and a 200
 * JSON token whose `expires_on` is that text. A 400 rather than a 500, so that no library's
 * retries and their waits are timed instead of what it does with the body; the requests each
 * call made are counted and shown when more than one.
 *
 * Each library and runtime runs in a child process of its own, which asks for one token per case
 * (a fresh client each time, after one short failure to warm up) and times each call from the
 * call to its end. A call still running `--cap` seconds after it began is killed with its child,
 * reported as such, and the child started again at the next case. What each runtime loads is what
 * its users get, as in bench/import_times.ts: Deno azmi's TypeScript and the peers through its
 * npm layer; Node and Bun the JavaScript JSR's npm layer serves for azmi (bench/js_build.ts) and
 * the peers installed with npm into `.runtimes/bench/peers` (bench/runtimes.ts).
 *
 * Usage: deno run -A bench/hostile.ts [--cap SECONDS]   (default 30)
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fill, READ_CAP } from "../tests/helpers/hostile.ts";
import { BENCH_DIR, installPeers, locateRuntime, PEER_PACKAGES } from "./runtimes.ts";
import { jsonLines } from "./child_lines.ts";
import { buildJs } from "./js_build.ts";
import { markdownTable } from "../tests/helpers/table.ts";

const RESOURCE = "https://vault.azure.net";
// The identity header the children send, and the endpoint echoes (a test value).
const SECRET = "hostile-bench-identity-header-5f3a9c";
const TOKEN = "hostile-bench-token";

/** The worst cases measured: a unit repeated to the read cap. */
const CASES: readonly { readonly name: string; readonly unit: string }[] = [
  { name: "`<` at every character", unit: "<" },
  { name: "`<a` tags never closed", unit: "<a" },
  { name: "`%3C`, decoding into `<`", unit: "%3C" },
  { name: "backslashes", unit: "\\" },
  { name: "39-character words", unit: `${"a".repeat(39)} ` },
  { name: "NULs", unit: "\0" },
];

/** How the endpoint answers: the status, and the body for an echo followed by a unit repeated. */
const SHAPES: readonly { readonly name: string; readonly status: number; body(unit: string): string }[] = [
  { name: "400, the text", status: 400, body: (unit) => atCap(`header was ${SECRET}; `, unit) },
  { name: "200, the text (not JSON)", status: 200, body: (unit) => atCap(`header was ${SECRET}; `, unit) },
  {
    name: "200, JSON with the text as expires_on",
    status: 200,
    body(unit) {
      const frame = JSON.stringify({ access_token: TOKEN, expires_on: `at ${SECRET} ` });
      const escaped = JSON.stringify(unit).slice(1, -1);
      const room = READ_CAP - frame.length;
      return `${frame.slice(0, -2)}${fill(escaped, room - (room % escaped.length))}"}`;
    },
  },
];

function atCap(echo: string, unit: string): string {
  return `${echo}${fill(unit, READ_CAP - echo.length)}`;
}

/** Every measured row: a case in a shape. */
const ROWS = SHAPES.flatMap((shape) => CASES.map((kase) => ({ shape, kase })));

const LIBRARIES = [
  { id: "azmi", title: "azmi", npm: undefined },
  { id: "msal", title: "msal-node 7.2", npm: "@azure/msal-node" },
  { id: "identity", title: "@azure/identity 4.14", npm: "@azure/identity" },
] as const satisfies readonly { id: string; title: string; npm: keyof typeof PEER_PACKAGES | undefined }[];
type Library = (typeof LIBRARIES)[number];

// ---------------------------------------------------------------------------------------------
// The child, in JavaScript that Deno, Node and Bun all run: `child.mjs LIBRARY SPECIFIER ORIGIN
// RUN FROM COUNT`. Before each call it tells the endpoint which row to answer with.

const CHILD = `
const argv = globalThis.Deno ? Deno.args : process.argv.slice(2);
const [library, specifier, origin, run, fromText, countText] = argv;
const exit = (code) => (globalThis.Deno ? Deno.exit(code) : process.exit(code));
const mod = await import(specifier);
const RESOURCE = ${JSON.stringify(RESOURCE)};
const SECRET = ${JSON.stringify(SECRET)};
function create() {
  if (library === "azmi") {
    const client = new mod.ManagedIdentityClient({ cache: new mod.TokenCache() });
    return () => client.acquireToken(RESOURCE);
  }
  if (library === "msal") {
    const app = new mod.ManagedIdentityApplication({});
    return () => app.acquireToken({ resource: RESOURCE });
  }
  const credential = new mod.ManagedIdentityCredential();
  return () => credential.getToken(RESOURCE + "/.default");
}
function describe(error) {
  if (!(error instanceof Error)) return { name: typeof error };
  const found = [error.code, error.errorCode].find((value) => typeof value === "string" && value !== "");
  let shown = error.message + String(error.stack);
  try { shown += JSON.stringify(error); } catch {}
  return {
    name: error.name,
    ...(found === undefined ? {} : { code: found }),
    message: error.message.replace(/\\s+/g, " ").slice(0, 200),
    length: error.message.length,
    shows: shown.includes(SECRET),
  };
}
// A short failure first, so that no row pays for the first call's lazy loading and compiling.
const rows = [-1];
for (let row = Number(fromText); row < Number(countText); row++) rows.push(row);
for (const row of rows) {
  await (await fetch(origin + "/control/" + run + "/" + row)).text();
  const acquire = create();
  console.log(JSON.stringify({ started: row }));
  const started = performance.now();
  let outcome;
  try {
    await acquire();
    outcome = { row, ms: performance.now() - started, token: true };
  } catch (error) {
    outcome = { row, ms: performance.now() - started, ...describe(error) };
  }
  console.log(JSON.stringify(outcome));
}
exit(0);
`;

// ---------------------------------------------------------------------------------------------
// The parent: the endpoint, the children, the tables.

/** What a child reports for one row. */
interface Outcome {
  readonly row: number;
  readonly ms: number;
  readonly token?: boolean;
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  /** Whether the error's message, stack or JSON shows the echoed identity header. */
  readonly shows?: boolean;
  /** The length of the error's message. */
  readonly length?: number;
}

type Result = (Outcome | { readonly killed: number } | { readonly failed: string }) & { requests?: number };

/** The loopback endpoint: `/control/RUN/ROW` selects the answer, anything else gets it. */
interface Endpoint {
  readonly origin: string;
  /** How many token requests a row had in a run. */
  requests(run: string, row: number): number;
  close(): Promise<void>;
}

async function startEndpoint(): Promise<Endpoint> {
  const bodies = ROWS.map(({ shape, kase }) => new TextEncoder().encode(shape.body(kase.unit)));
  const warmUp = new TextEncoder().encode(JSON.stringify({ error: "warm_up", error_description: "a short failure" }));
  let current = { run: "", row: -1 };
  const requests = new Map<string, number>();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    const control = /^\/control\/([^/]+)\/(-?\d+)$/.exec(request.url ?? "");
    if (control) {
      current = { run: control[1]!, row: Number(control[2]) };
      response.writeHead(200, { "content-length": "0" }).end();
      return;
    }
    const key = `${current.run}/${current.row}`;
    requests.set(key, (requests.get(key) ?? 0) + 1);
    const row = ROWS[current.row];
    const body = row ? bodies[current.row]! : warmUp;
    response.writeHead(row ? row.shape.status : 400, {
      "content-type": row?.shape.status === 200 ? "application/json" : "text/plain",
      "content-length": String(body.byteLength),
    });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests: (run: string, row: number) => requests.get(`${run}/${row}`) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** This process's environment without any variable that selects a source or changes a library, plus the endpoint's. */
function childEnv(origin: string): Record<string, string> {
  const kept = Object.entries(Deno.env.toObject()).filter(([name]) =>
    !/^(IDENTITY_|IMDS_|MSI_|AZURE_|MSAL_)/i.test(name)
  );
  return {
    ...Object.fromEntries(kept),
    IDENTITY_ENDPOINT: `${origin}/msi/token`,
    IDENTITY_HEADER: SECRET,
    NO_COLOR: "1",
  };
}

interface Runtime {
  readonly name: string;
  /** The command and arguments that run the child for `library`. */
  command(library: Library, origin: string, run: string, from: number): [string, string[]];
}

/**
 * Runs one library on one runtime over every row (the warm-up first), starting the child again
 * after a row it had to be killed on; returns one result per row.
 */
async function measure(runtime: Runtime, library: Library, endpoint: Endpoint, capSeconds: number): Promise<Result[]> {
  const results: Result[] = [];
  const run = `${runtime.name}-${library.id}`.replace(/[^\w.-]/g, "_");
  let from = 0;
  while (from < ROWS.length) {
    const [command, args] = runtime.command(library, endpoint.origin, run, from);
    const child = new Deno.Command(command, {
      args,
      clearEnv: true,
      env: childEnv(endpoint.origin),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const STARTUP_MS = 120_000; // the first run may download the npm packages
    let killedAt: number | undefined;
    let started = -2;
    const kill = (row: number) => {
      killedAt = row;
      child.kill("SIGKILL");
    };
    let timer = setTimeout(() => kill(-2), STARTUP_MS);
    const stderr = new Response(child.stderr).text();
    try {
      for await (const parsed of jsonLines<Outcome & { started?: number }>(child.stdout)) {
        clearTimeout(timer);
        if (parsed.started !== undefined) {
          started = parsed.started;
          timer = setTimeout(() => kill(started), capSeconds * 1000);
        } else if (parsed.row >= 0) {
          results[parsed.row] = parsed;
        }
      }
      await child.status;
    } finally {
      clearTimeout(timer);
    }
    if (killedAt !== undefined && killedAt >= 0) {
      results[killedAt] = { killed: capSeconds };
      from = killedAt + 1;
      continue;
    }
    const missing = ROWS.findIndex((_, row) => row >= from && results[row] === undefined);
    if (missing === -1) break;
    const why = killedAt === -2
      ? `did not start within ${STARTUP_MS / 1000} s`
      : (await stderr).trim().split("\n").slice(-3).join(" ") || "no output";
    for (let row = missing; row < ROWS.length; row++) results[row] ??= { failed: why };
    break;
  }
  for (const [row, result] of results.entries()) {
    if (result) result.requests = endpoint.requests(run, row);
  }
  return results;
}

function cell(result: Result | undefined): string {
  if (result === undefined) return "(not run)";
  const requests = result.requests !== undefined && result.requests > 1 ? `, ${result.requests} requests` : "";
  if ("killed" in result) return `still running at ${result.killed} s (killed)`;
  if ("failed" in result) return "(child failed)";
  const time = result.ms < 1000 ? `${Math.round(result.ms)} ms` : `${(result.ms / 1000).toFixed(2)} s`;
  if (result.token) return `${time}, a token (!)${requests}`;
  const long = (result.length ?? 0) > 10_000 ? `, a message of ${Math.round(result.length! / 1024)} KiB` : "";
  return `${time}, ${result.code ?? result.name}${result.shows ? ", shows the secret" : ""}${long}${requests}`;
}

const capIndex = Deno.args.indexOf("--cap");
const cap = capIndex === -1 ? 30 : Number(Deno.args[capIndex + 1]);
if (!Number.isFinite(cap) || cap <= 0 || cap > 600) throw new Error("Usage: hostile.ts [--cap SECONDS (1-600)]");

const node = await locateRuntime("node", 24);
const bun = await locateRuntime("bun", 1);
const peers = await installPeers();
const azmiJs = await buildJs(`${BENCH_DIR}/azmi-js`);
// Node and Bun resolve the peers' bare specifiers from the child's own folder.
const npmChild = `${peers.dir}/hostile-child.mjs`;
const denoChild = `${BENCH_DIR}/hostile-child.mjs`;
await Deno.writeTextFile(npmChild, CHILD);
await Deno.writeTextFile(denoChild, CHILD);
const mod = new URL("../mod.ts", import.meta.url).href;
const childArgs = (library: Library, specifier: string, origin: string, run: string, from: number) => [
  library.id,
  specifier,
  origin,
  run,
  String(from),
  String(ROWS.length),
];
const runtimes: Runtime[] = [
  {
    name: `Deno ${Deno.version.deno}`,
    command: (library, origin, run, from) => [Deno.execPath(), [
      "run",
      "-A",
      denoChild,
      ...childArgs(library, library.npm ? `npm:${library.npm}@${PEER_PACKAGES[library.npm]}` : mod, origin, run, from),
    ]],
  },
  {
    name: `Node ${node.version.replace(/^v/, "")}`,
    command: (library, origin, run, from) => [node.command, [
      npmChild,
      ...childArgs(library, library.npm ?? new URL(`file://${azmiJs}`).href, origin, run, from),
    ]],
  },
  {
    name: `Bun ${bun.version}`,
    command: (library, origin, run, from) => [bun.command, [
      npmChild,
      ...childArgs(library, library.npm ?? new URL(`file://${azmiJs}`).href, origin, run, from),
    ]],
  },
];

const endpoint = await startEndpoint();
console.log(
  `# Hostile bodies at the ${READ_CAP / 1024} KiB read cap: time from the call to its end, default options, ` +
    `cap ${cap} s per call...`,
);
try {
  for (const runtime of runtimes) {
    const columns: Result[][] = [];
    for (const library of LIBRARIES) columns.push(await measure(runtime, library, endpoint, cap));
    const header = [`${runtime.name}: answer, then the body's text`, ...LIBRARIES.map((l) => l.title)];
    const lines = ROWS.map((
      { shape, kase },
      row,
    ) => [`${shape.name}: ${kase.name}`, ...columns.map((c) => cell(c[row]))]);
    console.log(`\n${markdownTable([header, ...lines])}`);
    for (const [i, library] of LIBRARIES.entries()) {
      const failed = columns[i]!.find((result) => result && "failed" in result) as { failed: string } | undefined;
      if (failed) console.log(`- ${library.title}: child failed: ${failed.failed}`);
      const said = columns[i]!.find((result) => result && "message" in result) as Outcome | undefined;
      if (said) console.log(`- ${library.title} said, for instance: ${said.message}`);
    }
  }
} finally {
  await endpoint.close();
}
console.log(
  `\n${Deno.build.os} ${Deno.build.arch}; peers: ${
    Object.entries(peers.versions).map(([name, version]) => `${name} ${version}`).join(", ")
  } (npm; Deno resolves the same ranges)`,
);
