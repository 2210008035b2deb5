/**
 * The emulator's token signing key, made like Microsoft Entra ID's: an RSA key (2048 bits,
 * RSASSA-PKCS1-v1_5 with SHA-256, made with Web Crypto), published as a JSON Web Key with a
 * self-signed X.509 certificate around it (`x5c`), whose base64url SHA-1 thumbprint is both the
 * key's `x5t` and its `kid`, as in Entra's `discovery/keys` documents. The private key is not
 * extractable and never leaves the emulator.
 * @module
 */

import { concat } from "../http1.ts";
import { base64urlBytes } from "./base64url.ts";

/** One key of a JSON Web Key Set, as the emulator publishes it (Entra's fields, and `alg`). */
export interface EmulatorJwk {
  /** Always `RSA`. */
  readonly kty: "RSA";
  /** Always `sig`. */
  readonly use: "sig";
  /** The key ID tokens name in their header: the certificate's thumbprint, as Entra's. */
  readonly kid: string;
  /** The base64url SHA-1 thumbprint of the certificate in `x5c`. */
  readonly x5t: string;
  /** The modulus, base64url. */
  readonly n: string;
  /** The public exponent, base64url (`AQAB`). */
  readonly e: string;
  /** The self-signed certificate holding the key, base64 DER. */
  readonly x5c: readonly string[];
  /** Always `RS256`. */
  readonly alg: "RS256";
}

/** A JSON Web Key Set: what the emulator serves at its `discovery/keys` URLs. */
export interface EmulatorJwks {
  /** The signing keys: one, the emulator's. */
  readonly keys: readonly EmulatorJwk[];
}

/** The emulator's signing key: made on first use, then the same for the emulator's life. */
export interface EmulatorSigningKey {
  /** The public key as a JSON Web Key Set. */
  jwks(): Promise<EmulatorJwks>;
  /** Signs `claims` as a JWT with RS256, its header naming the key (`typ`, `alg`, `x5t`, `kid`). */
  sign(claims: object): Promise<string>;
}

const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
const encoder = new TextEncoder();

// DER, just what a self-signed certificate needs (X.690).
function der(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const body = concat(parts);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [
    0x83,
    n >> 16,
    (n >> 8) & 0xff,
    n & 0xff,
  ];
  return concat([Uint8Array.of(tag, ...length), body]);
}
const sequence = (...parts: Uint8Array[]) => der(0x30, ...parts);
// sha256WithRSAEncryption (1.2.840.113549.1.1.11), with its NULL parameters.
const SHA256_WITH_RSA = sequence(
  Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b),
  Uint8Array.of(0x05, 0x00),
);
/** A Name of one common name (2.5.4.3), as a UTF8String. */
const commonName = (cn: string) =>
  sequence(der(0x31, sequence(Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03), der(0x0c, encoder.encode(cn)))));
/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 section 4.1.2.5). */
function time(ms: number): Uint8Array<ArrayBuffer> {
  const iso = new Date(ms).toISOString(); // 2026-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ""); // 20260102030405
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? der(0x17, encoder.encode(`${digits.slice(2)}Z`)) : der(0x18, encoder.encode(`${digits}Z`));
}

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** The subject and issuer of the signing key's self-signed certificate. */
export const SIGNING_CERTIFICATE_NAME = "azmi emulator token signing";

/**
 * A self-signed X.509 v3 certificate (no extensions) holding the public key, signed with the
 * private key, valid from a day before `now` to a year after it: the `x5c` of the JWK.
 */
async function selfSigned(keys: CryptoKeyPair, now: number): Promise<Uint8Array<ArrayBuffer>> {
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte
  const name = commonName(SIGNING_CERTIFICATE_NAME);
  const day = 24 * 60 * 60 * 1000;
  const tbs = sequence(
    der(0xa0, Uint8Array.of(0x02, 0x01, 0x02)), // version 3
    der(0x02, serial),
    SHA256_WITH_RSA,
    name,
    sequence(time(now - day), time(now + 365 * day)),
    name,
    new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey)),
  );
  const signature = new Uint8Array(await crypto.subtle.sign(RSA.name, keys.privateKey, tbs));
  return sequence(tbs, SHA256_WITH_RSA, der(0x03, Uint8Array.of(0), signature));
}

interface Material {
  readonly privateKey: CryptoKey;
  readonly jwk: EmulatorJwk;
  readonly header: string;
}

/**
 * Creates a signing key. The RSA key is made on first use (Web Crypto's `generateKey`, which
 * takes tens of milliseconds), once: concurrent first uses share it.
 *
 * @param now The clock, in milliseconds, for the certificate's validity. Default `Date.now`.
 */
export function createSigningKey(now: () => number = Date.now): EmulatorSigningKey {
  let material: Promise<Material> | undefined;
  const make = async (): Promise<Material> => {
    const keys = await crypto.subtle.generateKey(
      { ...RSA, modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1) },
      false,
      ["sign", "verify"],
    );
    const certificate = await selfSigned(keys, now());
    const x5t = base64urlBytes(new Uint8Array(await crypto.subtle.digest("SHA-1", certificate)));
    const { n, e } = await crypto.subtle.exportKey("jwk", keys.publicKey);
    if (!n || !e) throw new Error("The emulator's signing key has no modulus or exponent");
    const jwk: EmulatorJwk = { kty: "RSA", use: "sig", kid: x5t, x5t, n, e, x5c: [base64(certificate)], alg: "RS256" };
    // Entra's header, in Entra's order.
    const header = base64urlBytes(encoder.encode(JSON.stringify({ typ: "JWT", alg: "RS256", x5t, kid: x5t })));
    return { privateKey: keys.privateKey, jwk, header };
  };
  const ready = () =>
    material ??= make().catch((error) => {
      material = undefined; // a failed attempt is not remembered
      throw error;
    });
  return {
    async jwks() {
      return { keys: [(await ready()).jwk] };
    },
    async sign(claims) {
      const { privateKey, header } = await ready();
      const body = `${header}.${base64urlBytes(encoder.encode(JSON.stringify(claims)))}`;
      const signature = await crypto.subtle.sign(RSA.name, privateKey, encoder.encode(body));
      return `${body}.${base64urlBytes(new Uint8Array(signature))}`;
    },
  };
}
