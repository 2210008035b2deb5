/**
 * Workload identity: AKS pods (and anything else with a federated token file). Kubernetes
 * projects a service account token into the pod and the webhook sets
 * `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and `AZURE_AUTHORITY_HOST`;
 * the token is exchanged at Microsoft Entra ID for an access token (client credentials with a
 * client assertion: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential,
 * https://azure.github.io/azure-workload-identity/docs/). `@azure/identity`'s
 * `ManagedIdentityCredential` does this exchange; MSAL's managed identity clients do not.
 * @module
 */

import { ManagedIdentityError } from "../errors.ts";
import type { InternalOptions } from "../internal.ts";
import type { TokenFileSystem } from "../file_read.ts";
import type { EnvReader } from "../env.ts";
import type { SourceDefinition } from "./source.ts";

export type { TokenFileSystem };

/** Microsoft Entra ID's public cloud, when `AZURE_AUTHORITY_HOST` is unset. */
export const ENTRA_AUTHORITY_HOST = "https://login.microsoftonline.com";

/** The federated token file is read again once its contents are this old (the kubelet rotates it). */
export const ASSERTION_MAX_AGE_MS = 5 * 60 * 1000;

/** What workload identity keeps from construction: the file, and the assertion last read from it. */
export interface WorkloadConfig {
  readonly file: string;
  /** Overrides from the internal seam (tests). */
  readonly fileSystem: TokenFileSystem | undefined;
  /** The assertion and when it was read, shared by the client's requests. */
  assertion?: { readonly value: string; readonly readAt: number };
}

// A tenant is a GUID or a domain name: nothing that could change the token URL's path.
const TENANT = /^[a-z0-9](?:[a-z0-9.-]{0,254}[a-z0-9])?$/i;

function tenantOf(env: EnvReader): string {
  const tenant = env("AZURE_TENANT_ID") ?? "";
  if (!TENANT.test(tenant) || tenant.includes("..")) {
    throw new ManagedIdentityError(
      "invalid_configuration",
      `AZURE_TENANT_ID must be a tenant ID (a GUID) or a domain name (letters, digits, "." and "-"): got "${tenant}"`,
      { source: "WorkloadIdentity" },
    );
  }
  return tenant;
}

/**
 * `POST {AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token` with the form `client_id`,
 * `scope=<resource>/.default`, `grant_type=client_credentials`, the federated token as
 * `client_assertion` (read from the file, again once 5 minutes old), and `claims` when given.
 * The assertion is a secret: it is redacted from anything the endpoint says back.
 */
export const workloadIdentity: SourceDefinition = {
  name: "WorkloadIdentity",
  retry: "entra",
  endpoint: {
    name: "AZURE_AUTHORITY_HOST",
    fallback: ENTRA_AUTHORITY_HOST,
    rule: "authority",
    // The AKS webhook sets the host with a trailing slash; sovereign clouds use other hosts.
    resolve: (host, env) =>
      new URL(`${host.origin}${host.pathname.replace(/\/+$/, "")}/${tenantOf(env)}/oauth2/v2.0/token`),
  },
  identities: {
    parameters: { clientId: "client_id" },
    refusal: "a workload identity is chosen by client ID only (AZURE_CLIENT_ID or the clientId option)",
  },
  // Without the clientId option, AZURE_CLIENT_ID names the identity: read once, like an option.
  identityOf(identity, env) {
    if (identity.kind !== "system") return identity;
    const value = env("AZURE_CLIENT_ID")?.trim();
    if (!value) {
      throw new ManagedIdentityError(
        "invalid_configuration",
        "AZURE_CLIENT_ID must name the workload identity's client ID: it is blank",
        { source: "WorkloadIdentity" },
      );
    }
    return { kind: "clientId", value };
  },
  configure(env, internal: InternalOptions): WorkloadConfig {
    return { file: env("AZURE_FEDERATED_TOKEN_FILE") ?? "", fileSystem: internal.tokenFileSystem };
  },
  async buildRequest({ resource, identity, endpoint, config, claims, now, signal, timeoutMs }) {
    const state = config as WorkloadConfig;
    // Read again once 5 minutes old, and when the clock has stepped back behind the read (NTP, a
    // resumed VM): the kubelet goes on rotating the file whatever this process's clock says.
    let read = state.assertion;
    if (!read || now < read.readAt || now - read.readAt >= ASSERTION_MAX_AGE_MS) {
      // The file rules load on this path only.
      const { readTokenFile } = await import("../token_file.ts");
      read = state.assertion = {
        value: await readTokenFile(state.file, state.fileSystem, { signal, timeoutMs }),
        readAt: now,
      };
    }
    const assertion = read.value;
    return {
      method: "POST",
      url: endpoint,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: identity.kind === "clientId" ? identity.value : "",
        scope: `${resource}/.default`,
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: assertion,
        ...(claims ? { claims } : {}),
      }).toString(),
      secrets: [assertion],
    };
  },
};
