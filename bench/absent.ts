/**
 * `deno task bench:absent`: how long the first token request takes to fail when there is no
 * managed identity here (docs/retries.md, first contact), for azmi, msal-node and @azure/identity, all
 * with default options, in two cases: IMDS refuses the connection (a closed loopback port), and
 * IMDS accepts and never answers (a loopback server that holds its sockets, as a firewalled
 * 169.254.169.254 often behaves). Prints one table, then what each error said.
 *
 * Each library runs in a fresh child process of its own (nothing warmed or shared), whose
 * environment points IMDS at loopback with `AZURE_POD_IDENTITY_AUTHORITY_HOST` (every variable
 * that would select another source is left out); this process's environment is left alone. The
 * child times the request itself, from the call to the error; a child still waiting `--cap`
 * seconds after its call began is killed and reported as "still waiting". The slow cases run in
 * parallel, each against its own silent server, so the run takes about `--cap` + 10 seconds.
 *
 * Usage: deno run -A bench/absent.ts [--cap SECONDS]   (default 20)
 *        deno run -A bench/absent.ts --child azmi|msal|identity   (one measurement; internal)
 */

import { closedPort, silentServer } from "../tests/helpers/sockets.ts";
import { jsonLines } from "./child_lines.ts";
import { markdownTable } from "../tests/helpers/table.ts";

const RESOURCE = "https://vault.azure.net";

/** The libraries, in table order: the child's argument and the column title. */
const LIBRARIES = [
  { id: "azmi", title: "azmi" },
  { id: "msal", title: "msal-node 7.2" },
  { id: "identity", title: "@azure/identity 4.14" },
] as const;
type LibraryId = (typeof LIBRARIES)[number]["id"];

/** What a child reports: the time from the call to its end, and what it ended with. */
interface Outcome {
  readonly ms: number;
  readonly token?: boolean;
  readonly name?: string;
  readonly code?: string;
  readonly message?: string;
  readonly cause?: string;
}

// ---------------------------------------------------------------------------------------------
// Child: one library, one request.

/** A fresh client of one library: `acquire()` asks for one token. */
async function create(id: LibraryId): Promise<() => Promise<unknown>> {
  if (id === "azmi") {
    const { ManagedIdentityClient } = await import("../mod.ts");
    const client = new ManagedIdentityClient();
    return () => client.acquireToken(RESOURCE);
  }
  if (id === "msal") {
    const { ManagedIdentityApplication } = await import("npm:@azure/msal-node@7.2");
    const app = new ManagedIdentityApplication({});
    return () => app.acquireToken({ resource: RESOURCE });
  }
  const { ManagedIdentityCredential } = await import("npm:@azure/identity@4.14");
  const credential = new ManagedIdentityCredential();
  return () => credential.getToken(`${RESOURCE}/.default`);
}

/** The name and code of an error, whichever property its library keeps the code in. */
function describe(error: unknown): { name?: string; code?: string } {
  if (!(error instanceof Error)) return { name: typeof error };
  const { code, errorCode } = error as { code?: unknown; errorCode?: unknown };
  const found = [code, errorCode].find((value) => typeof value === "string" && value !== "");
  return { name: error.name, ...(found === undefined ? {} : { code: String(found) }) };
}

async function child(id: LibraryId): Promise<never> {
  const acquire = await create(id);
  console.log(JSON.stringify({ started: true }));
  const started = performance.now();
  let outcome: Outcome;
  try {
    await acquire();
    outcome = { ms: performance.now() - started, token: true };
  } catch (error) {
    const ms = performance.now() - started;
    const cause = (error as { cause?: unknown }).cause;
    const inner = cause === undefined ? undefined : describe(cause);
    outcome = {
      ms,
      ...describe(error),
      message: error instanceof Error ? error.message.replace(/\s+/g, " ").slice(0, 240) : String(error),
      ...(inner ? { cause: [inner.name, inner.code].filter(Boolean).join(" / ") } : {}),
    };
  }
  console.log(JSON.stringify(outcome));
  // The peers may leave timers or sockets behind: the measurement is done.
  Deno.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent: the endpoints, the children, the table.

/** This process's environment without any variable that would select a managed identity source or change a library. */
function childEnv(imds: string): Record<string, string> {
  const kept = Object.entries(Deno.env.toObject()).filter(([name]) =>
    !/^(IDENTITY_|IMDS_|MSI_|AZURE_|MSAL_)/i.test(name)
  );
  return { ...Object.fromEntries(kept), AZURE_POD_IDENTITY_AUTHORITY_HOST: imds, NO_COLOR: "1" };
}

type Result = Outcome | { readonly waiting: number } | { readonly failed: string };

/** Runs one child against `imds`; kills it `capSeconds` after its call began (or after startup takes too long). */
async function measure(id: LibraryId, imds: string, capSeconds: number): Promise<Result> {
  const running = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", id],
    clearEnv: true,
    env: childEnv(imds),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const STARTUP_MS = 60_000; // the first run may download the npm packages
  let timedOut: number | undefined;
  let timer = setTimeout(() => {
    timedOut = -1;
    running.kill("SIGKILL");
  }, STARTUP_MS + capSeconds * 1000);
  const stderr = new Response(running.stderr).text();
  let last: Outcome | undefined;
  try {
    for await (const parsed of jsonLines<Outcome & { started?: boolean }>(running.stdout)) {
      if (parsed.started) {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timedOut = capSeconds;
          running.kill("SIGKILL");
        }, capSeconds * 1000);
      } else {
        last = parsed;
      }
    }
    await running.status;
  } finally {
    clearTimeout(timer);
  }
  if (last) return last;
  if (timedOut === capSeconds) return { waiting: capSeconds };
  const text = (await stderr).trim().split("\n").slice(-3).join(" ");
  return { failed: timedOut === -1 ? `did not start within ${STARTUP_MS / 1000} s` : text || "no output" };
}

function cell(result: Result): string {
  if ("waiting" in result) return `still waiting at ${result.waiting} s`;
  if ("failed" in result) return `(child failed)`;
  if (result.token) return `${(result.ms / 1000).toFixed(2)} s, a token (!)`;
  return `${(result.ms / 1000).toFixed(2)} s, ${result.name}${result.code ? ` (${result.code})` : ""}`;
}

function detail(result: Result): string {
  if ("waiting" in result) return `killed after ${result.waiting} s`;
  if ("failed" in result) return `child failed: ${result.failed}`;
  if (result.token) return "a token";
  return `${result.message}${result.cause ? ` [cause: ${result.cause}]` : ""}`;
}

async function main(args: string[]): Promise<void> {
  const capIndex = args.indexOf("--cap");
  const cap = capIndex === -1 ? 20 : Number(args[capIndex + 1]);
  if (!Number.isFinite(cap) || cap <= 0 || cap > 600) throw new Error("Usage: absent.ts [--cap SECONDS (1-600)]");

  console.log(`# IMDS absent: time to error, default options, cap ${cap} s (about ${Math.ceil(cap + 10)} s)...`);
  // Case (a): one closed port; the fast cases one after the other.
  const refusedOrigin = `http://127.0.0.1:${await closedPort()}`;
  const refused: Result[] = [];
  for (const { id } of LIBRARIES) refused.push(await measure(id, refusedOrigin, cap));

  // Case (b): one silent server per library (to count each one's connections), all in parallel.
  const servers = await Promise.all(LIBRARIES.map(() => silentServer((cap + 90) * 1000)));
  let silent: Result[];
  try {
    silent = await Promise.all(LIBRARIES.map(({ id }, i) => measure(id, servers[i]!.origin, cap)));
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }

  const header = ["IMDS absent: first request to error", ...LIBRARIES.map((l) => l.title)];
  console.log(
    `\n${
      markdownTable([
        header,
        ["connection refused", ...refused.map(cell)],
        ["accepts, never answers", ...silent.map(cell)],
      ])
    }`,
  );
  console.log(`\nDeno ${Deno.version.deno}, ${Deno.build.os} ${Deno.build.arch}; each library in a fresh process\n`);
  for (const [i, { title }] of LIBRARIES.entries()) {
    console.log(`- ${title}, refused: ${detail(refused[i]!)}`);
    console.log(
      `- ${title}, never answers (${servers[i]!.connections()} connection(s) accepted): ${detail(silent[i]!)}`,
    );
  }
}

if (Deno.args[0] === "--child") {
  const id = Deno.args[1];
  if (!LIBRARIES.some((library) => library.id === id)) throw new Error(`Unknown library "${id}"`);
  await child(id as LibraryId);
} else {
  await main(Deno.args);
}
