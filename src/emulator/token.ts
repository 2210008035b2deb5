/**
 * The emulator's access tokens: v1 tokens shaped like the ones Microsoft Entra ID issues to
 * managed identities (claims per
 * https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference), signed
 * with RS256 by the emulator's own key ({@linkcode EmulatorSigningKey}), which it publishes
 * with its OpenID configuration, so that an API can validate them as it would Entra's.
 * @module
 */

import { base64urlBytes } from "./base64url.ts";
import type { EmulatorSigningKey } from "./signing.ts";

/** The IDs of an identity the emulator serves. */
export interface EmulatedIdentity {
  /** Client (application) ID. */
  readonly clientId: string;
  /** Object (principal) ID. */
  readonly objectId: string;
  /** Azure resource ID. */
  readonly resourceId: string;
}

/** The claims of an emulated access token: a v1 token's, as Entra issues to managed identities. */
export interface EmulatedClaims {
  /** The audience: the requested resource, as requested (without `/.default`). */
  readonly aud: string;
  /** The issuer: `https://sts.windows.net/{tenant}/`, {@linkcode EMULATOR_ISSUER}. */
  readonly iss: string;
  /** Issued at, Unix seconds. */
  readonly iat: number;
  /** Not before, Unix seconds: the issue time. */
  readonly nbf: number;
  /** Expiry, Unix seconds. */
  readonly exp: number;
  /** The identity's client (application) ID. */
  readonly appid: string;
  /** How the client authenticated: `2`, a certificate or assertion, as for every managed identity. */
  readonly appidacr: "2";
  /** The identity provider: the issuer, for an app's own token. */
  readonly idp: string;
  /** The identity type: always `app`. */
  readonly idtyp: "app";
  /** The identity's object (principal) ID. */
  readonly oid: string;
  /** The subject: the object ID. */
  readonly sub: string;
  /** The tenant: always {@linkcode EMULATOR_TENANT}. */
  readonly tid: string;
  /** A unique token ID (16 random bytes, base64url), like Entra's. */
  readonly uti: string;
  /** The token version: `1.0`. */
  readonly ver: "1.0";
  /**
   * The managed identity's Azure resource ID: a user-assigned identity's own
   * (`.../providers/Microsoft.ManagedIdentity/userAssignedIdentities/...`), or for the
   * system-assigned identity the resource that hosts it (the virtual machine, web app, Arc
   * machine, ...).
   */
  readonly xms_mirid: string;
  /** Not Entra's: the emulated source that issued the token. */
  readonly azmi_source: string;
}

/** The tenant the emulator pretends to belong to. */
export const EMULATOR_TENANT = "72f988bf-0000-4000-8000-00000000a2f1";

/** The issuer of the emulator's tokens, Entra's for v1 tokens: `https://sts.windows.net/{tenant}/`. */
export const EMULATOR_ISSUER: string = `https://sts.windows.net/${EMULATOR_TENANT}/`;

/** The claims of a token for `resource` and `identity`, issued by `source` at `issuedAt` (Unix seconds). */
export function emulatedClaims(
  source: string,
  resource: string,
  identity: EmulatedIdentity,
  issuedAt: number,
  expiresAt: number,
): EmulatedClaims {
  return {
    aud: resource,
    iss: EMULATOR_ISSUER,
    iat: issuedAt,
    nbf: issuedAt,
    exp: expiresAt,
    appid: identity.clientId,
    appidacr: "2",
    idp: EMULATOR_ISSUER,
    idtyp: "app",
    oid: identity.objectId,
    sub: identity.objectId,
    tid: EMULATOR_TENANT,
    uti: base64urlBytes(crypto.getRandomValues(new Uint8Array(16))),
    ver: "1.0",
    xms_mirid: identity.resourceId,
    azmi_source: source,
  };
}

/**
 * Builds a signed access token (RS256, with `kid` and `x5t` in its header) for `resource` and
 * `identity`, issued by `source`; `identity.resourceId` becomes `xms_mirid`.
 */
export function emulatedToken(
  key: EmulatorSigningKey,
  source: string,
  resource: string,
  identity: EmulatedIdentity,
  issuedAt: number,
  expiresAt: number,
): Promise<string> {
  return key.sign(emulatedClaims(source, resource, identity, issuedAt, expiresAt));
}

/** Reads the claims of an emulated (or any JWT-shaped) token, without verifying anything (not even the signature). */
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
