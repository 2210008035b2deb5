/**
 * Node and Bun for the benchmarks, and the peers installed for them with npm: Node 24 and Bun 1
 * from PATH when they are there in those versions, else from `.runtimes/` (installed from the npm
 * registry as `deno task test` does); msal-node and @azure/identity installed with npm into
 * `.runtimes/bench/` (gitignored), at the versions Deno's `npm:` specifiers name in
 * bench/peers.ts, so every runtime times the same releases. Node and Bun are found as
 * `deno task test` finds them: one lookup, tests/helpers/runtimes.ts.
 */

import { locate, output } from "../tests/helpers/runtimes.ts";

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** Where the benchmarks keep what they install and build (gitignored, outside `deno check`). */
export const BENCH_DIR = `${root}.runtimes/bench`;

/** The peers' npm packages and the version ranges of their `npm:` specifiers (bench/peers.ts). */
export const PEER_PACKAGES = { "@azure/msal-node": "7.2", "@azure/identity": "4.14" } as const;

async function npm(args: string[]): Promise<void> {
  const [command, prefix] = (await output("npm", ["--version"])) !== undefined
    ? ["npm", []]
    : [Deno.execPath(), ["run", "-A", "npm:npm@11"]];
  const result = await new Deno.Command(command, { args: [...prefix, ...args], stdout: "inherit", stderr: "inherit" })
    .output();
  if (!result.success) throw new Error(`npm ${args.join(" ")} failed`);
}

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

/** The version of a package installed under `dir/node_modules`, or undefined. */
async function installedVersion(dir: string, name: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await Deno.readTextFile(`${dir}/node_modules/${name}/package.json`)) as { version: string })
      .version;
  } catch {
    return undefined;
  }
}

/**
 * Installs the peers with npm into `dir` (default `.runtimes/bench/peers`) unless they are there
 * at the right versions; returns the folder and each package's installed version.
 */
export async function installPeers(
  dir = `${BENCH_DIR}/peers`,
): Promise<{ dir: string; versions: Record<string, string> }> {
  const wanted = Object.entries(PEER_PACKAGES);
  const fits = async ([name, range]: [string, string]) =>
    (await installedVersion(dir, name))?.startsWith(`${range}.`) === true;
  if (!(await Promise.all(wanted.map(fits))).every(Boolean)) {
    console.log(`# installing ${wanted.map(([n, r]) => `${n}@${r}`).join(" ")} into ${dir} with npm`);
    await Deno.mkdir(dir, { recursive: true });
    await npm([
      "install",
      "--prefix",
      dir,
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      ...wanted.map(([name, range]) => `${name}@${range}`),
    ]);
  }
  const versions: Record<string, string> = {};
  for (const [name] of wanted) {
    const version = await installedVersion(dir, name);
    if (version === undefined) throw new Error(`${name} is not installed in ${dir}`);
    versions[name] = version;
  }
  return { dir, versions };
}
