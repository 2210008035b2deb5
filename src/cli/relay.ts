/**
 * `azmi emulate --tokens-from az|azd|sp`: serves real tokens from the developer's own sign-in
 * (the Azure CLI, the Azure Developer CLI, or a service principal from the environment) over
 * App Service's managed identity protocol (IMDS's with `--source imds`), so that unchanged code,
 * this module's and every Azure SDK's, gets real tokens on a laptop or in a local container.
 * The relay itself is the emulator's (`src/emulator/relay.ts`, docs/relay.md); the origins that
 * run a tool are the CLI's (`src/cli/sign_in/`, docs/sign_in.md). This file picks them, checks
 * where to listen, and prints the variables to export, a `docker run` line and Compose's.
 * @module
 */

import type { Source } from "../../mod.ts";
import type { CliIo } from "./common.ts";
import { serve } from "../emulator/mod.ts";
import type { RunningEmulator } from "../emulator/mod.ts";
import { sourceNamed } from "../emulator/faults.ts";
import { OriginError } from "../emulator/origin.ts";
import { EmulatorPermissionError } from "../emulator/permission.ts";
import { visible } from "../redact.ts";
import { isLocalHost, isLoopback } from "../sources/source.ts";
import { type Parsed, UsageError, wholeNumber } from "./args.ts";
import { EXIT_CODES, printable } from "./common.ts";
import { type OriginKind, tokenOrigin } from "./sign_in/index.ts";
import { shellQuote, stopped } from "./running.ts";

/** The flags only the relay takes, beside `azmi emulate`'s `--source` and `--port`. */
export const RELAY_FLAGS = {
  "tokens-from": "az, azd or sp",
  tenant: "a tenant ID or domain",
  listen: "an IP address of this machine: loopback (default 127.0.0.1) or private",
} as const;

const KINDS: readonly OriginKind[] = ["az", "azd", "sp"];
const ORIGIN_NAMES: Readonly<Record<OriginKind, string>> = {
  az: "the Azure CLI (az)",
  azd: "the Azure Developer CLI (azd)",
  sp:
    "the service principal in AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE)",
};
/** `azmi emulate`'s flags that make emulated tokens and files: meaningless for real tokens. */
const EMULATOR_ONLY = ["lifetime", "refresh-in", "arc-key-dir", "federated-token-dir", "fail"] as const;
/** A tenant as az and azd take it: a tenant ID or a domain name. */
const TENANT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;
/** An IPv4 literal, or an IPv6 one (bare, as a flag gives it). */
const IP_LITERAL = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

/** The process environment as a record: the tool runs with it, and is found on its `PATH`. */
function processEnvironment(): Record<string, string | undefined> {
  const runtime = globalThis as {
    Deno?: { env: { toObject(): Record<string, string> } };
    process?: { env: Record<string, string | undefined> };
  };
  if (runtime.Deno) return runtime.Deno.env.toObject();
  return { ...runtime.process?.env };
}

/** The address to listen on, checked: an IP literal of loopback or a private network, never 0.0.0.0 or a public one. */
function listenAddress(parsed: Parsed): { hostname: string; loopback: boolean; url: URL } {
  const given = parsed.values.get("listen") ?? "127.0.0.1";
  const bare = given.replace(/^\[(.*)\]$/, "$1");
  let url: URL | undefined;
  if (IP_LITERAL.test(bare)) {
    try {
      url = new URL(`http://${bare.includes(":") ? `[${bare}]` : bare}/`);
    } catch {
      url = undefined;
    }
  }
  if (!url || !isLocalHost(url) || url.hostname === "localhost") {
    throw new UsageError(
      `Flag "--listen" expects an IP address of this machine, loopback (127.0.0.1, ::1) or on a private ` +
        `network (10/8, 172.16/12, 192.168/16, fc00::/7, such as a Docker bridge's 172.17.0.1), which a ` +
        `managed identity client accepts as an endpoint host: got "${visible(given)}"`,
      "emulate",
    );
  }
  return { hostname: bare, loopback: isLoopback(url), url };
}

/**
 * `azmi emulate --tokens-from az|azd|sp [--tenant T] [--source appservice|imds] [--listen ADDRESS]
 * [--port N]`: the relay, until a signal (or `io.until`).
 */
export async function relayCommand(parsed: Parsed, io: CliIo): Promise<number> {
  for (const flag of EMULATOR_ONLY) {
    if (parsed.values.has(flag)) {
      throw new UsageError(
        `Flag "--${flag}" is the emulator's own; with --tokens-from the tokens are real, and their lifetime ` +
          "Microsoft Entra ID's",
        "emulate",
      );
    }
  }
  const given = parsed.values.get("tokens-from")!;
  const kind = KINDS.find((each) => each === given.toLowerCase());
  if (!kind) {
    throw new UsageError(`Flag "--tokens-from" expects one of az, azd, sp: got "${visible(given)}"`, "emulate");
  }
  const tenant = parsed.values.get("tenant");
  if (tenant !== undefined && !TENANT.test(tenant)) {
    throw new UsageError(
      `Flag "--tenant" expects a tenant ID or domain, such as contoso.onmicrosoft.com: got "${visible(tenant)}"`,
      "emulate",
    );
  }
  const named = parsed.values.get("source");
  const source: Source | undefined = named === undefined ? "AppService" : sourceNamed(named);
  if (source !== "AppService" && source !== "DefaultToIMDS") {
    throw new UsageError(
      `Flag "--source" with --tokens-from expects appservice (the default: a secret guards it) or imds: got "${
        visible(named ?? "")
      }"`,
      "emulate",
    );
  }
  const listen = listenAddress(parsed);
  if (source === "DefaultToIMDS" && !listen.loopback) {
    throw new UsageError(
      `IMDS's protocol has no secret: whoever reaches it gets your tokens, so --source imds listens on loopback ` +
        `only (got --listen ${visible(listen.hostname)}); a container reaches App Service's, which has a secret`,
      "emulate",
    );
  }
  const port = wholeNumber("emulate", parsed, "port", "a port number", 0, 65535) ?? 0;

  let env: Record<string, string | undefined>;
  try {
    env = { ...(io.env ?? processEnvironment()) };
  } catch (error) {
    io.stderr(
      `azmi emulate: --tokens-from runs ${kind === "sp" ? "nothing but reads" : "a tool with"} the environment ` +
        `(PATH, the tool's sign-in): ${printable(String((error as Error)?.message ?? error))}; on Deno run it ` +
        "with --allow-env\n",
    );
    return EXIT_CODES.configuration;
  }
  let origin;
  try {
    origin = tokenOrigin(kind, { env, ...(tenant === undefined ? {} : { tenant }) });
  } catch (error) {
    if (!(error instanceof OriginError)) throw error;
    io.stderr(`azmi emulate: no tokens from ${ORIGIN_NAMES[kind]}: ${printable(error.message)}\n`);
    return EXIT_CODES.configuration;
  }

  let running: RunningEmulator;
  try {
    running = await serve({
      origin,
      sources: [source],
      hostname: listen.hostname,
      port,
      // Once per ID: local code that asks for a user-assigned identity runs as the developer.
      onIdentity: (identity) =>
        io.stderr(
          `azmi emulate: a request named the user-assigned identity ${identity.parameter}=${identity.id}; ` +
            `it gets ${kind}'s token, your own: local code runs as you, not as that identity\n`,
        ),
    });
  } catch (error) {
    io.stderr(
      `azmi emulate: cannot start the relay on ${visible(listen.hostname)}${port ? ` port ${port}` : ""}: ${
        printable((error instanceof Error ? error.message : String(error)).split("\n")[0]!)
      }\n`,
    );
    return error instanceof EmulatorPermissionError ? EXIT_CODES.configuration : EXIT_CODES.failed;
  }
  try {
    if (!listen.loopback) {
      io.stderr(
        `azmi emulate: warning: listening on ${listen.hostname}, not loopback: anyone who can reach this address ` +
          "and holds IDENTITY_HEADER gets your tokens. Stop it when the containers are done.\n",
      );
    }
    if (source === "DefaultToIMDS") {
      io.stderr(
        "azmi emulate: warning: IMDS's protocol has no secret: any process on this machine can take your tokens " +
          "from it while it runs. Prefer the default, App Service's protocol, whose requests need IDENTITY_HEADER.\n",
      );
    }
    io.stdout(`${relayLines(running, source, kind, listen, tenant).map(visible).join("\n")}\n`);
    const why = await stopped(io.until);
    io.stderr(`azmi emulate: ${why === "stopped" ? "stopped" : `${why} received, stopping`}\n`);
  } finally {
    await running.close();
  }
  return EXIT_CODES.ok;
}

/** What `azmi emulate --tokens-from` prints: comments, the export lines, and the container recipes. */
function relayLines(
  running: RunningEmulator,
  source: "AppService" | "DefaultToIMDS",
  kind: OriginKind,
  listen: { hostname: string; loopback: boolean },
  tenant: string | undefined,
): string[] {
  const lines: string[] = [];
  const comment = (text = "") => lines.push(text ? `# ${text}` : "#");
  const vars = running.env[source] ?? {};
  comment(`azmi emulate: real tokens from ${ORIGIN_NAMES[kind]}${tenant ? ` in tenant ${tenant}` : ""},`);
  comment(
    `served over ${source === "AppService" ? "App Service's" : "IMDS's"} managed identity protocol at ${
      running.urls[source]
    }.`,
  );
  comment("Tokens are kept in memory only, per resource, until 5 minutes before they expire; one tool run per");
  comment("resource at a time however many clients ask. No token is ever printed or logged.");
  comment("A request naming a user-assigned identity gets your own token too (said once per ID on stderr).");
  if (source === "AppService") {
    comment("IDENTITY_HEADER is a secret generated at start: requests without it are refused. It guards your");
    comment("tokens while this runs; it is worthless once it stops.");
  }
  lines.push("");
  for (const [name, value] of Object.entries(vars)) lines.push(`export ${name}=${shellQuote(value)}`);
  if (source === "AppService") containerLines(comment, vars, listen.loopback);
  lines.push("");
  comment("Running until Ctrl+C (SIGINT) or SIGTERM.");
  return lines;
}

/** The `docker run` and Compose recipes for App Service's variables. */
function containerLines(
  comment: (text?: string) => void,
  vars: Readonly<Record<string, string>>,
  loopback: boolean,
): void {
  const endpoint = vars.IDENTITY_ENDPOINT!;
  const header = vars.IDENTITY_HEADER!;
  const port = new URL(endpoint).port;
  // In a container, the endpoint's host must be this machine's address on the container's network.
  const inContainer = loopback ? endpoint.replace(/^http:\/\/[^/]+/, `http://HOST_IP:${port}`) : endpoint;
  comment("");
  comment("In a container (every Azure SDK reads IDENTITY_ENDPOINT and IDENTITY_HEADER):");
  if (loopback) {
    comment("a container cannot reach this machine's loopback. On Linux, restart with --listen 172.17.0.1");
    comment("(the docker0 bridge). On Docker Desktop, HOST_IP is the address host.docker.internal has in a");
    comment("container (docker run --rm alpine getent hosts host.docker.internal): an IP, since this module's");
    comment('client takes no host name but localhost. README, "With your own identity", has the recipes.');
  }
  comment(`docker run -e IDENTITY_ENDPOINT=${shellQuote(inContainer)} -e IDENTITY_HEADER=${shellQuote(header)} IMAGE`);
  comment("Compose, under the service's environment:");
  comment(`  IDENTITY_ENDPOINT: ${shellQuote(inContainer)}`);
  comment(`  IDENTITY_HEADER: ${shellQuote(header)}`);
}
