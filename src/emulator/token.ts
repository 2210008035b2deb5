/**
 * Unsigned JWT-shaped tokens: a header, claims that match the request (audience, identity,
 * times), and an empty signature. Nothing accepts them; they show what was asked for.
 * @module
 */

/** The IDs of an identity the emulator serves. */
export interface EmulatedIdentity {
  /** Client (application) ID. */
  readonly clientId: string;
  /** Object (principal) ID. */
  readonly objectId: string;
  /** Azure resource ID. */
  readonly resourceId: string;
}

/** The claims the emulator puts in a token. */
export interface EmulatedClaims {
  /** The audience: the requested resource. */
  readonly aud: string;
  /** The issuer, an Entra ID tenant URL. */
  readonly iss: string;
  /** Issued at, Unix seconds. */
  readonly iat: number;
  /** Not before, Unix seconds. */
  readonly nbf: number;
  /** Expiry, Unix seconds. */
  readonly exp: number;
  /** The identity's client ID. */
  readonly appid: string;
  /** The identity's object ID. */
  readonly oid: string;
  /** The subject: the object ID. */
  readonly sub: string;
  /** The identity's Azure resource ID. */
  readonly xms_mirid: string;
  /** The tenant: always {@linkcode EMULATOR_TENANT}. */
  readonly tid: string;
  /** The identity type: always `app`. */
  readonly idtyp: "app";
  /** The emulated source that issued the token. */
  readonly azmi_source: string;
}

/** The tenant the emulator pretends to belong to. */
export const EMULATOR_TENANT = "72f988bf-0000-4000-8000-00000000a2f1";

/** Bytes as base64url, without padding (JWT's encoding). */
export const base64urlBytes = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

const base64url = (text: string) => base64urlBytes(new TextEncoder().encode(text));

/** Builds an unsigned JWT-shaped token (`header.claims.`). */
export function emulatedToken(
  source: string,
  resource: string,
  identity: EmulatedIdentity,
  issuedAt: number,
  expiresAt: number,
): string {
  const claims: EmulatedClaims = {
    aud: resource,
    iss: `https://sts.windows.net/${EMULATOR_TENANT}/`,
    iat: issuedAt,
    nbf: issuedAt,
    exp: expiresAt,
    appid: identity.clientId,
    oid: identity.objectId,
    sub: identity.objectId,
    xms_mirid: identity.resourceId,
    tid: EMULATOR_TENANT,
    idtyp: "app",
    azmi_source: source,
  };
  return `${base64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}.`;
}

/** Reads the claims of an emulated (or any JWT-shaped) token, without verifying anything. */
export function readClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const binary = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return undefined;
  }
}
