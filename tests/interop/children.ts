/**
 * The child processes of `deno task interop` (run.ts): one script of this folder (peer.ts,
 * storage.ts, key_vault.ts) on one runtime, in a fresh environment, with a deadline; its result
 * is the last line it prints that starts with RESULT_PREFIX (packages.ts).
 */

import type { Certificates } from "./certificates.ts";
import { MODULES_VARIABLE, RESULT_PREFIX } from "./packages.ts";
import { cleanups, decoder, here, modulesDirectory, root, seconds } from "./setup.ts";

/** The runtimes the children run on. */
export type Runtime = "node" | "bun" | "deno";
const CHILD_DEADLINE_MS = 120_000;

/** The executables of Node, Bun and Deno. */
export interface Tools {
  readonly node: string;
  readonly bun: string;
  readonly deno: string;
}

/** How a child ended: its result line (packages.ts), its stderr and status. */
export interface ChildOutcome {
  readonly result?: Record<string, unknown>;
  readonly stderr: string;
  readonly status: number | null;
  readonly timedOut: boolean;
}

/** The runtimes' executables, set by prepareChildren(). */
export let tools: Tools;
/** Children running now: killed by the cleanup (Ctrl+C, the run's deadline). */
const activeChildren = new Set<Deno.ChildProcess>();
cleanups.push(() => {
  for (const active of activeChildren) active.kill("SIGKILL");
});
/** The run's certificates (the children trust its CA), set by prepareChildren(). */
export let certs: Certificates;
let guardPort = 0;

/**
 * What every child needs, known once the setup has run (run.ts): the runtimes, the certificates
 * and the closed loopback port that stands in for the IMDS fallback (see child()).
 */
export function prepareChildren(setup: { tools: Tools; certs: Certificates; guardPort: number }): void {
  ({ tools, certs, guardPort } = setup);
}

/** Runs one child script on a runtime, with a fresh environment: base variables and `env`. */
export async function child(
  runtime: Runtime,
  script: string,
  args: string[],
  env: Record<string, string>,
  options: { trustCa?: boolean } = {},
): Promise<ChildOutcome> {
  const trust: Record<string, string> = options.trustCa === false
    ? {}
    : runtime === "deno"
    ? { DENO_CERT: certs.caFile }
    : { NODE_EXTRA_CA_CERTS: certs.caFile };
  const base: Record<string, string> = {
    NO_COLOR: "1",
    AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${guardPort}`,
  };
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  // Node and Bun load the packages npm installed; Deno its cache (packages.ts).
  const modules: Record<string, string> = runtime === "deno" ? {} : { [MODULES_VARIABLE]: modulesDirectory };
  const path = `${here}${script}`;
  const [command, commandArgs] = runtime === "node"
    ? [tools.node, [path, ...args]]
    : runtime === "bun"
    ? [tools.bun, [path, ...args]]
    : [tools.deno, [
      "run",
      "--cached-only",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "--allow-net=127.0.0.1",
      path,
      ...args,
    ]];
  const spawned = new Deno.Command(command, {
    args: commandArgs,
    cwd: root,
    clearEnv: true,
    env: { ...base, ...modules, ...trust, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  activeChildren.add(spawned);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    spawned.kill("SIGKILL");
  }, CHILD_DEADLINE_MS);
  try {
    const output = await spawned.output();
    const line = decoder.decode(output.stdout).split("\n").findLast((l) => l.startsWith(RESULT_PREFIX));
    return {
      result: line ? JSON.parse(line.slice(RESULT_PREFIX.length)) as Record<string, unknown> : undefined,
      stderr: decoder.decode(output.stderr),
      status: output.code,
      timedOut,
    };
  } finally {
    clearTimeout(timer);
    activeChildren.delete(spawned);
  }
}

/** The child's result when it says ok, else an error that tells what it said. */
export function expectOk(outcome: ChildOutcome): Record<string, unknown> {
  if (outcome.timedOut) throw new Error(`the child was still running after ${seconds(CHILD_DEADLINE_MS)}`);
  if (!outcome.result) {
    const tail = outcome.stderr.trim().split("\n").slice(-6).join("\n");
    throw new Error(`the child ended (status ${outcome.status}) without a result:\n${tail}`);
  }
  if (outcome.result.ok !== true) {
    // The child's error, as packages.ts describeError() put it.
    const error = (outcome.result.error ?? {}) as Record<string, unknown>;
    const what = [error.name, error.code, error.status].filter((value) => value !== undefined).join(" ");
    throw new Error(`${what}: ${error.message}${error.cause ? ` [cause: ${error.cause}]` : ""}`);
  }
  return outcome.result;
}
