/**
 * Node and Bun for the benchmarks, and the peers installed for them with npm: Node 24 and Bun 1
 * from PATH when they are there in those versions, else from `.runtimes/` (installed from the npm
 * registry as `deno task test` does); msal-node and @azure/identity installed with npm into
 * `.runtimes/bench/` (gitignored), at the versions Deno's `npm:` specifiers name in
 * bench/peers.ts, so every runtime times the same releases. Node and Bun are found as
 * `deno task test` finds them: one lookup, tests/helpers/runtimes.ts.
 */

import { installPackages, locate, output } from "../tests/helpers/runtimes.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** Where the benchmarks keep what they install and build (gitignored, outside `deno check`). */
export const BENCH_DIR = `${root}.runtimes/bench`;

/** The peers' npm packages and the version ranges of their `npm:` specifiers (bench/peers.ts). */
export const PEER_PACKAGES = { "@azure/msal-node": "7.2", "@azure/identity": "4.14" } as const;

/** A runtime: the command that runs it and its version. */
export interface Runtime {
  readonly command: string;
  readonly version: string;
}

/** Node 24 or Bun 1: from PATH, else from `.runtimes/`, installing it there when missing. */
export async function locateRuntime(name: "node" | "bun", major: number): Promise<Runtime> {
  const command = await locate(name, major);
  const version = await output(command, ["--version"]);
  if (version === undefined) throw new Error(`${command} --version did not run`);
  return { command, version };
}

/**
 * Installs the peers with npm into `dir` (default `.runtimes/bench/peers`) unless they are there
 * at the right versions; returns the folder and each package's installed version.
 */
export async function installPeers(
  dir = `${BENCH_DIR}/peers`,
): Promise<{ dir: string; versions: Record<string, string> }> {
  return { dir, versions: await installPackages(dir, PEER_PACKAGES) };
}
