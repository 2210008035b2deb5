/**
 * App Service, Azure Functions and Container Apps: `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`.
 * @module
 */

import { identityQuery, type SourceDefinition, withQuery } from "./source.ts";

/** `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...` with `X-IDENTITY-HEADER`. */
export const appService: SourceDefinition = {
  name: "AppService",
  retry: "standard",
  endpoint: { name: "IDENTITY_ENDPOINT" },
  identities: { parameters: { clientId: "client_id", objectId: "object_id", resourceId: "mi_res_id" } },
  buildRequest({ resource, identity, env, endpoint }) {
    return {
      method: "GET",
      url: withQuery(endpoint, {
        "api-version": "2019-08-01",
        resource,
        ...identityQuery(appService, identity),
      }),
      headers: { "X-IDENTITY-HEADER": env("IDENTITY_HEADER") ?? "" },
    };
  },
};
