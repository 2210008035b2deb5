/**
 * The setup of `deno task interop` (run.ts): where things are, the cleanup every step registers
 * (run at the end, on Ctrl+C and at the run's deadline), commands run to their end, the npm
 * packages installed (packages.ts) and Azure Arc's key directory.
 */

import { installPackages as installInto, output } from "../helpers/runtimes.ts";
import { PACKAGES } from "./packages.ts";

/** This folder, tests/interop/, ending in a separator: the child scripts. */
export const here = decodeURIComponent(new URL(".", import.meta.url).pathname);
/** The repository's root, ending in a separator. */
export const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
/** Where npm installs the packages (packages.ts), outside git. */
export const modulesDirectory = Deno.env.get("AZMI_INTEROP_DIR") ?? `${root}.runtimes/interop`;

// ---------------------------------------------------------------------------------------------
// Cleanup and the run's deadline.

/** The whole run stops after this. */
const RUN_DEADLINE_MS = 15 * 60_000;

/** What to undo at the end, in reverse order: run by cleanup(). */
export const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | undefined;
/** Runs the cleanups once, last registered first; every caller waits for the same run. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (error) {
        console.error(`# cleanup: ${error instanceof Error ? error.message : error}`);
      }
    }
  })();
  return cleaning;
}

/** On SIGINT or SIGTERM, and when the run passes its deadline: the cleanup, then exit. */
export function guardRun(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`\n# ${signal}: cleaning up`);
      cleanup().finally(() => Deno.exit(130));
    });
  }
  const watchdog = setTimeout(() => {
    console.error(`# interop: still running after ${RUN_DEADLINE_MS / 60_000} min: stopping`);
    cleanup().finally(() => Deno.exit(1));
  }, RUN_DEADLINE_MS);
  Deno.unrefTimer(watchdog);
}

// ---------------------------------------------------------------------------------------------
// Commands and the npm packages.

export const decoder: TextDecoder = new TextDecoder();
/** A duration in seconds, as the report prints it. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Runs a command to its end (with a deadline), output shown only on failure. */
export async function run(command: string, args: string[], deadlineMs: number, cwd = root): Promise<string> {
  const child = new Deno.Command(command, { args, cwd, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), deadlineMs);
  try {
    const { success, stdout, stderr } = await child.output();
    const text = decoder.decode(stdout) + decoder.decode(stderr);
    if (!success) {
      throw new Error(`${command} ${args.join(" ")} failed:\n${text.trim().split("\n").slice(-20).join("\n")}`);
    }
    return text;
  } finally {
    clearTimeout(timer);
  }
}

/** What `command --version` prints, or undefined when it does not run. */
export const versionOf = (command: string): Promise<string | undefined> => output(command, ["--version"]);

/** Installs the packages (packages.ts) into the modules folder unless the right versions are there. */
export function installPackages(): Promise<Record<string, string>> {
  return installInto(modulesDirectory, PACKAGES);
}

// ---------------------------------------------------------------------------------------------
// Azure Arc's key directory.

/**
 * Where msal-node 7.2 (and so `@azure/identity` 4.14, whose ManagedIdentityCredential hands Arc
 * to msal-node's ManagedIdentityApplication) accepts an Arc key file: its AzureArc source takes
 * the path after `Basic realm=` in the 401 challenge, refuses it unless its file name ends in
 * `.key` and the path is exactly `SUPPORTED_AZURE_ARC_PLATFORMS[process.platform] + name`, a
 * constant (`/var/opt/azcmagent/tokens/` on Linux, `%ProgramData%\AzureConnectedMachineAgent\Tokens\`
 * on Windows, any other platform refused), then `statSync` (at most 4096 bytes) and
 * `readFileSync`, which follow links. No option or variable moves it, so the emulator's Arc keys
 * must be written there: `serve({ arcKeyDirectory })` with this directory.
 */
const ARC_KEY_DIRECTORY = "/var/opt/azcmagent/tokens";

/** Makes ARC_KEY_DIRECTORY usable: uses it when it exists, else creates it and removes it at the end. */
export async function arcKeyDirectory(): Promise<{ path?: string; skip?: string }> {
  if (Deno.build.os !== "linux") {
    return { skip: `the reference clients' Arc key directory is Linux's ${ARC_KEY_DIRECTORY} only here` };
  }
  const exists = async (path: string) => {
    try {
      return (await Deno.lstat(path)).isDirectory ? "directory" : "other";
    } catch {
      return undefined;
    }
  };
  const state = await exists(ARC_KEY_DIRECTORY);
  if (state === "other") return { skip: `${ARC_KEY_DIRECTORY} exists and is not a directory` };
  if (state === undefined) {
    // The top-most missing ancestor is what this run creates, and removes.
    let created = ARC_KEY_DIRECTORY;
    for (let parent = created.replace(/\/[^/]+$/, ""); parent && !(await exists(parent));) {
      created = parent;
      parent = parent.replace(/\/[^/]+$/, "");
    }
    try {
      await Deno.mkdir(ARC_KEY_DIRECTORY, { recursive: true, mode: 0o700 });
    } catch (error) {
      return {
        skip: `cannot create ${ARC_KEY_DIRECTORY} (${error instanceof Error ? error.name : error}): run as root`,
      };
    }
    console.log(`# created ${ARC_KEY_DIRECTORY} for the Azure Arc cases; ${created} is removed at the end`);
    cleanups.push(async () => {
      await Deno.remove(created, { recursive: true });
      console.log(`# removed ${created}`);
    });
    return { path: ARC_KEY_DIRECTORY };
  }
  // An existing directory (an Arc agent's, or left by someone): used if writable, left as found.
  try {
    const probe = await Deno.makeTempFile({ dir: ARC_KEY_DIRECTORY, prefix: "azmi-interop-", suffix: ".probe" });
    await Deno.remove(probe);
  } catch {
    return { skip: `${ARC_KEY_DIRECTORY} exists but this user cannot write to it` };
  }
  console.log(`# using the existing ${ARC_KEY_DIRECTORY} (the emulator removes its key files)`);
  return { path: ARC_KEY_DIRECTORY };
}
