/**
 * Azure Machine Learning compute: `MSI_ENDPOINT` with `MSI_SECRET`.
 * @module
 */

import { identityParameter, type SourceDefinition, withQuery } from "./source.ts";

/**
 * `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=...&clientid=...` with `secret` and
 * `Metadata: true`. `clientid` is always sent: the user-assigned client ID, else
 * `DEFAULT_IDENTITY_CLIENT_ID` as read at construction (which may be empty).
 */
export const azureMl: SourceDefinition = {
  name: "AzureML",
  retry: "standard",
  endpoint: { name: "MSI_ENDPOINT" },
  identities: {
    parameters: { clientId: "clientid" },
    refusal: "Azure ML supports a user-assigned identity by client ID only",
  },
  // The compute's default identity, named by the environment: read once, so that it is part of
  // the cache key like one the caller names.
  identityOf(identity, env) {
    const value = identity.kind === "system" ? env("DEFAULT_IDENTITY_CLIENT_ID") : undefined;
    return value ? { kind: "clientId", value } : identity;
  },
  buildRequest({ resource, identity, env, endpoint }) {
    identityParameter(azureMl, identity);
    const clientId = identity.kind === "clientId" ? identity.value : "";
    return {
      method: "GET",
      url: withQuery(endpoint, { "api-version": "2017-09-01", resource, clientid: clientId }),
      headers: { "secret": env("MSI_SECRET") ?? "", "Metadata": "true" },
    };
  },
};
