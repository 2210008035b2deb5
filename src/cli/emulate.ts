/**
 * `azmi emulate`: runs the library's emulator of every source on loopback, prints the shell
 * variables that point a client at it (quoted for a POSIX shell; every line escaped, see
 * `visible()`, and no variable printed whose value a shell line cannot carry as it is), and
 * stops on a signal. Also the check that Azure Arc's key directory and workload identity's
 * token directory are writable (by writing a probe file: nothing more than the emulator itself
 * needs, so no `--allow-sys` on Deno), the choice of sources by name, and the failures to
 * rehearse (`--fail`). The federated token file's path is printed, its contents never.
 * @module
 */

import type { Source } from "../../mod.ts";
import { ARC_LINUX_TOKEN_DIRECTORY } from "../arc_key.ts";
import type { CliIo } from "./common.ts";
import { ALL_SOURCES, serve } from "../emulator/mod.ts";
import type { FailureScenario, RunningEmulator } from "../emulator/mod.ts";
import {
  describeFailure,
  notApplicable,
  parseFailures,
  type PendingFailure,
  queueFailures,
  SOURCE_ALIASES,
  sourceNamed,
} from "../emulator/faults.ts";
import { EmulatorPermissionError } from "../emulator/permission.ts";
import { loadBuiltin } from "../runtime.ts";
import { noPositionals, parseArgs, UsageError, wholeNumber } from "./args.ts";
import { EXIT_CODES, hasUnprintable, printable } from "./common.ts";
import { checkCreatable } from "./writable.ts";
import { RELAY_FLAGS, relayCommand } from "./relay.ts";
import { shellQuote, stopped } from "./running.ts";
import { visible } from "../redact.ts";

/** What each source accepts as a user-assigned identity, as the emulator enforces it (docs/sources.md). */
const USER_ASSIGNED: Readonly<Record<Source, string>> = {
  WorkloadIdentity: "client ID only; AZURE_CLIENT_ID below is the default",
  DefaultToIMDS: "client, object or resource ID",
  AppService: "client, object or resource ID",
  AzureArc: "client, object or resource ID",
  AzureML: "client ID only",
  CloudShell: "none: system-assigned only",
  ServiceFabric: "object ID only, as principalId",
};

/** The system's temporary directory, where workload identity's token file goes by default. */
function temporaryDirectory(): string | undefined {
  try {
    return loadBuiltin<{ tmpdir(): string }>("node:os").tmpdir();
  } catch {
    // Deno without --allow-env=TMPDIR: serve() names the flag.
    return undefined;
  }
}

/** The failures `--fail` names, checked against the sources served: a usage error for one that cannot apply. */
function failuresOf(text: string | undefined, sources: readonly Source[]): FailureScenario[] | undefined {
  if (text === undefined) return undefined;
  let scenarios: FailureScenario[];
  try {
    scenarios = parseFailures(text);
  } catch (error) {
    throw new UsageError(`Flag "--fail": ${(error as Error).message}`, "emulate");
  }
  for (const scenario of scenarios) {
    if (scenario.source !== undefined) {
      if (!sources.includes(scenario.source)) {
        throw new UsageError(
          `Flag "--fail": ${scenario.kind} for ${scenario.source}, but ${scenario.source} is not served ` +
            `(--source ${sources.length === 1 ? sources[0] : "..."})`,
          "emulate",
        );
      }
    } else if (!sources.some((source) => !notApplicable(scenario.kind, source))) {
      throw new UsageError(`Flag "--fail": ${notApplicable(scenario.kind, sources[0]!)}`, "emulate");
    }
  }
  return scenarios;
}

/**
 * `azmi emulate [--source NAME] [--port N] [--lifetime SECONDS] [--refresh-in SECONDS] [--arc-key-dir DIR]
 * [--federated-token-dir DIR] [--fail SCENARIOS]`.
 */
export async function emulateCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs("emulate", args, {
    source: "a source name",
    port: "a port number",
    lifetime: "a number of seconds",
    "refresh-in": "a number of seconds",
    "arc-key-dir": "a directory",
    "federated-token-dir": "a directory",
    fail: "failure scenarios, such as throttled:2,server-error@imds",
    ...RELAY_FLAGS,
  });
  noPositionals("emulate", parsed);
  // Real tokens from the developer's sign-in: the relay, a command of its own behind the flag.
  if (parsed.values.has("tokens-from")) return relayCommand(parsed, io);
  for (const flag of Object.keys(RELAY_FLAGS)) {
    if (parsed.values.has(flag)) {
      throw new UsageError(`Flag "--${flag}" goes with --tokens-from (az, azd or sp): real tokens`, "emulate");
    }
  }
  const named = parsed.values.get("source");
  let sources: readonly Source[] = ALL_SOURCES;
  if (named !== undefined) {
    const source = sourceNamed(named);
    if (!source) {
      throw new UsageError(
        `Flag "--source" expects one of ${ALL_SOURCES.join(", ")} (any case), or ${
          [...SOURCE_ALIASES.keys()].join(", ")
        }: got "${named}"`,
        "emulate",
      );
    }
    sources = [source];
  }
  const port = wholeNumber("emulate", parsed, "port", "a port number", 0, 65535) ?? 0;
  if (port !== 0 && port + sources.length - 1 > 65535) {
    throw new UsageError(
      `Flag "--port" leaves no room for ${sources.length} sources on consecutive ports: got "${port}", ` +
        `expected at most ${65536 - sources.length}`,
      "emulate",
    );
  }
  const seconds = (name: string) => wholeNumber("emulate", parsed, name, "a whole number of seconds", 1, 315_360_000);
  const lifetimeSeconds = seconds("lifetime") ?? 3600;
  const refreshInSeconds = seconds("refresh-in");
  // A path printed in a comment or an export line must print as it is: no control, format or
  // separator character (a line feed would end the comment, and the next line would be run).
  for (const flag of ["arc-key-dir", "federated-token-dir"]) {
    const value = parsed.values.get(flag);
    if (value !== undefined && hasUnprintable(value)) {
      throw new UsageError(
        `Flag "--${flag}" expects a directory whose path holds no control, format or separator character: ` +
          `got "${visible(value)}"`,
        "emulate",
      );
    }
  }
  const arcKeyDirectory = parsed.values.get("arc-key-dir") ?? ARC_LINUX_TOKEN_DIRECTORY;
  // Without the flag, a new directory in the system's temporary directory.
  const federatedTokenDirectory = parsed.values.get("federated-token-dir");
  const fail = failuresOf(parsed.values.get("fail"), sources);

  // Each directory is tried by writing a probe file, so the reason given is the real one: the
  // OS's (a root-owned directory, a file in the way) or the runtime's (a Deno permission, with
  // the flag that grants it).
  const notes: string[] = [];
  if (sources.includes("AzureArc")) {
    const check = await checkCreatable(arcKeyDirectory);
    if (!check.writable) {
      const why = `Azure Arc's emulator cannot write its key files to ${arcKeyDirectory}: ${check.reason}`;
      const hint = check.reason.startsWith("this user may not write there")
        ? " (the agent's directory belongs to root: run as a user who can write there, or pass --arc-key-dir)"
        : / --allow-/.test(check.reason)
        ? ""
        : " (pass --arc-key-dir with a writable directory)";
      if (named !== undefined) {
        io.stderr(`azmi emulate: ${why}${hint}\n`);
        return EXIT_CODES.configuration;
      }
      sources = sources.filter((source) => source !== "AzureArc");
      notes.push(`AzureArc is left out: ${why}${hint}.`);
    }
  }
  const tokenDirectory = federatedTokenDirectory ?? temporaryDirectory();
  if (sources.includes("WorkloadIdentity") && tokenDirectory !== undefined) {
    const check = await checkCreatable(tokenDirectory);
    if (!check.writable) {
      const why = `workload identity's emulator cannot write its federated token file to ${tokenDirectory}: ${
        check.reason.replace(/--allow-write=(\S+)/, "--allow-read=$1 --allow-write=$1")
      }`;
      const hint = / --allow-/.test(check.reason) ? "" : " (pass --federated-token-dir with a writable directory)";
      if (named !== undefined) {
        io.stderr(`azmi emulate: ${why}${hint}\n`);
        return EXIT_CODES.configuration;
      }
      sources = sources.filter((source) => source !== "WorkloadIdentity");
      notes.push(`WorkloadIdentity is left out: ${why}${hint}.`);
    }
  }

  let running: RunningEmulator;
  try {
    running = await serve({
      sources,
      port,
      lifetimeSeconds,
      refreshInSeconds,
      arcKeyDirectory,
      ...(federatedTokenDirectory === undefined ? {} : { federatedTokenDirectory }),
      ...(fail === undefined ? {} : { fail }),
    });
  } catch (error) {
    io.stderr(
      `azmi emulate: cannot start the emulator${port ? ` on port ${port}` : ""}: ${
        printable((error instanceof Error ? error.message : String(error)).split("\n")[0]!)
      }\n`,
    );
    // A refused permission is the configuration, with the flag to add; anything else a failure.
    return error instanceof EmulatorPermissionError ? EXIT_CODES.configuration : EXIT_CODES.failed;
  }
  try {
    // The temporary directory (TMPDIR) names the federated token file's: an export line must
    // carry its value exactly, so one that would print escaped is refused, not printed wrong.
    for (const [name, value] of Object.values(running.env).flatMap((env) => Object.entries(env ?? {}))) {
      if (hasUnprintable(value)) {
        io.stderr(
          `azmi emulate: ${name} would print as "${visible(value)}": a control, format or separator character ` +
            "cannot go in an export line as it is; point TMPDIR (or --federated-token-dir) at a directory without one\n",
        );
        return EXIT_CODES.configuration;
      }
    }
    const lines: string[] = [];
    const comment = (text = "") => lines.push(text ? `# ${text}` : "#");
    comment(`azmi emulate: ${sources.length === 1 ? "an emulated endpoint" : "emulated endpoints"} on loopback.`);
    comment("Tokens are RS256-signed v1 access tokens, as Microsoft Entra ID issues to managed identities. An API");
    comment(`validates them with issuer ${running.issuer} and the keys at`);
    comment(`${running.jwksUri} (OpenID configuration: ${running.openIdConfiguration}).`);
    if (sources.some((source) => source === "AppService" || source === "ServiceFabric" || source === "AzureML")) {
      comment("IDENTITY_HEADER and MSI_SECRET below are the emulator's own throwaway secret, generated at start:");
      comment("printing them is fine, they are not a real secret.");
    }
    if (sources.length > 1) {
      comment("Use one block per shell: detection takes the first source whose variables are set.");
    }
    for (const note of notes) comment(note);
    if (fail !== undefined) {
      // The same queues the emulator built, described per source served.
      const queues = new Map<Source, PendingFailure[]>();
      queueFailures(fail, queues);
      comment("");
      for (const source of sources) {
        const queue = queues.get(source) ?? [];
        for (const [index, pending] of queue.entries()) {
          comment(`Failure rehearsal: ${describeFailure(source, pending, index === queue.length - 1)}`);
        }
      }
    }
    for (const source of sources) {
      lines.push("");
      lines.push(`# ${source}: ${running.urls[source]} (user-assigned identity: ${USER_ASSIGNED[source]})`);
      if (source === "ServiceFabric") {
        comment("HTTPS with a development certificate, pinned by IDENTITY_SERVER_THUMBPRINT; a client that trusts");
        comment("rather than pins trusts the development CA, DEV_CA_CERTIFICATE of @azmi/managed-identity/emulator.");
      }
      if (source === "AzureArc") {
        comment(`The challenge's key files are written to ${arcKeyDirectory}. A real client accepts keys only`);
        comment(`from the agent's directory ${ARC_LINUX_TOKEN_DIRECTORY}, and on Deno needs --allow-read there.`);
      }
      if (source === "WorkloadIdentity") {
        comment("Microsoft Entra ID's token endpoint, over plain http: on loopback (a client allows that for an");
        comment("emulator only). AZURE_FEDERATED_TOKEN_FILE holds a service account token the emulator signed and");
        comment("rotates; it is removed at stop. On Deno a client needs --allow-read for it.");
      }
      for (const [name, value] of Object.entries(running.env[source] ?? {})) {
        lines.push(`export ${name}=${shellQuote(value)}`);
      }
    }
    const { identities, systemIdentity } = running.emulator;
    lines.push("");
    comment("User-assigned identities the emulator accepts (any other ID is refused as unknown):");
    for (const identity of identities) {
      comment(`  client ID:   ${identity.clientId}`);
      comment(`  object ID:   ${identity.objectId}`);
      comment(`  resource ID: ${identity.resourceId}`);
    }
    comment(
      `System-assigned identity: client ID ${systemIdentity.clientId}, object ID ${systemIdentity.objectId}` +
        (sources.includes("WorkloadIdentity") ? " (WorkloadIdentity's AZURE_CLIENT_ID)" : ""),
    );
    comment(
      `Tokens live ${lifetimeSeconds} s${
        refreshInSeconds === undefined ? "" : ` and carry refresh_in ${refreshInSeconds} s`
      }. Running until Ctrl+C (SIGINT) or SIGTERM.`,
    );
    io.stdout(`${lines.map(visible).join("\n")}\n`);
    const why = await stopped(io.until);
    io.stderr(`azmi emulate: ${why === "stopped" ? "stopped" : `${why} received, stopping`}\n`);
  } finally {
    await running.close();
  }
  return EXIT_CODES.ok;
}
