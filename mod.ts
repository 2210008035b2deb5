/**
 * Azure managed identity tokens for Deno, Bun and Node, with nothing but Web standards.
 *
 * Code running on Azure (VMs, App Service, Functions, Container Apps, Arc servers, Cloud Shell,
 * Service Fabric, Azure ML, and AKS pods with workload identity) gets tokens for Key Vault,
 * Storage, Graph and the rest from a local endpoint (or, on AKS, by exchanging the pod's
 * federated token at Microsoft Entra ID), with no secrets in the code. The source is detected from the environment; tokens are
 * cached in memory until 5 minutes before they expire.
 *
 * @example Get a token for Key Vault
 * ```ts ignore
 * import { ManagedIdentityClient } from "@azmi/managed-identity";
 *
 * const client = new ManagedIdentityClient(); // or { clientId: "..." } for a user-assigned identity
 * const { accessToken } = await client.acquireToken("https://vault.azure.net");
 * ```
 *
 * @module
 */

export { ManagedIdentityClient } from "./src/client.ts";
export type { ManagedIdentityClientOptions } from "./src/client.ts";
export type { RetryOptions } from "./src/retry.ts";
export { TokenCache } from "./src/cache.ts";
export type { TokenCacheOptions } from "./src/cache.ts";
export { detectSource } from "./src/detect.ts";
export type { DetectOptions } from "./src/detect.ts";
export { CredentialUnavailableError, ManagedIdentityError } from "./src/errors.ts";
export type { ManagedIdentityEvent, ManagedIdentityEventListener } from "./src/events.ts";
export type { ManagedIdentityErrorCode, ManagedIdentityErrorDetails } from "./src/errors.ts";
export type { IdentityOptions } from "./src/identity.ts";
export type {
  AccessToken,
  AcquireTokenOptions,
  EnvRecord,
  FetchLike,
  GetTokenOptions,
  Source,
  TokenResult,
} from "./src/types.ts";
