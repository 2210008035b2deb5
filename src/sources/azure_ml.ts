/**
 * Azure Machine Learning compute: `MSI_ENDPOINT` with `MSI_SECRET`.
 * @module
 */

import { identityParameter, readEndpoint, type SourceDefinition, withQuery } from "./source.ts";

/**
 * `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=...&clientid=...` with `secret` and
 * `Metadata: true`. `clientid` is always sent: the user-assigned client ID, else
 * `DEFAULT_IDENTITY_CLIENT_ID` (which may be empty).
 */
export const azureMl: SourceDefinition = {
  name: "AzureML",
  retry: "standard",
  endpoint: { name: "MSI_ENDPOINT" },
  identities: {
    parameters: { clientId: "clientid" },
    refusal: "Azure ML supports a user-assigned identity by client ID only",
  },
  buildRequest({ resource, identity, env }) {
    const endpoint = readEndpoint(azureMl, env);
    identityParameter(azureMl, identity);
    const clientId = identity.kind === "clientId" ? identity.value : env("DEFAULT_IDENTITY_CLIENT_ID") ?? "";
    return {
      method: "GET",
      url: withQuery(endpoint, { "api-version": "2017-09-01", resource, clientid: clientId }),
      headers: { "secret": env("MSI_SECRET") ?? "", "Metadata": "true" },
    };
  },
};
