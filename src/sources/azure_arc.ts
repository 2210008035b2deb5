/**
 * Azure Arc-enabled servers: the local agent's endpoint with its 401 challenge (PROTOCOL.md
 * section 5).
 * @module
 */

import type { ArcKeyFileSystem } from "../arc_key.ts";
import { ManagedIdentityError } from "../errors.ts";
import { currentPlatform } from "../runtime.ts";
import {
  endpointUrl,
  httpError,
  identityQuery,
  type ParseOutcome,
  parseStandardReply,
  type SourceDefinition,
  withQuery,
} from "./source.ts";

/** The agent's endpoint when `IDENTITY_ENDPOINT` is unset. */
export const ARC_DEFAULT_ENDPOINT = "http://127.0.0.1:40342/metadata/identity/oauth2/token";

/** What Arc captures at construction. */
export interface ArcConfig {
  readonly platform: string;
  readonly programData: string | undefined;
  /** Overrides from the internal seam (tests). */
  readonly tokenDirectory: string | undefined;
  readonly fileSystem: ArcKeyFileSystem | undefined;
}

// The identity fields the agent echoes for a user-assigned request.
const ECHO: Record<string, readonly string[]> = {
  clientId: ["client_id"],
  objectId: ["object_id"],
  resourceId: ["msi_res_id", "mi_res_id"],
};

/**
 * `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=...` with `Metadata: true`; the agent
 * answers 401 with a key file path, and the request is repeated with
 * `Authorization: Basic <key file contents>`.
 */
export const azureArc: SourceDefinition = {
  name: "AzureArc",
  retry: "standard",
  identities: { parameters: { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" } },
  configure(env, internal): ArcConfig {
    return {
      platform: internal.platform ?? currentPlatform(),
      programData: env("ProgramData"),
      tokenDirectory: internal.arcTokenDirectory,
      fileSystem: internal.arcFileSystem,
    };
  },
  buildRequest({ resource, identity, env }) {
    const endpoint = endpointUrl("AzureArc", "IDENTITY_ENDPOINT", env("IDENTITY_ENDPOINT") ?? ARC_DEFAULT_ENDPOINT);
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
  async parseReply(reply, context): Promise<ParseOutcome> {
    const config = context.config as ArcConfig;
    if (context.request.headers["Authorization"] === undefined) {
      if (reply.status !== 401) {
        const { code, status, error, errorDescription, correlationId, endpoint } = httpError(reply, context);
        throw new ManagedIdentityError(
          code === "unavailable" ? code : "request_failed",
          `The Azure Arc agent must answer the first request with a 401 challenge: it answered ${reply.status}`,
          { source: "AzureArc", status, error, errorDescription, correlationId, endpoint },
        );
      }
      // The challenge's file rules load only on this path: other sources never pay for them.
      const arc = await import("../arc_key.ts");
      const { platform } = config;
      const path = arc.validateArcChallenge(
        reply.headers.get("www-authenticate"),
        platform,
        config.tokenDirectory ?? arc.arcTokenDirectory(platform, config.programData),
      );
      const key = await arc.readArcKey(path, platform, () => config.fileSystem ?? arc.nodeFileSystem());
      const { retry: _never, ...request } = context.request;
      return { next: { ...request, headers: { ...request.headers, "Authorization": `Basic ${key}` } } };
    }
    const outcome = parseStandardReply(reply, context);
    const { identity } = context;
    if (identity.kind !== "system" && "token" in outcome) {
      const fields = outcome.token.fields;
      const echoed = ECHO[identity.kind]!.some((name) =>
        typeof fields[name] === "string" && (fields[name] as string).toLowerCase() === identity.value.toLowerCase()
      );
      if (!echoed) {
        // Fail closed: the agent gave another identity's token (usually the system-assigned one).
        throw new ManagedIdentityError(
          "identity_mismatch",
          `The Azure Arc agent did not return the requested ${identity.kind} "${identity.value}": the response does not echo it`,
          { source: "AzureArc", status: reply.status, endpoint: context.endpoint },
        );
      }
    }
    return outcome;
  },
};
