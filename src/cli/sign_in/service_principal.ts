/**
 * Tokens for a service principal from the environment, exchanged at Microsoft Entra ID with the
 * client-credentials grant (docs/sign_in.md): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, and
 * `AZURE_CLIENT_SECRET` or `AZURE_FEDERATED_TOKEN_FILE`; `AZURE_AUTHORITY_HOST` (default
 * https://login.microsoftonline.com) names Entra.
 *
 * There is one Entra client in this repository, the workload identity source
 * (src/sources/workload_identity.ts): this origin drives a `ManagedIdentityClient` whose env is
 * the workload identity variables, so the token URL, the tenant and authority host rules, the
 * form, Entra's retry rules, the answer's parsing and the redaction of what Entra says are the
 * module's own. A federated token file is used as it is. For a client secret, the client reads
 * a placeholder assertion (through the internal file seam, nothing on disk) and the `fetch` this
 * origin gives it sends the secret as `client_secret` in place of `client_assertion_type` and
 * `client_assertion` (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#first-case-access-token-request-with-a-shared-secret):
 * the library is unchanged and its bundle does not grow. The secret never appears in an error:
 * every message passes the redaction gate with the secret as a secret.
 * @module
 */

import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../../../mod.ts";
import type { FetchLike } from "../../types.ts";
import { INTERNAL } from "../../internal.ts";
import type { FileHandleView } from "../../file_read.ts";
import { OriginError, type OriginFailure, type OriginToken, type TokenOrigin } from "../../emulator/origin.ts";
import { safeText } from "./output.ts";
import type { ToolEnv } from "./process.ts";

/** What a service principal origin needs. */
export interface ServicePrincipalOptions {
  readonly env: ToolEnv;
  /** Overrides `AZURE_TENANT_ID`. */
  readonly tenant?: string;
  /** Each attempt's timeout at Entra, in milliseconds (the module's default, 15 s, when absent). */
  readonly timeoutMs?: number;
  readonly fetch?: FetchLike;
}

// What the client reads as its assertion when a client secret is sent instead: never sent.
const PLACEHOLDER = "azmi-client-secret-placeholder";
const PLACEHOLDER_FILE = "azmi:client-secret";

const value = (env: ToolEnv, name: string) => {
  const found = env[name]?.trim();
  return found ? found : undefined;
};

/** The variables a service principal needs, or `undefined` when they are not all there. */
export function servicePrincipalVariables(env: ToolEnv, tenant?: string):
  | { tenant: string; clientId: string; secret?: string; file?: string; authority?: string }
  | undefined {
  const tenantId = tenant ?? value(env, "AZURE_TENANT_ID");
  const clientId = value(env, "AZURE_CLIENT_ID");
  const secret = env.AZURE_CLIENT_SECRET || undefined;
  const file = value(env, "AZURE_FEDERATED_TOKEN_FILE");
  if (!tenantId || !clientId || (!secret && !file)) return undefined;
  return { tenant: tenantId, clientId, secret, file, authority: value(env, "AZURE_AUTHORITY_HOST") };
}

/** The file seam's stand-in for a federated token file: it holds the placeholder. */
const placeholderFile = {
  open(): Promise<FileHandleView> {
    const bytes = new TextEncoder().encode(PLACEHOLDER);
    return Promise.resolve({
      stat: () => Promise.resolve({ size: bytes.length, dev: 0, ino: 0, isFile: () => true }),
      read(buffer: Uint8Array, offset: number, length: number, position: number) {
        const part = bytes.subarray(position, position + Math.min(length, bytes.length - position));
        buffer.set(part, offset);
        return Promise.resolve({ bytesRead: part.length });
      },
      close: () => Promise.resolve(),
    });
  },
};

/** A `fetch` that sends `secret` as `client_secret` where the client put the placeholder assertion. */
function secretFetch(secret: string, inner: FetchLike): FetchLike {
  return async (request) => {
    const form = new URLSearchParams(await request.clone().text());
    if (form.get("client_assertion") !== PLACEHOLDER) return inner(request);
    form.delete("client_assertion");
    form.delete("client_assertion_type");
    form.set("client_secret", secret);
    return inner(
      new Request(request.url, {
        method: request.method,
        headers: request.headers,
        body: form.toString(),
        signal: request.signal,
      }),
    );
  };
}

/** The origin's failure for the client's error. */
function failure(error: ManagedIdentityError, secrets: readonly string[]): OriginError {
  const said = `${error.error ?? ""} ${error.errorDescription ?? ""}`;
  const reason: OriginFailure = error.code === "timeout"
    ? "timeout"
    : error.code === "invalid_response"
    ? "invalid_output"
    : /invalid_tenant|\bAADSTS(?:90002|50128|50059|700016)\b/.test(said)
    ? "wrong_tenant"
    : error.code === "invalid_configuration"
    ? "missing"
    : "failed";
  return new OriginError(reason, `service principal: ${safeText(error.message, secrets)}`);
}

/**
 * A token origin for the service principal the env names. Throws an {@linkcode OriginError}
 * `missing` at once when `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, or both of `AZURE_CLIENT_SECRET`
 * and `AZURE_FEDERATED_TOKEN_FILE` are missing.
 */
export function servicePrincipalOrigin(options: ServicePrincipalOptions): TokenOrigin {
  const found = servicePrincipalVariables(options.env, options.tenant);
  if (!found) {
    throw new OriginError(
      "missing",
      "a service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID, and AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE",
    );
  }
  const secrets = found.secret ? [found.secret] : [];
  const inner: FetchLike = options.fetch ?? ((request) => fetch(request));
  let client: ManagedIdentityClient;
  try {
    client = new ManagedIdentityClient(
      {
        env: {
          AZURE_TENANT_ID: found.tenant,
          AZURE_CLIENT_ID: found.clientId,
          // A secret wins over a file, as @azure/identity's EnvironmentCredential reads them.
          AZURE_FEDERATED_TOKEN_FILE: found.secret ? PLACEHOLDER_FILE : found.file,
          ...(found.authority ? { AZURE_AUTHORITY_HOST: found.authority } : {}),
        },
        fetch: found.secret ? secretFetch(found.secret, inner) : inner,
        cache: new TokenCache(),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        ...(found.secret ? { [INTERNAL]: { tokenFileSystem: placeholderFile } } : {}),
      } as ConstructorParameters<typeof ManagedIdentityClient>[0],
    );
  } catch (error) {
    if (error instanceof ManagedIdentityError) throw failure(error, secrets);
    throw error;
  }
  return {
    name: "service principal",
    async token(resource: string, signal: AbortSignal): Promise<OriginToken> {
      try {
        const token = await client.acquireToken(resource, { signal });
        return { accessToken: token.accessToken, expiresOn: Math.floor(token.expiresOn.getTime() / 1000) };
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (error instanceof ManagedIdentityError) throw failure(error, secrets);
        throw new OriginError(
          "failed",
          `service principal: ${safeText(String((error as Error)?.message ?? error), secrets)}`,
        );
      }
    },
  };
}
