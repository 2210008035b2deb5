/**
 * base64url, JWT's encoding, for the emulator's tokens and keys: the lowest file both the token
 * (`token.ts`) and its signing key (`signing.ts`) use, so neither imports the other for it.
 * @module
 */

/** Bytes as base64url, without padding (JWT's encoding). */
export const base64urlBytes = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
