/**
 * Azure Cloud Shell: `MSI_ENDPOINT` without a secret; system-assigned only.
 * @module
 */

import type { SourceDefinition } from "./source.ts";

/**
 * `POST $MSI_ENDPOINT` with the form body `resource=...`. The body is built with the request,
 * so every retry sends it again (MSAL Go sends an empty body on retry).
 */
export const cloudShell: SourceDefinition = {
  name: "CloudShell",
  retry: "standard",
  endpoint: { name: "MSI_ENDPOINT" },
  identities: { parameters: {}, refusal: "Cloud Shell supports only the system-assigned identity" },
  buildRequest({ resource, endpoint }) {
    return {
      method: "POST",
      url: endpoint,
      headers: { "Metadata": "true", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ resource }).toString(),
    };
  },
};
