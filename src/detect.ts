/**
 * Source detection: an ordered table of `{ source, detect }`, first match wins, pure over an
 * environment snapshot except for the Azure Arc agent's binary, checked through an injectable
 * file check. Detection never touches the network.
 * @module
 */

import { type EnvReader, envReader } from "./env.ts";
import { ManagedIdentityError } from "./errors.ts";
import { currentPlatform, fileExists } from "./runtime.ts";
import type { EnvRecord, Source } from "./types.ts";

/**
 * What {@linkcode detectSource} may be told instead of asking the machine.
 *
 * @example Describe a machine instead of looking at this one
 * ```ts
 * import { detectSource } from "@azmi/managed-identity";
 *
 * // A Linux server with the Azure Arc agent installed and no variables set.
 * const arc = detectSource({}, { platform: "linux", fileExists: (path) => path === "/opt/azcmagent/bin/himds" });
 * console.log(arc); // "AzureArc"
 *
 * // A federated token file whose client ID comes from code rather than AZURE_CLIENT_ID.
 * const env = {
 *   AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
 *   AZURE_TENANT_ID: "contoso.com",
 * };
 * console.log(detectSource(env, { clientId: "00000000-0000-0000-0000-000000000001" })); // "WorkloadIdentity"
 * ```
 */
export interface DetectOptions {
  /** The platform in Node's spelling (`linux`, `win32`, ...). Defaults to the current one. */
  readonly platform?: string;
  /** Whether a file exists. Defaults to a `stat` of the real file system. */
  readonly fileExists?: (path: string) => boolean;
  /** The caller's user-assigned client ID, which serves workload identity as `AZURE_CLIENT_ID` does. */
  readonly clientId?: string | undefined;
}

/** The Arc agent's binary on Linux. */
export const ARC_LINUX_BINARY = "/opt/azcmagent/bin/himds";

/** The Arc agent binary's possible paths on this platform. */
export function arcBinaryPaths(env: EnvReader, platform: string): string[] {
  if (platform === "linux") return [ARC_LINUX_BINARY];
  if (platform !== "win32") return [];
  return ["ProgramFiles", "ProgramData"]
    .map((name) => env(name))
    .filter((dir): dir is string => dir !== undefined)
    .map((dir) => `${dir.replace(/[\\/]+$/, "")}\\AzureConnectedMachineAgent\\himds.exe`);
}

/** The detect options with the machine's defaults filled in. */
type Resolved = Required<Omit<DetectOptions, "clientId">> & Pick<DetectOptions, "clientId">;

interface Rule {
  readonly source: Source;
  readonly detect: (env: EnvReader, options: Resolved) => boolean;
}

const all = (env: EnvReader, ...names: string[]) => names.every((name) => env(name) !== undefined);

/**
 * Workload identity (AKS, or any federated token file), first: an AKS pod can often reach IMDS
 * too, which would answer with the node's identity, the wrong one. `AZURE_FEDERATED_TOKEN_FILE`
 * says workload identity is meant, so a missing tenant or client ID is an error that names it,
 * not a silent fall-through to IMDS.
 */
function workloadIdentity(env: EnvReader, options: Resolved): boolean {
  if (env("AZURE_FEDERATED_TOKEN_FILE") === undefined) return false;
  const missing = [
    env("AZURE_TENANT_ID") === undefined ? "AZURE_TENANT_ID" : undefined,
    options.clientId === undefined && env("AZURE_CLIENT_ID") === undefined
      ? "AZURE_CLIENT_ID (or the clientId option)"
      : undefined,
  ].filter(Boolean);
  if (missing.length > 0) {
    throw new ManagedIdentityError(
      "invalid_configuration",
      `AZURE_FEDERATED_TOKEN_FILE is set, so workload identity is meant, but ${missing.join(" and ")} ${
        missing.length > 1 ? "are" : "is"
      } not: on AKS, check the pod's label azure.workload.identity/use: "true" and its service account's annotation azure.workload.identity/client-id`,
      { source: "WorkloadIdentity" },
    );
  }
  return true;
}

/** The rules of docs/detection.md, in order. */
const RULES: readonly Rule[] = [
  { source: "WorkloadIdentity", detect: workloadIdentity },
  {
    source: "ServiceFabric",
    detect: (env) => all(env, "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT"),
  },
  { source: "AppService", detect: (env) => all(env, "IDENTITY_ENDPOINT", "IDENTITY_HEADER") },
  { source: "AzureML", detect: (env) => all(env, "MSI_ENDPOINT", "MSI_SECRET") },
  { source: "CloudShell", detect: (env) => all(env, "MSI_ENDPOINT") },
  {
    source: "AzureArc",
    detect: (env, options) =>
      all(env, "IDENTITY_ENDPOINT", "IMDS_ENDPOINT") ||
      arcBinaryPaths(env, options.platform).some((path) => options.fileExists(path)),
  },
];

/**
 * Tells which managed identity source serves this process, from its environment variables
 * (docs/detection.md): workload identity (AKS), Service Fabric, App Service (also Functions
 * and Container Apps), Azure ML, Cloud Shell, Azure Arc, and otherwise IMDS, which is assumed
 * without a probe.
 *
 * On Deno, reading the process environment needs `--allow-env` (docs/permissions.md lists them),
 * and the Arc agent check needs `--allow-read=/opt/azcmagent/bin/himds`; without the latter
 * the agent counts as absent.
 *
 * @param env An environment snapshot to use instead of the process environment.
 * @param options A platform and file check to use instead of the machine's.
 * @returns The detected source; `"DefaultToIMDS"` when nothing else matches.
 * @throws {ManagedIdentityError} `invalid_configuration` when the runtime refuses to read the environment,
 *   or when `AZURE_FEDERATED_TOKEN_FILE` is set without `AZURE_TENANT_ID` or a client ID.
 *
 * @example Detect from an environment record
 * ```ts
 * import { detectSource } from "@azmi/managed-identity";
 *
 * const source = detectSource({ IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" });
 * console.log(source); // "AppService"
 * ```
 */
export function detectSource(env?: EnvRecord, options?: DetectOptions): Source {
  if (options === undefined) options = {};
  const read = envReader(env);
  const resolved: Resolved = {
    platform: options.platform ?? currentPlatform(),
    fileExists: options.fileExists ?? fileExists,
    clientId: options.clientId,
  };
  return RULES.find((rule) => rule.detect(read, resolved))?.source ?? "DefaultToIMDS";
}
