/**
 * Azure Arc-enabled servers: the local agent's endpoint with its 401 challenge
 * (docs/sources.md, Azure Arc).
 * @module
 */

import type { ArcConfig } from "../arc_key.ts";
import { currentPlatform } from "../runtime.ts";
import { identityQuery, parseStandardReply, type SourceDefinition, withQuery } from "./source.ts";

/** The agent's endpoint when `IDENTITY_ENDPOINT` is unset. */
export const ARC_DEFAULT_ENDPOINT = "http://127.0.0.1:40342/metadata/identity/oauth2/token";

/**
 * `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=...` with `Metadata: true`; the agent
 * answers 401 with a key file path, and the request is repeated with
 * `Authorization: Basic <key file contents>`.
 */
export const azureArc: SourceDefinition = {
  name: "AzureArc",
  retry: "standard",
  endpoint: { name: "IDENTITY_ENDPOINT", fallback: ARC_DEFAULT_ENDPOINT },
  identities: { parameters: { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" } },
  configure(env, internal): ArcConfig {
    return {
      platform: internal.platform ?? currentPlatform(),
      programData: env("ProgramData"),
      tokenDirectory: internal.arcTokenDirectory,
      fileSystem: internal.arcFileSystem,
    };
  },
  buildRequest({ resource, identity, endpoint }) {
    return {
      method: "GET",
      url: withQuery(endpoint, {
        "api-version": "2020-06-01",
        resource,
        ...identityQuery(azureArc, identity),
      }),
      headers: { "Metadata": "true" },
      // The challenge request is never retried.
      retry: false,
    };
  },
  // The challenge's file rules and the identity echo check load only on this path; the
  // standard reply handling is handed over rather than imported, so that it stays in the
  // eager bundle alone instead of becoming a chunk of its own.
  parseReply: async (reply, context) =>
    (await import("../arc_key.ts")).parseArcReply(reply, context, { parseStandardReply }),
};
