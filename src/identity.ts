/**
 * The identity a client asks for: system-assigned, or user-assigned by exactly one ID.
 * @module
 */

/**
 * Options that name a user-assigned identity. At most one may be set.
 *
 * @example System-assigned, or user-assigned by one ID
 * ```ts
 * import { ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };
 * const system = new ManagedIdentityClient({ env });
 * const byClientId = new ManagedIdentityClient({ env, clientId: "00000000-0000-0000-0000-000000000001" });
 * const byResourceId = new ManagedIdentityClient({
 *   env,
 *   resourceId: "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app",
 * });
 * console.log(system.source, byClientId.source, byResourceId.source); // "AppService" three times
 *
 * try {
 *   new ManagedIdentityClient({ env, clientId: "00000000-0000-0000-0000-000000000001", objectId: "x" });
 * } catch (error) {
 *   console.log(error instanceof TypeError); // true: at most one ID
 * }
 * ```
 */
export interface IdentityOptions {
  /** The user-assigned identity's client (application) ID. */
  readonly clientId?: string;
  /** The user-assigned identity's object (principal) ID. */
  readonly objectId?: string;
  /** The user-assigned identity's Azure resource ID (`/subscriptions/.../userAssignedIdentities/...`). */
  readonly resourceId?: string;
}

/** The kinds of user-assigned ID. */
export type IdentityKind = "clientId" | "objectId" | "resourceId";

/** A validated identity. */
export type Identity =
  | { readonly kind: "system" }
  | { readonly kind: IdentityKind; readonly value: string };

const KINDS: readonly IdentityKind[] = ["clientId", "objectId", "resourceId"];

/** Validates the identity options; a caller error (empty ID, two IDs) is a `TypeError`. */
export function parseIdentity(options: IdentityOptions): Identity {
  const given = KINDS.filter((kind) => options[kind] !== undefined);
  if (given.length > 1) {
    throw new TypeError(
      `Cannot use more than one of clientId, objectId and resourceId: got ${given.join(" and ")}`,
    );
  }
  const kind = given[0];
  if (kind === undefined) return { kind: "system" };
  const value = options[kind];
  if (typeof value !== "string" || value.trim() === "") {
    throw new TypeError(`Option "${kind}" must be a non-empty string: got ${JSON.stringify(value)}`);
  }
  return { kind, value: value.trim() };
}
