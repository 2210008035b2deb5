/**
 * Service Fabric: the cluster's HTTPS endpoint, trusted by its certificate's SHA-1 thumbprint
 * (docs/sources.md, Service Fabric; the pinning in docs/security.md).
 * @module
 */

import { ManagedIdentityError } from "../errors.ts";
import type { FetchLike } from "../types.ts";
import { identityQuery, readEndpoint, type SourceDefinition, withQuery } from "./source.ts";

/** What Service Fabric captures at construction. */
export interface ServiceFabricConfig {
  readonly endpoint: URL;
  readonly thumbprint: string;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * `GET $IDENTITY_ENDPOINT?api-version=2020-05-01&resource=...` with `Secret` and
 * `Accept: application/json`, over TLS pinned to `IDENTITY_SERVER_THUMBPRINT`. A user-assigned
 * identity is named by its object ID, as `principalId`, the only selector the cluster's token
 * service reads (MSAL .NET PR 6069). With claims and a cached token it adds
 * `token_sha256_to_refresh`; client capabilities go as `xms_cc`.
 */
export const serviceFabric: SourceDefinition = {
  name: "ServiceFabric",
  retry: "servicefabric",
  // Any host: the pinned certificate, not the address, is the trust (a cluster node's IP).
  endpoint: { name: "IDENTITY_ENDPOINT", rule: "pinned" },
  identities: {
    parameters: { objectId: "principalId" },
    refusal: "Service Fabric selects a user-assigned identity by object ID only (sent as principalId): " +
      "use objectId, see https://aka.ms/servicefabricmi",
  },
  configure(env): ServiceFabricConfig {
    const endpoint = readEndpoint(serviceFabric, env);
    if (endpoint.protocol !== "https:" || endpoint.hostname === "") {
      throw new ManagedIdentityError(
        "invalid_configuration",
        `IDENTITY_ENDPOINT must be an https: URL with a host for Service Fabric: got "${endpoint.protocol}//${endpoint.host}"`,
        { source: "ServiceFabric" },
      );
    }
    const raw = env("IDENTITY_SERVER_THUMBPRINT") ?? "";
    const thumbprint = raw.replace(/[:\s]/g, "").toUpperCase();
    if (!/^[0-9A-F]{40}$/.test(thumbprint)) {
      throw new ManagedIdentityError(
        "invalid_configuration",
        `IDENTITY_SERVER_THUMBPRINT must be a SHA-1 thumbprint of 40 hex characters: got ${thumbprint.length} characters`,
        { source: "ServiceFabric" },
      );
    }
    return { endpoint, thumbprint };
  },
  createFetch(config): FetchLike {
    // Pinned TLS loads only on this path: other sources never pay for it.
    const { thumbprint } = config as ServiceFabricConfig;
    return (request) => import("../pinned_fetch.ts").then(({ pinnedFetch }) => pinnedFetch(thumbprint)(request));
  },
  async buildRequest({ resource, identity, env, config, claims, cachedToken, clientCapabilities }) {
    const { endpoint } = config as ServiceFabricConfig;
    return {
      method: "GET",
      url: withQuery(endpoint, {
        "api-version": "2020-05-01",
        resource,
        ...identityQuery(serviceFabric, identity),
        token_sha256_to_refresh: claims && cachedToken ? await sha256Hex(cachedToken) : undefined,
        xms_cc: clientCapabilities.join(",") || undefined,
      }),
      headers: { "Accept": "application/json", "Secret": env("IDENTITY_HEADER") ?? "" },
    };
  },
};
