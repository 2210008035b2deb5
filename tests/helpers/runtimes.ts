/**
 * Where the runtimes come from, for `deno task test` (tests/run_all.ts) and the benchmarks
 * (bench/runtimes.ts): Bun 1 and Node 24 from PATH when they are those major versions, else
 * installed from the npm registry into `.runtimes/`; Node 22 from AZMI_NODE22, PATH or
 * `.runtimes/node22/` (see tests/run_all.ts).
 */

import { fileURLToPath } from "node:url";

/** The repository's root, ending in a separator. */
export const rootPath: string = fileURLToPath(new URL("../../", import.meta.url));
/** The gitignored folder runtimes are installed into. */
export const runtimesPath = `${rootPath}.runtimes`;
const windows = Deno.build.os === "windows";

/** What `command args` prints on stdout, trimmed, or undefined when it fails or does not run. */
export async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" }).output();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The `[major, minor]` version `command --version` prints, or undefined when it does not run. */
export async function versionOf(command: string): Promise<[number, number] | undefined> {
  const match = /(\d+)\.(\d+)/.exec(await output(command, ["--version"]) ?? "");
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

async function firstOfMajor(commands: string[], major: number): Promise<string | undefined> {
  for (const command of commands) {
    if ((await versionOf(command))?.[0] === major) return command;
  }
  return undefined;
}

/** The executables an npm install of `bun@1` or `node@N` leaves under `prefix`. */
function installed(prefix: string, name: "bun" | "node"): string[] {
  return name === "bun"
    ? [`${prefix}/node_modules/bun/bin/bun.exe`, `${prefix}/node_modules/.bin/bun${windows ? ".cmd" : ""}`]
    : [
      `${prefix}/node_modules/node/bin/node${windows ? ".exe" : ""}`,
      `${prefix}/node_modules/.bin/node${windows ? ".cmd" : ""}`,
    ];
}

/**
 * `npm install specs` into `prefix` (without touching a package.json), with npm from PATH, else
 * through Deno's own npm support (a machine with nothing but Deno); stopped after 10 minutes.
 * The one install of `deno task test`'s runtimes, the benchmarks' peers and the interop packages.
 */
export async function npmInstall(prefix: string, specs: readonly string[]): Promise<void> {
  const where = prefix.startsWith(rootPath) ? `${prefix.slice(rootPath.length)}/` : prefix;
  console.log(`# installing ${specs.join(" ")} into ${where} from the npm registry`);
  const [command, first] = (await output("npm", ["--version"])) !== undefined
    ? ["npm", []]
    : [Deno.execPath(), ["run", "-A", "npm:npm@11"]];
  await Deno.mkdir(prefix, { recursive: true });
  const args = [...first, "install", "--prefix", prefix, "--no-save", "--no-audit", "--no-fund", "--loglevel=error"];
  const install = await new Deno.Command(command, {
    args: [...args, ...specs],
    stdout: "inherit",
    stderr: "inherit",
    signal: AbortSignal.timeout(600_000),
  }).output();
  if (!install.success) throw new Error(`npm install ${specs.join(" ")} into ${where} failed`);
}

/** The version of `name` installed under `prefix/node_modules`, or undefined. */
async function installedVersion(prefix: string, name: string): Promise<string | undefined> {
  try {
    const manifest = await Deno.readTextFile(`${prefix}/node_modules/${name}/package.json`);
    return (JSON.parse(manifest) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Installs `packages` (name to version range, `4.14`) into `prefix` unless each installed
 * version is in its range; returns each package's installed version, or throws for one that is
 * still missing.
 */
export async function installPackages(
  prefix: string,
  packages: Readonly<Record<string, string>>,
): Promise<Record<string, string>> {
  const wanted = Object.entries(packages);
  const found = await Promise.all(wanted.map(([name]) => installedVersion(prefix, name)));
  if (wanted.some(([, range], i) => !found[i]?.startsWith(`${range}.`))) {
    await npmInstall(prefix, wanted.map(([name, range]) => `${name}@${range}`));
  }
  const versions: Record<string, string> = {};
  for (const [name] of wanted) {
    const version = await installedVersion(prefix, name);
    if (version === undefined) throw new Error(`${name} is not installed in ${prefix}`);
    versions[name] = version;
  }
  return versions;
}

/** Bun 1 or Node 24: from PATH when it is the right major version, else from (or installed into) .runtimes. */
export async function locate(name: "bun" | "node", major: number): Promise<string> {
  const found = await firstOfMajor([name, ...installed(runtimesPath, name)], major);
  if (found) return found;
  console.log(`# ${name} ${major} is not on PATH`);
  await npmInstall(runtimesPath, ["bun@1", "node@24"]);
  const local = await firstOfMajor(installed(runtimesPath, name), major);
  if (!local) throw new Error(`Cannot install ${name} ${major}: install it and put it on PATH`);
  return local;
}

/** Node 22: AZMI_NODE22, else `node` on PATH, else .runtimes/node22 (installed when missing). */
export async function locateNode22(): Promise<{ command: string; version: [number, number] }> {
  const named = Deno.env.get("AZMI_NODE22");
  if (named) {
    const version = await versionOf(named);
    if (version?.[0] !== 22) {
      throw new Error(`AZMI_NODE22=${named} is not Node 22 (it says ${version ? version.join(".") : "nothing"})`);
    }
    return { command: named, version };
  }
  const prefix = `${runtimesPath}/node22`;
  let command = await firstOfMajor(["node", ...installed(prefix, "node")], 22);
  if (!command) {
    console.log("# node 22 is neither AZMI_NODE22 nor on PATH");
    await npmInstall(prefix, ["node@22"]);
    command = await firstOfMajor(installed(prefix, "node"), 22);
  }
  if (!command) throw new Error("Cannot install Node 22: install it and set AZMI_NODE22 to its node binary");
  return { command, version: (await versionOf(command))! };
}
