/**
 * Azure Instance Metadata Service (VMs, scale sets, AKS with pod identity): the default source.
 * @module
 */

import { SKU, VERSION } from "../version.ts";
import { identityQuery, type SourceDefinition, withQuery } from "./source.ts";

/** The IMDS host when `AZURE_POD_IDENTITY_AUTHORITY_HOST` is unset. */
export const IMDS_HOST = "http://169.254.169.254";

/** `GET {host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with `Metadata: true`. */
export const imds: SourceDefinition = {
  name: "DefaultToIMDS",
  retry: "imds",
  // Off Azure nothing answers 169.254.169.254: say so in about a second (src/first_contact.ts).
  probe: true,
  endpoint: { name: "AZURE_POD_IDENTITY_AUTHORITY_HOST", fallback: IMDS_HOST },
  identities: { parameters: { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" } },
  buildRequest({ resource, identity, endpoint: host }) {
    // No "//" when the variable ends in "/"; a query string on the host stays a query string.
    host.pathname = `${host.pathname.replace(/\/+$/, "")}/metadata/identity/oauth2/token`;
    return {
      method: "GET",
      url: withQuery(host, {
        "api-version": "2018-02-01",
        resource,
        ...identityQuery(imds, identity),
      }),
      headers: {
        "Metadata": "true",
        "x-client-SKU": SKU,
        "x-client-Ver": VERSION,
        "x-ms-client-request-id": crypto.randomUUID(),
      },
    };
  },
};
