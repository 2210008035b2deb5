/**
 * The emulator's OpenID Connect discovery documents and keys, at Microsoft Entra ID's paths, so
 * that an API validates the emulator's tokens as it would Entra's, with the emulator's issuer
 * and key set in place of Entra's:
 *
 * - `GET /{tenant}/.well-known/openid-configuration`: the v1 document, whose `issuer` is the
 *   one v1 tokens carry, `https://sts.windows.net/{tenant}/`, as Entra's is.
 * - `GET /{tenant}/v2.0/.well-known/openid-configuration`: the v2.0 document, whose `issuer` is
 *   `https://login.microsoftonline.com/{tenant}/v2.0`, as Entra's is: v1 tokens (the emulator's,
 *   and Entra's managed identity tokens) do not carry it.
 * - `GET /common/discovery/keys`, `/{tenant}/discovery/keys` and their `discovery/v2.0/keys`
 *   forms: the JSON Web Key Set, `{ keys: [{ kty, use: "sig", kid, x5t, n, e, x5c, alg }] }`.
 *
 * The documents' shapes follow Entra's: the v2.0 one as
 * https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc shows it (`token_endpoint`
 * `.../{tenant}/oauth2/v2.0/token`, `jwks_uri` `.../{tenant}/discovery/v2.0/keys`), the v1 one as
 * `https://login.microsoftonline.com/common/.well-known/openid-configuration` answers (`issuer`
 * `https://sts.windows.net/{tenantid}/`, `jwks_uri` `.../common/discovery/keys`,
 * `token_endpoint` `.../oauth2/token`, `id_token_signing_alg_values_supported` `["RS256"]`),
 * with the tenant filled in as a tenant's own document has it. The URLs in them are the server's
 * that answered (its origin), Entra's paths under it. Of those endpoints the emulator answers
 * the keys, and the v2.0 token endpoint on its WorkloadIdentity server; `authorization_endpoint`
 * (which OpenID Connect Discovery requires) and the v1 `token_endpoint` are not served. A tenant
 * other than the emulator's is refused as Entra refuses it: 400 `invalid_tenant`, AADSTS90002.
 * @module
 */

import type { EmulatorSigningKey } from "./signing.ts";
import { EMULATOR_ISSUER, EMULATOR_TENANT } from "./token.ts";
import { unknownTenant } from "./workload.ts";

const CONFIGURATION = /^\/([^/]+)(\/v2\.0)?\/\.well-known\/openid-configuration$/;
const KEYS = /^\/([^/]+)\/discovery(\/v2\.0)?\/keys$/;

/** The v1 and v2.0 OpenID configuration documents of the emulator's tenant, served at `origin`. */
export function openIdConfiguration(origin: string, v2: boolean): Record<string, unknown> {
  const base = `${origin}/${EMULATOR_TENANT}`;
  const oauth2 = v2 ? `${base}/oauth2/v2.0` : `${base}/oauth2`;
  return {
    token_endpoint: `${oauth2}/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${base}/discovery${v2 ? "/v2.0" : ""}/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: v2 ? ["openid", "profile", "email", "offline_access"] : ["openid"],
    issuer: v2 ? `https://login.microsoftonline.com/${EMULATOR_TENANT}/v2.0` : EMULATOR_ISSUER,
    authorization_endpoint: `${oauth2}/authorize`,
    cloud_instance_name: "microsoftonline.com",
  };
}

/**
 * Answers a request for a discovery document or the keys, or `undefined` when the request is
 * for neither (a `GET` or `HEAD` of one of the paths above).
 */
export async function answerDiscovery(
  request: Request,
  key: EmulatorSigningKey,
  now: () => number,
): Promise<Response | undefined> {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const url = new URL(request.url);
  const configuration = CONFIGURATION.exec(url.pathname);
  const keys = configuration ? undefined : KEYS.exec(url.pathname);
  const match = configuration ?? keys;
  if (!match) return undefined;
  let tenant = match[1]!;
  try {
    tenant = decodeURIComponent(tenant);
  } catch {
    // Not percent-encoding: the segment as it is.
  }
  const known = tenant.toLowerCase() === EMULATOR_TENANT || (keys !== undefined && tenant === "common");
  if (!known) return unknownTenant(tenant, { now: now(), request });
  const body = configuration ? openIdConfiguration(url.origin, configuration[2] !== undefined) : await key.jwks();
  return Response.json(body);
}
