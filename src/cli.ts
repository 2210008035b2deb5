/**
 * The `azmi` command line: a token for a shell script, which managed identity source this
 * environment has, a step-by-step diagnosis of why a token cannot be had, and a local emulator
 * of every source. The same file runs on Deno, Bun and Node 24:
 *
 * ```sh
 * deno run --allow-env --allow-net --allow-read --allow-write --allow-run=az,azd jsr:@azmi/managed-identity/cli token https://vault.azure.net
 * node src/cli.ts detect
 * bun src/cli.ts doctor
 * ```
 *
 * Exit codes: 0 success, 1 the token request failed, 2 usage error, 3 no managed identity
 * reachable (`unavailable`), 4 timeout, 5 configuration error. `azmi --help` lists them.
 *
 * An access token is printed only as the output of `azmi token`; secret variables
 * (`IDENTITY_HEADER`, `MSI_SECRET`) are shown as `<set, redacted>`, URLs without their
 * `user:password@` (`[redacted]@`), workload identity's federated token file by its path only
 * (never its contents), and errors are shown through {@linkcode ManagedIdentityError}'s message,
 * which never holds a secret. Every value from an endpoint, a file, the environment or the
 * command line is printed with its control, format and separator characters escaped (`\x1b`,
 * `\x9b`, `\u202e`): none reaches the terminal raw. The access token `azmi token` prints is the
 * one value printed as it came.
 *
 * @example Run a command in-process and read its output
 * ```ts
 * import { main } from "@azmi/managed-identity/cli";
 *
 * let output = "";
 * const code = await main(["detect"], {
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "not-printed" },
 *   stdout: (text) => output += text,
 *   stderr: () => {},
 * });
 * console.log(code, output); // 0 "AppService (IDENTITY_ENDPOINT=http://..., IDENTITY_HEADER=<set, redacted>)"
 * ```
 *
 * @module
 */

import { ManagedIdentityError } from "../mod.ts";
import { isHelp, UsageError } from "./cli/args.ts";
import { type CliIo, errorLine, EXIT_CODES, exitCodeOf, printable } from "./cli/common.ts";
import { visible } from "./redact.ts";
import { detectCommand } from "./cli/detect.ts";
import { doctorCommand } from "./cli/doctor.ts";
import { emulateCommand } from "./cli/emulate.ts";
import { DETECT_HELP, DOCTOR_HELP, EMULATE_HELP, TOKEN_HELP, USAGE } from "./cli/help.ts";
import { tokenCommand } from "./cli/token.ts";
import { VERSION } from "./version.ts";

export { EXIT_CODES };
export type { CliIo };

/** A command: what runs it (after `--help` is handled), and its help text. */
interface Command {
  run(args: readonly string[], io: CliIo): number | Promise<number>;
  readonly help: string;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  token: { run: tokenCommand, help: TOKEN_HELP },
  detect: { run: detectCommand, help: DETECT_HELP },
  doctor: { run: doctorCommand, help: DOCTOR_HELP },
  emulate: { run: emulateCommand, help: EMULATE_HELP },
};

/**
 * Runs one `azmi` command and returns its exit code; nothing here exits the process or reads
 * its arguments, so a test can call it with an environment record and a fake `fetch`.
 *
 * Commands: `token <resource>`, `detect`, `doctor [resource]`, `emulate`, `help [command]`;
 * `azmi --help` lists them with their flags and the exit codes (see {@linkcode EXIT_CODES}), and
 * `azmi --version` (or `-V`) prints `azmi` and the package version.
 *
 * On Deno: `--allow-env` to read the environment, `--allow-net` for the endpoint (and for the
 * emulator's loopback servers), `--allow-read` for Azure Arc's key file and workload identity's
 * federated token file, and `--allow-write` for the emulator's files.
 *
 * @param args The arguments after the program name, such as `["token", "https://vault.azure.net"]`.
 * @param io Where output goes, and the environment, `fetch` and stop signal to use instead of the process's.
 * @returns The exit code: 0 success, 1 token request failed, 2 usage error, 3 unavailable, 4 timeout,
 *   5 configuration error.
 * @throws Never for a usage or token error (those are printed and become exit codes); only when
 *   writing output itself fails.
 *
 * @example Print a token for Key Vault from a fake App Service endpoint
 * ```ts
 * import { main } from "@azmi/managed-identity/cli";
 *
 * const code = await main(["token", "https://vault.azure.net"], {
 *   env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "h" },
 *   fetch: () => Response.json({ access_token: "t", expires_in: 3600 }),
 *   stdout: (text) => console.log(text.trim()), // "t"
 *   stderr: (text) => console.error(text.trim()),
 * });
 * console.log(code); // 0
 * ```
 */
export async function main(args: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === undefined) {
      io.stderr(USAGE);
      return EXIT_CODES.usage;
    }
    if (command === "--version" || command === "-V") {
      io.stdout(`azmi ${VERSION}\n`);
      return EXIT_CODES.ok;
    }
    if (command === "--help" || command === "-h" || command === "help") {
      const topic = command === "help" ? rest[0] : undefined;
      if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
        throw new UsageError(`No help for "${topic}": expected one of ${Object.keys(COMMANDS).join(", ")}`, undefined);
      }
      io.stdout(topic === undefined ? USAGE : COMMANDS[topic]!.help);
      return EXIT_CODES.ok;
    }
    if (!Object.hasOwn(COMMANDS, command)) {
      throw new UsageError(
        `Unknown ${command.startsWith("-") ? "flag" : "command"} "${command}": expected one of ${
          Object.keys(COMMANDS).join(", ")
        } or help`,
        undefined,
      );
    }
    const { run, help } = COMMANDS[command]!;
    if (isHelp(rest)) {
      io.stdout(help);
      return EXIT_CODES.ok;
    }
    return await run(rest, io);
  } catch (error) {
    const prefix = command !== undefined && Object.hasOwn(COMMANDS, command) ? `azmi ${command}` : "azmi";
    if (error instanceof UsageError) {
      const help = error.command === undefined ? "azmi --help" : `azmi ${error.command} --help`;
      // A usage error quotes the argument it refuses: escaped, as everything a command prints.
      io.stderr(`${prefix}: ${visible(error.message)}\nRun "${help}" for usage.\n`);
      return EXIT_CODES.usage;
    }
    if (error instanceof ManagedIdentityError) {
      io.stderr(errorLine(prefix, error));
      return exitCodeOf(error);
    }
    io.stderr(`${prefix}: ${printable(error instanceof Error ? error.message : String(error))}\n`);
    return EXIT_CODES.failed;
  }
}

// ---------------------------------------------------------------------------------------------
// The process edge: arguments, output and exit code of the real process, when run as a script.

interface ProcessView {
  argv: string[];
  exitCode?: number | string | undefined;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}
interface DenoProcessView {
  args: string[];
  mainModule?: string;
  exit(code: number): never;
  stdout: { writeSync(data: Uint8Array): number };
  stderr: { writeSync(data: Uint8Array): number };
}

function isMainModule(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean; filename?: string };
  if (typeof meta.main === "boolean") return meta.main;
  const runtime = globalThis as { Deno?: DenoProcessView; process?: ProcessView };
  if (runtime.Deno?.mainModule) return runtime.Deno.mainModule === import.meta.url;
  const script = runtime.process?.argv[1];
  return script !== undefined && meta.filename !== undefined && script === meta.filename;
}

function writeAll(stream: { writeSync(data: Uint8Array): number }, text: string): void {
  let data = new TextEncoder().encode(text);
  while (data.length > 0) data = data.subarray(stream.writeSync(data));
}

if (isMainModule()) {
  const runtime = globalThis as { Deno?: DenoProcessView; process?: ProcessView };
  const deno = runtime.Deno;
  const node = runtime.process;
  const io: CliIo = deno
    ? { stdout: (text) => writeAll(deno.stdout, text), stderr: (text) => writeAll(deno.stderr, text) }
    : { stdout: (text) => node?.stdout.write(text), stderr: (text) => node?.stderr.write(text) };
  const code = await main(deno ? deno.args : node?.argv.slice(2) ?? [], io);
  if (deno) deno.exit(code);
  else if (node) node.exitCode = code;
}
