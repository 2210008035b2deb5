/**
 * A local emulator of every Azure managed identity source, for trying the client off Azure and
 * for tests: Web-standard `(Request) => Response` handlers that behave like IMDS, App Service,
 * Azure Arc, Cloud Shell, Service Fabric, Azure ML and, for AKS workload identity, Microsoft
 * Entra ID's token endpoint (with the federated token file it writes), with fault injection, and
 * `serve()` to run them on loopback with the runtime's own server.
 *
 * Its tokens are RS256-signed v1 access tokens with the claims Entra gives managed identities;
 * every server also serves Entra's OpenID configuration and keys for them, so an API validates
 * them as it would Entra's (issuer `https://sts.windows.net/{tenant}/`, `RunningEmulator.jwksUri`).
 * Service Fabric's HTTPS endpoint uses development certificates: pin
 * {@linkcode DEV_CERTIFICATE_THUMBPRINT}, or trust {@linkcode DEV_CA_CERTIFICATE}. They are for
 * development only: the server certificate's private key is public on purpose.
 *
 * @example Rehearse failures: IMDS throttled twice, then tokens
 * ```ts ignore
 * import { serve } from "@azmi/managed-identity/emulator";
 * import { ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const running = await serve({ sources: ["DefaultToIMDS"], fail: "throttled:2" });
 * const client = new ManagedIdentityClient({ env: running.env.DefaultToIMDS });
 * await client.acquireToken("https://vault.azure.net"); // two 429s, two retries, then the token
 * running.emulator.fail("unknown-resource"); // from now on, IMDS's 400 invalid_resource
 * running.emulator.recover(); // and back to normal
 * await running.close();
 * ```
 *
 * @example Run every source on loopback
 * ```ts ignore
 * import { serve } from "@azmi/managed-identity/emulator";
 *
 * const running = await serve();
 * console.log(running.env.AppService); // { IDENTITY_ENDPOINT: "http://127.0.0.1:...", IDENTITY_HEADER: "..." }
 * await running.close();
 * ```
 *
 * @module
 */

export { DEV_CA_CERTIFICATE, DEV_CERTIFICATE_THUMBPRINT } from "./dev_cert.ts";
export { createEmulator, EMULATED_API_VERSIONS, EMULATED_HOST_RESOURCE_IDS, RELAYED_SOURCES } from "./emulator.ts";
export type { EmulatedRequest, Emulator, EmulatorOptions } from "./emulator.ts";
export { parseFailures } from "./faults.ts";
export { OriginError } from "./origin.ts";
export type { OriginFailure, OriginToken, TokenOrigin } from "./origin.ts";
export {
  createRelay,
  RELAY_ERROR_STATUS,
  RELAY_MARGIN_MS,
  RELAY_MAX_REPORTED_IDS,
  RELAY_MAX_RESOURCES,
  RELAY_MAX_TOKEN_LENGTH,
  RELAY_TIMEOUT_MS,
  relayResource,
} from "./relay.ts";
export type { Relay, RelayedIdentity, RelayOptions } from "./relay.ts";
export type { FailureKind, FailureScenario, Fault } from "./faults.ts";
export { ALL_SOURCES, BODY_DEADLINE_MS, MAX_REQUEST_BODY_BYTES, pemThumbprint, serve } from "./serve.ts";
export type { RunningEmulator, ServeOptions } from "./serve.ts";
export { createSigningKey } from "./signing.ts";
export type { EmulatorJwk, EmulatorJwks, EmulatorSigningKey } from "./signing.ts";
export { emulatedToken, EMULATOR_ISSUER, EMULATOR_TENANT, readClaims } from "./token.ts";
export type { EmulatedClaims, EmulatedIdentity } from "./token.ts";
export { FEDERATED_TOKEN_AUDIENCE } from "./workload.ts";
export type { FederatedCredential } from "./workload.ts";
export type { Source } from "../types.ts";
