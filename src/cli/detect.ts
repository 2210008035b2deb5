/**
 * The detection report of `azmi detect` and of `azmi doctor`'s first step: the source the
 * library detects, the variables that led to it (secrets redacted), the token endpoint the client
 * will call, and the managed identity variables that are set but unused. Nothing here touches
 * the network, nor reads workload identity's federated token file (its path is shown, its
 * contents, a secret, never are).
 * @module
 */

import { detectSource } from "../../mod.ts";
import type { Source } from "../../mod.ts";
import type { CliIo } from "./common.ts";
import { envReader } from "../env.ts";
import { ARC_DEFAULT_ENDPOINT } from "../sources/azure_arc.ts";
import { IMDS_HOST } from "../sources/imds.ts";
import { withoutUserinfo } from "../sources/source.ts";
import { ENTRA_AUTHORITY_HOST } from "../sources/workload_identity.ts";
import { visible } from "../redact.ts";
import { noPositionals, parseArgs } from "./args.ts";
import { EXIT_CODES, jsonText } from "./common.ts";

/** The variables whose values are secrets: never printed. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(["IDENTITY_HEADER", "MSI_SECRET"]);
const REDACTED = "<set, redacted>";
/** The variables that hold URLs: shown without their `user:password@` part. */
const URL_VARIABLES: ReadonlySet<string> = new Set([
  "IDENTITY_ENDPOINT",
  "MSI_ENDPOINT",
  "AZURE_POD_IDENTITY_AUTHORITY_HOST",
  "AZURE_AUTHORITY_HOST",
  "IMDS_ENDPOINT",
]);
/** IMDS's token path below its host (src/sources/imds.ts builds the same path, but does not export it). */
const IMDS_PATH = "/metadata/identity/oauth2/token";

/** Which variables each source is detected by (docs/detection.md), plus the ones it reads. */
const SOURCE_VARIABLES: Readonly<Record<Source, readonly string[]>> = {
  WorkloadIdentity: ["AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_AUTHORITY_HOST"],
  ServiceFabric: ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT"],
  AppService: ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"],
  AzureML: ["MSI_ENDPOINT", "MSI_SECRET", "DEFAULT_IDENTITY_CLIENT_ID"],
  CloudShell: ["MSI_ENDPOINT"],
  AzureArc: ["IDENTITY_ENDPOINT", "IMDS_ENDPOINT"],
  DefaultToIMDS: ["AZURE_POD_IDENTITY_AUTHORITY_HOST"],
};
const ALL_VARIABLES: readonly string[] = [...new Set(Object.values(SOURCE_VARIABLES).flat())];

/** What was detected, and why. */
export interface Detection {
  readonly source: Source;
  /** Variable name to the value to show (secrets redacted, URLs without `user:password@`), in detection order. */
  readonly variables: Readonly<Record<string, string>>;
  /** The token endpoint the client will call, without `user:password@`. */
  readonly endpoint: string;
  /** Why, when no variable explains it. */
  readonly note?: string;
  /** Managed identity variables that are set but not used by the detected source. */
  readonly ignored: readonly string[];
}

/**
 * Detects the source of `io.env` (or the process environment); `clientId`, a `--client-id`
 * flag, serves workload identity as `AZURE_CLIENT_ID` does.
 * @throws {ManagedIdentityError} `invalid_configuration` when the runtime refuses to read the environment,
 *   or when `AZURE_FEDERATED_TOKEN_FILE` is set without `AZURE_TENANT_ID` or a client ID.
 */
export function detect(io: CliIo, clientId?: string): Detection {
  const read = envReader(io.env);
  const source = detectSource(io.env, { clientId });
  const variables: Record<string, string> = {};
  for (const name of SOURCE_VARIABLES[source]) {
    const value = read(name);
    if (value === undefined) continue;
    variables[name] = SECRET_VARIABLES.has(name) ? REDACTED : URL_VARIABLES.has(name) ? withoutUserinfo(value) : value;
  }
  let endpoint: string;
  let note: string | undefined;
  switch (source) {
    case "WorkloadIdentity": {
      // Shown as the client builds it, unchecked: the token request (doctor's step 3) says what is wrong.
      const host = (read("AZURE_AUTHORITY_HOST") ?? ENTRA_AUTHORITY_HOST).replace(/\/+$/, "");
      endpoint = `${host}/${read("AZURE_TENANT_ID")}/oauth2/v2.0/token`;
      break;
    }
    case "ServiceFabric":
    case "AppService":
      endpoint = read("IDENTITY_ENDPOINT")!;
      break;
    case "AzureML":
    case "CloudShell":
      endpoint = read("MSI_ENDPOINT")!;
      break;
    case "AzureArc":
      if (read("IDENTITY_ENDPOINT") !== undefined && read("IMDS_ENDPOINT") !== undefined) {
        endpoint = read("IDENTITY_ENDPOINT")!;
      } else {
        for (const name of Object.keys(variables)) delete variables[name];
        endpoint = ARC_DEFAULT_ENDPOINT;
        note = "the Azure Arc agent is installed (its himds binary exists); its endpoint is assumed";
      }
      break;
    case "DefaultToIMDS": {
      const host = read("AZURE_POD_IDENTITY_AUTHORITY_HOST");
      endpoint = `${(host ?? IMDS_HOST).replace(/\/+$/, "")}${IMDS_PATH}`;
      note = host === undefined
        ? `no managed identity variable is set: IMDS is assumed at ${IMDS_HOST}`
        : "no managed identity variable is set: IMDS is assumed, at AZURE_POD_IDENTITY_AUTHORITY_HOST";
      break;
    }
  }
  const used = new Set(Object.keys(variables));
  const ignored = ALL_VARIABLES.filter((name) => !used.has(name) && read(name) !== undefined);
  return { source, variables, endpoint: withoutUserinfo(endpoint), ignored, ...(note ? { note } : {}) };
}

function detectionLine(detection: Detection): string {
  const parts = Object.entries(detection.variables).map(([name, value]) => `${name}=${value}`);
  if (detection.note) parts.unshift(detection.note);
  return `${detection.source} (${parts.join(", ")})`;
}

/** `azmi detect [--json]`: the detection as one line, or as JSON; either escaped (see `visible()`, `jsonText()`). */
export function detectCommand(args: readonly string[], io: CliIo): number {
  const parsed = parseArgs("detect", args, { json: null });
  noPositionals("detect", parsed);
  const detection = detect(io);
  if (parsed.switches.has("json")) {
    const { source, variables, endpoint, note } = detection;
    io.stdout(`${jsonText({ source, variables, endpoint, ...(note ? { note } : {}) })}\n`);
  } else {
    io.stdout(`${visible(detectionLine(detection))}\n`);
  }
  return EXIT_CODES.ok;
}
