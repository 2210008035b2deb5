/**
 * Loopback servers the runner of `deno task interop` (tests/interop/run.ts) puts beside the
 * emulator, in its own (Deno) process:
 *
 * - {@linkcode localVault}: a small Key Vault, `GET /secrets/{name}[/{version}]?api-version=...`,
 *   over HTTPS (the SDK's challenge policy refuses anything else), that answers as Key Vault
 *   does: 401 with a bearer challenge naming the tenant and the resource to a request without
 *   a token; then, once, a CAE claims challenge (`error="insufficient_claims"`, `claims=` the
 *   base64 of a claims request) to a valid token, which it then refuses until a new token comes.
 *   Every token is validated by the runner's `verify` (the emulator's keys, issuer, audience).
 * - {@linkcode entraFront}: a second door to the emulator's Microsoft Entra ID endpoint, plain or
 *   TLS, that records each request's form (for the claims a client sent) before handing the
 *   request to the emulator's own handler.
 */

/** A certificate chain and its key, PEM, for a TLS server. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

/** One request the local vault answered. */
export interface VaultRequest {
  /** The bearer token, or `undefined` without one. */
  readonly token?: string;
  readonly status: number;
  /** Which challenge the answer was, if any. */
  readonly challenge?: "bearer" | "claims";
  /** Why a token was refused. */
  readonly refused?: string;
}

/** A running {@linkcode localVault}. */
export interface LocalVault {
  readonly url: string;
  readonly requests: readonly VaultRequest[];
  /** The claims request the CAE challenge carried (JSON), once sent. */
  readonly claims: string | undefined;
  close(): Promise<void>;
}

/** Options of {@linkcode localVault}. */
export interface LocalVaultOptions {
  readonly tls: TlsFiles;
  /** The tenant the bearer challenge names (`authorization="https://login.microsoftonline.com/<tenant>"`). */
  readonly tenant: string;
  readonly secret: { readonly name: string; readonly value: string };
  /** Validates a bearer token for `https://vault.azure.net`; throws to refuse it. */
  verify(token: string): Promise<unknown>;
}

/** Key Vault's resource, as its bearer challenge names it. */
export const VAULT_RESOURCE = "https://vault.azure.net";

const SECRET_PATH = /^\/secrets\/([^/]+)(?:\/([^/]*))?\/?$/;

/** Starts a {@linkcode LocalVault} on 127.0.0.1 (a free port). */
export function localVault(options: LocalVaultOptions): LocalVault {
  const requests: VaultRequest[] = [];
  const version = crypto.randomUUID().replace(/-/g, "");
  let served = 0;
  let claims: string | undefined;
  let revoked: string | undefined;
  const error = (status: number, code: string, message: string, challenge?: string) =>
    Response.json({ error: { code, message } }, {
      status,
      headers: challenge ? { "www-authenticate": challenge } : {},
    });
  const bearerChallenge =
    `Bearer authorization="https://login.microsoftonline.com/${options.tenant}", resource="${VAULT_RESOURCE}"`;

  async function answer(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const match = SECRET_PATH.exec(url.pathname);
    if (request.method !== "GET" || !match) return error(404, "NotFound", "Only GET /secrets/{name} is served here");
    if (!url.searchParams.get("api-version")) return error(400, "BadParameter", "api-version is required");
    const authorization = request.headers.get("authorization");
    if (!authorization) {
      requests.push({ status: 401, challenge: "bearer" });
      return error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", bearerChallenge);
    }
    const token = /^Bearer (\S+)$/.exec(authorization)?.[1] ?? "";
    try {
      await options.verify(token);
    } catch (reason) {
      const refused = reason instanceof Error ? reason.message : String(reason);
      requests.push({ token, status: 401, refused });
      return error(401, "Unauthorized", `AKV10032: Invalid token: ${refused}`, bearerChallenge);
    }
    if (token === revoked) {
      requests.push({ token, status: 401, refused: "revoked by the claims challenge" });
      return error(401, "Unauthorized", "The token was revoked", bearerChallenge);
    }
    if (served === 1 && claims === undefined) {
      // Continuous access evaluation: the token is valid but no longer enough, as after a
      // password reset; the client must come back with a token obtained with these claims.
      revoked = token;
      const notBefore = String(Math.floor(Date.now() / 1000));
      claims = JSON.stringify({ access_token: { nbf: { essential: true, value: notBefore } } });
      requests.push({ token, status: 401, challenge: "claims" });
      return error(
        401,
        "Unauthorized",
        "Continuous access evaluation: the token needs new claims",
        `Bearer realm="", error="insufficient_claims", claims="${btoa(claims)}"`,
      );
    }
    if (decodeURIComponent(match[1]!) !== options.secret.name) {
      requests.push({ token, status: 404 });
      return error(404, "SecretNotFound", `A secret with (name/id) ${match[1]} was not found in this key vault`);
    }
    served++;
    requests.push({ token, status: 200 });
    const created = Math.floor(Date.now() / 1000);
    return Response.json({
      value: options.secret.value,
      id: `${url.origin}/secrets/${options.secret.name}/${version}`,
      attributes: {
        enabled: true,
        created,
        updated: created,
        recoveryLevel: "Recoverable+Purgeable",
        recoverableDays: 90,
      },
      tags: {},
    });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: options.tls.cert, key: options.tls.key, onListen() {} },
    answer,
  );
  return {
    url: `https://127.0.0.1:${server.addr.port}`,
    requests,
    get claims() {
      return claims;
    },
    close: () => server.shutdown(),
  };
}

/** One request through an {@linkcode EntraFront}: its path and form fields. */
export interface FrontRequest {
  readonly method: string;
  readonly path: string;
  readonly form: Readonly<Record<string, string>>;
  readonly status: number;
}

/** A running {@linkcode entraFront}. */
export interface EntraFront {
  /** `http://127.0.0.1:<port>` or `https://...`. */
  readonly origin: string;
  readonly requests: readonly FrontRequest[];
  close(): Promise<void>;
}

/**
 * Serves `handler` (the emulator's WorkloadIdentity endpoint, its token endpoint and OpenID
 * documents) on another loopback port, plain or over TLS, recording every request's form.
 */
export function entraFront(handler: (request: Request) => Promise<Response>, tls?: TlsFiles): EntraFront {
  const requests: FrontRequest[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, ...tls, onListen() {} }, async (request) => {
    // Read once and handed on as a new Request (a clone would tie the copy to this request's signal).
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.text();
    const type = request.headers.get("content-type") ?? "";
    const form = type.startsWith("application/x-www-form-urlencoded")
      ? Object.fromEntries(new URLSearchParams(body ?? ""))
      : {};
    const response = await handler(
      new Request(request.url, { method: request.method, headers: request.headers, body }),
    );
    requests.push({ method: request.method, path: new URL(request.url).pathname, form, status: response.status });
    return response;
  });
  return {
    origin: `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}
