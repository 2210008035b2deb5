/**
 * `azmi doctor [resource]`: explains in three steps whether this process can get a token:
 * the detection report, a connection check of the endpoint's origin (no secret header sent),
 * and one real token request, shown by its expiry and claims (never the token) or by its error
 * and the advice for that error's code. The three steps together keep to `--timeout` (default
 * 5000 ms): the connection check takes at most half of it, the token request what is left.
 * @module
 */

import { ManagedIdentityError } from "../../mod.ts";
import type { FetchLike, IdentityOptions, Source } from "../../mod.ts";
import { ARC_LINUX_TOKEN_DIRECTORY } from "../arc_key.ts";
import type { CliIo } from "./common.ts";
import { readClaims } from "../emulator/mod.ts";
import { endpointText, visible } from "../redact.ts";
import { networkReason, refusedFlag } from "../failure.ts";
import { SOURCES } from "../sources/index.ts";
import { defaultFetch } from "../transport.ts";
import { IDENTITY_FLAGS, identityOf, onePositional, parseArgs, TIMEOUT_FLAG, timeoutOf } from "./args.ts";
import { checkedResource } from "./args.ts";
import { deadlineError, EXIT_CODES, exitCodeOf, printable, startDeadline } from "./common.ts";
import { detect, type Detection } from "./detect.ts";
import { createClient } from "./token.ts";

const DOCTOR_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_MS = 2000;
const DEFAULT_RESOURCE = "https://management.azure.com";

const SOURCE_DESCRIPTIONS: Readonly<Record<Source, string>> = {
  WorkloadIdentity: "AKS workload identity: a federated token exchanged at Microsoft Entra ID",
  ServiceFabric: "Service Fabric",
  AppService: "App Service, Azure Functions or Container Apps",
  AzureML: "Azure Machine Learning",
  CloudShell: "Azure Cloud Shell",
  AzureArc: "an Azure Arc-enabled server",
  DefaultToIMDS: "the Instance Metadata Service of an Azure VM or scale set",
};

const SUMMARIES: Readonly<Record<number, string>> = {
  [EXIT_CODES.ok]: "a managed identity token can be acquired here",
  [EXIT_CODES.failed]: "the token request failed",
  [EXIT_CODES.unavailable]: "no managed identity is reachable here",
  [EXIT_CODES.timeout]: "the endpoint did not answer in time",
  [EXIT_CODES.configuration]: "the configuration is unusable",
};

/** `azmi doctor [resource] [identity flag] [--timeout MS]`: `--timeout` is the deadline of all three steps. */
export async function doctorCommand(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs("doctor", args, { ...IDENTITY_FLAGS, timeout: TIMEOUT_FLAG });
  const resource = checkedResource("doctor", onePositional("doctor", parsed, "resource", false) ?? DEFAULT_RESOURCE);
  const identity = identityOf("doctor", parsed);
  const timeoutMs = timeoutOf("doctor", parsed) ?? DOCTOR_TIMEOUT_MS;
  const deadline = startDeadline(timeoutMs);
  // Every line is escaped: it may quote the environment (variables, an error about them), the
  // endpoint (the token type, claims, an error's excerpt) or the command line (resource, IDs).
  const out = (line = "") => io.stdout(`${visible(line)}\n`);
  const finish = (code: number, summary: string) => {
    out();
    out(`Result: ${summary} (exit code ${code})`);
    return code;
  };
  // Whether the token endpoint answered anything (for IMDS, whose silence is no managed identity).
  let answered = () => true;
  const failure = (error: unknown, source: Source | undefined) => {
    if (source) error = deadlineError(error, deadline, source, answered()) ?? error;
    if (!(error instanceof ManagedIdentityError)) throw error;
    out(`   Failed (${error.code}): ${printable(error.message)}`);
    out(`   What to do: ${advice(error, source, identity)}`);
    return exitCodeOf(error);
  };

  out(`azmi doctor: can this process get a managed identity token for ${resource}?`);
  out();
  out("1. Detection");
  let detection: Detection;
  try {
    detection = detect(io, identity.clientId);
  } catch (error) {
    // Workload identity's variables set only in part is a configuration to fix, not a permission.
    const source = error instanceof ManagedIdentityError ? error.source : undefined;
    const code = failure(error, source);
    return finish(code, source ? SUMMARIES[code] ?? "failed" : "the environment cannot be read");
  }
  const { source } = detection;
  out(`   Source: ${source} (${SOURCE_DESCRIPTIONS[source]})`);
  if (detection.note) out(`   Why: ${detection.note}`);
  for (const [name, value] of Object.entries(detection.variables)) out(`   ${name}=${value}`);
  if (detection.ignored.length > 0) {
    out(`   Also set, not used by ${source}: ${detection.ignored.join(", ")}`);
  }
  out(`   Token endpoint: ${detection.endpoint}`);

  out();
  const host = URL.parse(detection.endpoint)?.host ?? detection.endpoint;
  out(`2. Connection to ${host} (a plain GET of the origin, no secret header sent)`);
  // At most half of the deadline, so that a silent endpoint leaves the token request its turn.
  const probeTimeout = Math.min(PROBE_TIMEOUT_MS, Math.max(1, Math.floor(timeoutMs / 2)), deadline.left());
  out(`   ${probeLine(await probe(detection.endpoint, source, io, probeTimeout), source)}`);

  out();
  out(
    `3. Token for ${resource}, ${
      describeIdentity(identity, detection)
    } (one attempt, within the ${timeoutMs} ms deadline)`,
  );
  let code: number;
  try {
    // The attempt's own timeout is the whole deadline: the deadline's signal, started first,
    // ends it at the deadline.
    const made = createClient("doctor", io, identity, timeoutMs, false);
    const { client } = made;
    answered = made.answered;
    const started = performance.now();
    const result = await client.acquireToken(resource, { signal: deadline.signal });
    const ms = Math.round(performance.now() - started);
    out(`   Acquired in ${ms} ms from ${result.source}: a ${result.tokenType} token for ${result.resource}`);
    out(
      `   Expires ${result.expiresOn.toISOString()} (${inMinutes(result.expiresOn)})` +
        (result.refreshOn ? `, refreshed from ${result.refreshOn.toISOString()}` : ""),
    );
    const claims = tokenClaims(result.accessToken);
    out(claims ? `   Claims: ${claims}` : "   The token is not a JWT: no claims to show");
    code = EXIT_CODES.ok;
  } catch (error) {
    code = failure(error, source);
  }
  return finish(code, SUMMARIES[code] ?? "failed");
}

function describeIdentity(identity: IdentityOptions, detection: Detection): string {
  if (detection.source === "WorkloadIdentity") {
    // A workload identity is always a client ID: the flag's, or AZURE_CLIENT_ID's.
    return identity.clientId
      ? `the workload identity with client ID ${identity.clientId}`
      : `the workload identity with client ID ${detection.variables.AZURE_CLIENT_ID} (AZURE_CLIENT_ID)`;
  }
  if (identity.clientId) return `the user-assigned identity with client ID ${identity.clientId}`;
  if (identity.objectId) return `the user-assigned identity with object ID ${identity.objectId}`;
  if (identity.resourceId) return `the user-assigned identity ${identity.resourceId}`;
  return "the system-assigned identity";
}

interface Probe {
  readonly outcome: "answered" | "tls" | "refused" | "denied" | "silent" | "invalid";
  readonly ms: number;
  readonly detail: string;
}

/**
 * Whether the endpoint's host and port answer at all: a GET of its origin, no headers of ours,
 * so no secret leaves the process, sent the way the client sends its requests (a local endpoint
 * never through a proxy). Any HTTP answer counts as reachable.
 */
async function probe(endpoint: string, source: Source, io: CliIo, timeoutMs: number): Promise<Probe> {
  const url = URL.parse(endpoint);
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    return { outcome: "invalid", ms: 0, detail: `the endpoint is not an http: or https: URL: "${endpoint}"` };
  }
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const fetcher: FetchLike = io.fetch ?? defaultFetch(source, SOURCES[source].endpoint.rule);
  try {
    const answer = Promise.resolve().then(() =>
      fetcher(new Request(`${url.origin}/`, { method: "GET", redirect: "manual", signal: controller.signal }))
    );
    const expired = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const response = await Promise.race([answer, expired]);
    if (response === "timeout") {
      controller.abort();
      answer.then((late) => late.body?.cancel().catch(() => {}), () => {});
      return { outcome: "silent", ms: elapsed(), detail: `no answer within ${timeoutMs} ms` };
    }
    const ms = elapsed();
    await response.body?.cancel().catch(() => {});
    const status = response.type === "opaqueredirect" ? "a redirect" : `HTTP ${response.status}`;
    return { outcome: "answered", ms, detail: status };
  } catch (error) {
    // The runtime's refusal (Deno without --allow-net) says which flag is missing, not "unreachable".
    const flag = refusedFlag(error, "net", url.port ? url.host : url.hostname);
    if (flag) return { outcome: "denied", ms: elapsed(), detail: `the runtime refused to connect: grant ${flag}` };
    // A runtime's message may quote what the endpoint sent: shown only through the one gate.
    const reason = endpointText(networkReason(error), [], 200);
    const tls = url.protocol === "https:" && /cert|tls|ssl|handshake|self.signed|issuer/i.test(reason);
    return { outcome: tls ? "tls" : "refused", ms: elapsed(), detail: reason };
  } finally {
    clearTimeout(timer);
  }
}

function probeLine(result: Probe, source: Source): string {
  switch (result.outcome) {
    case "answered":
      return `Reachable: it answered (${result.detail}) in ${result.ms} ms.`;
    case "tls":
      return `Reachable: it accepted the connection in ${result.ms} ms, but this runtime does not trust its TLS ` +
        `certificate (${result.detail}).` +
        (source === "ServiceFabric"
          ? " That is expected for Service Fabric: the client pins the certificate by IDENTITY_SERVER_THUMBPRINT."
          : "");
    case "refused":
      return `Unreachable after ${result.ms} ms: ${result.detail}. Nothing accepts connections there.`;
    case "denied":
      return `Not tried: ${result.detail}.`;
    case "silent":
      return `No answer: ${result.detail}. A firewall or an address that swallows packets is in the way` +
        (source === "DefaultToIMDS" ? " (off Azure, 169.254.169.254 usually does)." : ".");
    case "invalid":
      return `Not checked: ${result.detail}.`;
  }
}

/** The claims of a JWT-shaped token that are worth showing, without verifying anything. */
function tokenClaims(token: string): string | undefined {
  if (token.split(".").length !== 3) return undefined;
  const claims: unknown = readClaims(token);
  if (typeof claims !== "object" || claims === null) return undefined;
  const shown = ["aud", "appid", "oid"].flatMap((name) => {
    const value = (claims as Record<string, unknown>)[name];
    return typeof value === "string" || typeof value === "number" ? [`${name}=${value}`] : [];
  });
  return shown.length > 0 ? shown.join(", ") : undefined;
}

function inMinutes(date: Date): string {
  const minutes = Math.round((date.getTime() - Date.now()) / 60_000);
  return minutes >= 0 ? `in ${minutes} min` : `${-minutes} min ago`;
}

/** On AKS, what makes the webhook set workload identity up. */
const AKS_SETUP =
  'On AKS, the pod needs the label azure.workload.identity/use: "true" and a service account annotated ' +
  "with azure.workload.identity/client-id (the identity's client ID); the webhook then sets AZURE_CLIENT_ID, " +
  "AZURE_TENANT_ID, AZURE_AUTHORITY_HOST and AZURE_FEDERATED_TOKEN_FILE and mounts the token file (recreate the pod " +
  "after changing either).";

/**
 * What to do about a workload identity failure, from Microsoft Entra ID's AADSTS code
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes), or `undefined`
 * for the general advice.
 */
function workloadAdvice(error: ManagedIdentityError): string | undefined {
  switch (error.code) {
    case "invalid_configuration":
      return `${AKS_SETUP} On Deno, grant --allow-env and --allow-read for the token file.`;
    case "unsupported_identity":
      return "A workload identity is chosen by client ID only: pass --client-id, or drop the ID flag to use " +
        "AZURE_CLIENT_ID.";
    case "unavailable":
      return "Microsoft Entra ID does not accept connections at AZURE_AUTHORITY_HOST (login.microsoftonline.com " +
        "when unset): check the pod's egress (network policy, firewall, proxy) to that host on port 443.";
    case "request_failed":
      break;
    default:
      return undefined;
  }
  const aadsts = /^AADSTS(\d+)/.exec(error.errorDescription ?? "")?.[1];
  switch (aadsts) {
    case "70021":
    case "700211":
    case "700212":
    case "700213":
    case "7002137":
    case "7002138":
      return "No federated identity credential matches the service account token. On the identity (client ID " +
        "AZURE_CLIENT_ID), the federated identity credential's issuer must be the cluster's OIDC issuer URL (az aks " +
        "show --query oidcIssuerProfile.issuerUrl), its subject system:serviceaccount:<namespace>:<service account " +
        "name> of this pod's service account, exactly (case matters), and its audience api://AzureADTokenExchange. " +
        "List them with az identity federated-credential list; a new one can take a minute to apply.";
    case "700016":
      return "Microsoft Entra ID has no application or managed identity with this client ID in the tenant: check the " +
        "client ID (AZURE_CLIENT_ID, from the service account's annotation azure.workload.identity/client-id, or " +
        "--client-id) and the tenant (AZURE_TENANT_ID, or the annotation azure.workload.identity/tenant-id).";
    case "90002":
      return "The tenant is not known at this authority host: check AZURE_TENANT_ID, and that AZURE_AUTHORITY_HOST " +
        "names the cloud the tenant is in.";
    case "700024":
      return "The service account token in the file has expired: the kubelet is not rotating it. Recreate the pod.";
    case "50027":
    case "700027":
      return "The token file does not hold a valid service account token of this cluster: check that " +
        "AZURE_FEDERATED_TOKEN_FILE names the projected token the webhook mounted, not another file.";
  }
  const status = error.status;
  if (status === 400 || status === 401) {
    return "Microsoft Entra ID refused the token exchange: its AADSTS code above says why (look it up at " +
      "https://login.microsoftonline.com/error).";
  }
  return undefined;
}

/** What to do about a failure, in plain words. */
function advice(error: ManagedIdentityError, source: Source | undefined, identity: IdentityOptions): string {
  const userAssigned = Object.keys(identity).length > 0;
  const code = error.code;
  if (source === "WorkloadIdentity" || error.source === "WorkloadIdentity") {
    const said = workloadAdvice(error);
    if (said) return said;
  }
  switch (code) {
    case "unavailable":
      return source === "DefaultToIMDS"
        ? "Nothing answers at the Instance Metadata Service. Off Azure this is expected: this machine has no " +
          'managed identity, so use another credential (or try the client with "azmi emulate"). On an Azure VM, ' +
          "check that no proxy or firewall stands in the way of 169.254.169.254 (set NO_PROXY=169.254.169.254), " +
          "and in a container that it can reach the host's network."
        : "The endpoint in the environment does not accept connections. The variables may be stale (copied from " +
          "another process or an earlier start), or the platform's identity service is not running: restart the " +
          "app and check that managed identity is turned on for this resource (its Identity page in the portal).";
    case "timeout":
      return source === "DefaultToIMDS"
        ? "IMDS did not answer in time. Off Azure, 169.254.169.254 often swallows requests without an answer: " +
          "that means no managed identity here. On an Azure VM, try a larger --timeout."
        : "The endpoint accepted the request but did not answer in time. Try a larger --timeout; if it persists, " +
          "restart the app or the resource.";
    case "request_failed": {
      const status = error.status;
      if (status === undefined) {
        return "The endpoint broke off its answer or asked to wait (429). Try again in a moment.";
      }
      if (status >= 300 && status < 400) {
        return "The endpoint answered with a redirect, which is refused so that no secret header follows it " +
          "elsewhere: a proxy or a wrong endpoint URL is in the way.";
      }
      if (status === 400 || status === 404) {
        return userAssigned
          ? "The endpoint does not know this identity. Check the ID, and that this user-assigned identity is " +
            "assigned to this resource (its Identity page, User assigned tab); a newly assigned identity can take " +
            "a few minutes to appear."
          : "The endpoint refused the request: usually the system-assigned identity is not turned on for this " +
            "resource (its Identity page, System assigned, Status On), or only user-assigned identities are " +
            "assigned: then pass --client-id, --object-id or --resource-id.";
      }
      if (status === 401 || status === 403) {
        return source === "DefaultToIMDS"
          ? "IMDS refused the request: a proxy is probably in the way (set NO_PROXY=169.254.169.254)."
          : "The endpoint refused the secret: IDENTITY_HEADER or MSI_SECRET is probably stale (it changes when " +
            "the app restarts), so take it from the current process's environment.";
      }
      if (status === 429) {
        return "The endpoint is throttling (IMDS allows about 5 requests per second per VM). Wait and try again; " +
          "in an app, keep one client so that its cache serves repeated calls.";
      }
      if (status >= 500) {
        return "The endpoint failed on its side. Try again later; if it persists, restart the resource.";
      }
      return "The endpoint refused the request: see its answer above.";
    }
    case "invalid_response":
      return "The endpoint answered success, but not with a token: something else listens at that address, or a " +
        "proxy answers in its place. Check the endpoint variable and the proxy settings.";
    case "unsupported_identity":
      return "This source cannot serve that kind of user-assigned identity (the message says why): drop the ID " +
        "flag, or use the kind of ID the source accepts.";
    case "invalid_configuration":
      return "Fix the variable named in the message (the platform sets these: restarting the app usually restores " +
        "them). On Deno, grant --allow-env (and --allow-read on Azure Arc).";
    case "certificate_mismatch":
      return "The Service Fabric endpoint showed another certificate than IDENTITY_SERVER_THUMBPRINT pins, so the " +
        "secret was not sent. After a certificate rotation the variable is stale: restart the service so that the " +
        "cluster sets it again.";
    case "identity_mismatch":
      return "Azure Arc answered with another identity than the one asked for (probably the system-assigned one): " +
        "check that the user-assigned identity is assigned to this server.";
    case "arc_key_permission_denied":
      return "On Linux, add the user to the himds group (sudo usermod -aG himds $USER) and log in again; on " +
        "Windows, run as an administrator or a member of the Hybrid agent extension applications group.";
    case "arc_key_invalid_directory":
      return `The challenge named a key file outside the agent's directory ${ARC_LINUX_TOKEN_DIRECTORY}, which is refused ` +
        "so that no other file is ever sent: the endpoint is not the real Azure Arc agent (an emulator started with " +
        '--arc-key-dir gets this answer by design), or the agent is misconfigured (check it with "azcmagent show").';
    case "aborted":
      return "The request was cancelled before it finished.";
    default:
      return code.startsWith("arc_")
        ? 'The Azure Arc agent\'s challenge could not be used: check the agent with "azcmagent show"; its key ' +
          `files must be in ${ARC_LINUX_TOKEN_DIRECTORY} (on Windows, %ProgramData%\\AzureConnectedMachineAgent\\Tokens).`
        : "See the message above.";
  }
}
