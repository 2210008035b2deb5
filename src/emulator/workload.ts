/**
 * Workload identity's side of the emulator: a stand-in for Microsoft Entra ID's token endpoint
 * `POST /{tenant}/oauth2/v2.0/token` (client credentials with a client assertion), and the
 * federated token it accepts, a JWT-shaped Kubernetes service account token that the emulator
 * signs itself and writes to a file (docs/sources.md, AKS workload identity).
 *
 * The endpoint checks what Entra checks, in Entra's order, and refuses with Entra's JSON error
 * (`error`, `error_description` starting with the AADSTS code, `error_codes`, `timestamp`,
 * `trace_id`, `correlation_id`, `error_uri`). The codes and their meaning are documented at
 * https://learn.microsoft.com/entra/identity-platform/reference-error-codes (and per code at
 * https://login.microsoftonline.com/error?code=70021); the statuses and wording follow Entra's
 * answers as clients have logged them (for instance AADSTS70021 with 400 `invalid_request` in
 * https://github.com/Azure/azure-workload-identity/issues/616, AADSTS90002 with
 * `invalid_tenant`; `invalid_client` is 401).
 * @module
 */

import type { EmulatedIdentity } from "./token.ts";
import { base64urlBytes } from "./base64url.ts";
import { readClaims } from "./token.ts";

/** The audience of a federated token that Entra exchanges (the AKS webhook's default). */
export const FEDERATED_TOKEN_AUDIENCE = "api://AzureADTokenExchange";

/** The only `client_assertion_type` Entra accepts. */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** How long a federated token file the emulator writes is valid: an hour, the AKS webhook's default. */
export const FEDERATED_TOKEN_LIFETIME_SECONDS = 3600;

/**
 * The federated identity credential every emulated identity has: the issuer, subject and
 * audience a federated token must carry for Entra to exchange it.
 */
export interface FederatedCredential {
  /** The cluster's OIDC issuer URL. */
  readonly issuer: string;
  /** The service account: `system:serviceaccount:<namespace>:<name>`. */
  readonly subject: string;
  /** Always `api://AzureADTokenExchange`. */
  readonly audience: string;
}

/** The emulated cluster's service account (namespace and name) and OIDC issuer. */
export const EMULATED_SERVICE_ACCOUNT = { namespace: "default", name: "azmi-workload" } as const;
// Short, and under a reserved name that never resolves (RFC 2606).
const EMULATED_ISSUER = "https://oidc.azmi-emulator.invalid/";

/** The credential of the emulated cluster's service account. */
export function federatedCredential(): FederatedCredential {
  const { namespace, name } = EMULATED_SERVICE_ACCOUNT;
  return {
    issuer: EMULATED_ISSUER,
    subject: `system:serviceaccount:${namespace}:${name}`,
    audience: FEDERATED_TOKEN_AUDIENCE,
  };
}

const uuid = () => crypto.randomUUID();
const encode = (value: unknown) => base64urlBytes(new TextEncoder().encode(JSON.stringify(value)));

/** Signs and verifies federated tokens with a key of the emulator's own (HMAC-SHA256). */
export interface Signer {
  sign(claims: Record<string, unknown>): Promise<string>;
  verify(token: string): Promise<boolean>;
}

/** A signer with a fresh random key. */
export function createSigner(): Signer {
  const key = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  const header = encode({ alg: "HS256", kid: "azmi-emulator" });
  return {
    async sign(claims) {
      const body = `${header}.${encode(claims)}`;
      const signature = await crypto.subtle.sign("HMAC", await key, new TextEncoder().encode(body));
      return `${body}.${base64urlBytes(new Uint8Array(signature))}`;
    },
    async verify(token) {
      const [head, body, signature] = token.split(".");
      if (head !== header || body === undefined || signature === undefined) return false;
      let bytes: Uint8Array<ArrayBuffer>;
      try {
        bytes = Uint8Array.from(atob(signature.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      } catch {
        return false;
      }
      return await crypto.subtle.verify("HMAC", await key, bytes, new TextEncoder().encode(`${head}.${body}`));
    },
  };
}

/**
 * The claims of a projected service account token, as the kubelet writes them (claims in
 * alphabetical order, `aud` a list), issued at `issuedAt` (Unix seconds).
 */
export function serviceAccountClaims(credential: FederatedCredential, issuedAt: number): Record<string, unknown> {
  const { namespace, name } = EMULATED_SERVICE_ACCOUNT;
  return {
    aud: [credential.audience],
    exp: issuedAt + FEDERATED_TOKEN_LIFETIME_SECONDS,
    iat: issuedAt,
    iss: credential.issuer,
    jti: uuid(),
    "kubernetes.io": {
      namespace,
      pod: { name: `${name}-pod`, uid: uuid() },
      serviceaccount: { name, uid: uuid() },
    },
    nbf: issuedAt,
    sub: credential.subject,
  };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Entra's `error_description`: the AADSTS code, the message, then the trace ID, correlation ID
 * and timestamp on lines of their own (`\r\n`), as Entra writes it and as IMDS relays it.
 */
export function entraDescription(
  code: number | undefined,
  message: string,
  ids: { readonly traceId?: string; readonly correlationId?: string; readonly timestamp: string },
): string {
  return `${code === undefined ? "" : `AADSTS${code}: `}${message}\r\nTrace ID: ${ids.traceId ?? uuid()}\r\n` +
    `Correlation ID: ${ids.correlationId ?? uuid()}\r\nTimestamp: ${ids.timestamp}`;
}

/** Entra's time format: `2024-01-02 03:04:05Z`. */
export const entraTime = (ms: number): string => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");

/**
 * An error as Entra sends it: the AADSTS code leads the description, which ends with the trace
 * ID, correlation ID and timestamp, each also a field of its own. The correlation ID is the
 * caller's `client-request-id` when it sent one, as Entra does.
 */
export function entraError(
  status: number,
  error: string,
  code: number | undefined,
  message: string,
  options: { readonly now: number; readonly request?: Request },
): Response {
  const traceId = uuid();
  const requestId = options.request?.headers.get("client-request-id");
  const correlationId = requestId && GUID.test(requestId) ? requestId : uuid();
  const timestamp = entraTime(options.now);
  const description = entraDescription(code, message, { traceId, correlationId, timestamp });
  return Response.json({
    error,
    error_description: description,
    error_codes: code === undefined ? [] : [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    ...(code === undefined ? {} : { error_uri: `https://login.microsoftonline.com/error?code=${code}` }),
  }, { status, headers: { "x-ms-request-id": traceId } });
}

/** Entra's answer for a tenant it does not know: 400 `invalid_tenant`, AADSTS90002. */
export function unknownTenant(
  tenant: string,
  options: { readonly now: number; readonly request?: Request },
): Response {
  return entraError(
    400,
    "invalid_tenant",
    90002,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are ` +
      "signing into the correct cloud. Check with your subscription administrator, this may happen if there are no " +
      "active subscriptions for the tenant.",
    options,
  );
}

/** What the token endpoint needs from the emulator. */
export interface TokenEndpoint {
  /** The emulator's tenant ID. */
  readonly tenant: string;
  /** The federated credential every identity trusts. */
  readonly credential: FederatedCredential;
  /** Every identity a client ID may name; the first is `AZURE_CLIENT_ID`'s default. */
  readonly identities: readonly EmulatedIdentity[];
  readonly signer: Signer;
  /** The emulator's clock, in milliseconds. */
  now(): number;
  /** The success answer: a token for `resource` and identity `who`. */
  token(resource: string, who: EmulatedIdentity): Promise<Response>;
}

const PATH = /^\/([^/]+)\/oauth2\/v2\.0\/token\/?$/;

/** Answers one request to the token endpoint, as Microsoft Entra ID would. */
export async function answerTokenRequest(request: Request, endpoint: TokenEndpoint): Promise<Response> {
  const now = endpoint.now();
  const refuse = (status: number, error: string, code: number, message: string) =>
    entraError(status, error, code, message, { now, request });
  const segment = PATH.exec(new URL(request.url).pathname)?.[1];
  if (segment === undefined) return new Response("Not Found", { status: 404 });
  let tenant = segment;
  try {
    tenant = decodeURIComponent(segment);
  } catch {
    // Not percent-encoding: the segment as it is.
  }
  if (request.method !== "POST") {
    return refuse(
      400,
      "invalid_request",
      900561,
      `The endpoint only accepts POST, OPTIONS requests. Received a ${request.method} request.`,
    );
  }
  if (tenant.toLowerCase() !== endpoint.tenant.toLowerCase()) return unknownTenant(tenant, { now, request });
  // Entra reads only a form: any other body is as good as none (it then misses grant_type).
  const type = request.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase();
  const form = new URLSearchParams(type === "application/x-www-form-urlencoded" ? await request.text() : "");
  const missing = (name: string) =>
    refuse(400, "invalid_request", 900144, `The request body must contain the following parameter: '${name}'.`);
  const grant = form.get("grant_type");
  if (!grant) return missing("grant_type");
  if (grant !== "client_credentials") {
    return refuse(400, "unsupported_grant_type", 70003, `The app requested an unsupported grant type '${grant}'.`);
  }
  const clientId = form.get("client_id");
  if (!clientId) return missing("client_id");
  const scope = form.get("scope");
  if (!scope) return missing("scope");
  const who = endpoint.identities.find((id) => id.clientId.toLowerCase() === clientId.toLowerCase());
  if (!who) {
    return refuse(
      400,
      "unauthorized_client",
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${endpoint.tenant}'. This can happen ` +
        "if the application has not been installed by the administrator of the tenant or consented to by any user in " +
        "the tenant. You may have sent your authentication request to the wrong tenant.",
    );
  }
  if (!/^\S+\/\.default$/.test(scope)) {
    return refuse(
      400,
      "invalid_scope",
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with ` +
        "/.default suffixed to the resource identifier (application ID URI).",
    );
  }
  // The client's credential, once the client is known.
  const assertion = form.get("client_assertion");
  const assertionType = form.get("client_assertion_type");
  if (assertion && !assertionType) return missing("client_assertion_type");
  if (!assertion || assertionType !== JWT_BEARER) {
    return refuse(
      401,
      "invalid_client",
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    );
  }
  // The assertion: a JWT (three base64url parts, a JSON object as claims), then the federated
  // credential it matches (issuer, subject, audience), then its signature, then its times.
  const claims = /^[\w-]+\.[\w-]+\.[\w-]*$/.test(assertion) ? readClaims(assertion) : undefined;
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) {
    return refuse(400, "invalid_request", 50027, "JWT token is invalid or malformed.");
  }
  const { credential } = endpoint;
  const audiences = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
  if (
    claims.iss !== credential.issuer || claims.sub !== credential.subject || !audiences.includes(credential.audience)
  ) {
    return refuse(
      400,
      "invalid_request",
      70021,
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${
        String(claims.iss)
      }'. ` +
        `Assertion Subject: '${String(claims.sub)}'. Assertion Audience: '${audiences.join(", ")}'.`,
    );
  }
  if (!await endpoint.signer.verify(assertion)) {
    return refuse(401, "invalid_client", 700027, "Client assertion failed signature validation.");
  }
  const seconds = Math.floor(now / 1000);
  const [notBefore, expires] = [Number(claims.nbf ?? claims.iat ?? 0), Number(claims.exp)];
  if (!(seconds >= notBefore - 300 && seconds < expires)) {
    const iso = (s: number) => Number.isFinite(s) ? new Date(s * 1000).toISOString() : "never";
    return refuse(
      401,
      "invalid_client",
      700024,
      `Client assertion is not within its valid time range. Current time: ${new Date(now).toISOString()}, assertion ` +
        `valid from ${iso(notBefore)}, expiry time of assertion ${iso(expires)}.`,
    );
  }
  return endpoint.token(scope.slice(0, -"/.default".length), who);
}
