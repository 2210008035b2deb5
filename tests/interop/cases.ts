/**
 * The cases of `deno task interop` (run.ts), each one run of a child (children.ts) against an
 * emulator of its own: the reference clients against the emulator and its relay, Service
 * Fabric's TLS refused without the development CA, `@azure/storage-blob` against Azurite and
 * `@azure/keyvault-secrets` against a local vault; the check of the emulator's tokens, the known
 * causes of failures and Azurite's start.
 */

import assert from "node:assert/strict";
import { createRemoteJWKSet, customFetch, jwtVerify } from "npm:jose@6";
import {
  EMULATOR_TENANT,
  OriginError,
  type OriginFailure,
  readClaims,
  type RunningEmulator,
  serve,
  type Source,
  type TokenOrigin,
} from "../../src/emulator/mod.ts";
import { certs, child, expectOk, type Runtime, tools } from "./children.ts";
import { type EntraFront, entraFront, localVault, VAULT_RESOURCE } from "./local_servers.ts";
import { cleanups, modulesDirectory } from "./setup.ts";

/** The reference clients: `@azure/identity`'s ManagedIdentityCredential and msal-node's ManagedIdentityApplication. */
export type Peer = "identity" | "msal";
const PEER_RESOURCE = "https://management.azure.com";
const STORAGE_RESOURCE = "https://storage.azure.com";

// ---------------------------------------------------------------------------------------------
// Checks.

/** A fetch for the runner itself that trusts the development CA (the Service Fabric server's keys). */
let trustingFetch: typeof fetch;

/** Makes trustingFetch trust these certificates (its client is closed by the cleanup). */
export function trustInChecks(caPems: readonly string[]): void {
  const caClient = Deno.createHttpClient({ caCerts: [...caPems] });
  cleanups.push(() => caClient.close());
  trustingFetch = (input, init) => fetch(input, { ...init, client: caClient });
}

/**
 * Validates `token` as an API would validate Entra's: its RS256 signature with the emulator's
 * keys (`jwksUri`), its issuer, its audience and times (jose), then the identity and tenant.
 */
async function verifyEmulatorToken(
  running: RunningEmulator,
  token: string,
  audience: string,
): Promise<Record<string, unknown>> {
  const keys = createRemoteJWKSet(new URL(running.jwksUri), { [customFetch]: trustingFetch });
  const { payload, protectedHeader } = await jwtVerify(token, keys, { issuer: running.issuer, audience }).catch(
    (error: Error) => {
      const claims = readClaims(token);
      throw new Error(
        `not the emulator's token for ${audience}: ${error.message} (claims: ${
          claims ? JSON.stringify({ aud: claims.aud, iss: claims.iss, appid: claims.appid }) : "none, not a JWT"
        })`,
      );
    },
  );
  assert.equal(protectedHeader.alg, "RS256");
  assert.equal(payload.appid, running.emulator.systemIdentity.clientId, "the identity of this emulator instance");
  assert.equal(payload.tid, EMULATOR_TENANT);
  return payload;
}

// ---------------------------------------------------------------------------------------------
// Cases.

/** One case: a line of the report, and a cell of the table for the reference-client matrix. */
export interface Case {
  readonly name: string;
  /** Set for the reference-client matrix. */
  readonly cell?: { source: Source; column: string };
  /** Why it is skipped, if it is (asked when its turn comes). */
  readonly skip?: () => string | undefined;
  /** Passes when it returns (a short note); fails when it throws. */
  run(): Promise<string>;
  /** A known cause for a failure, when the runner can tell. */
  diagnose?(error: Error): string | undefined;
}

/** Facts about the emulator gathered once, for the known-cause hints of failures. */
const emulatorFacts = { arcChallengeBody: undefined as string | undefined };

export async function peerCase(
  runtime: Runtime,
  peer: Peer,
  source: Source,
  arcDirectory: string | undefined,
): Promise<string> {
  const running = await serve({
    sources: [source],
    ...(source === "AzureArc" ? { arcKeyDirectory: arcDirectory } : {}),
  });
  let front: EntraFront | undefined;
  try {
    let env: Record<string, string> = { ...running.env[source] };
    if (source === "WorkloadIdentity") {
      // @azure/identity refuses an http: authority host ("The authorityHost address must use the
      // 'https' protocol"), which is what the emulator serves: the same endpoint over TLS.
      front = entraFront(running.emulator.handler(source), certs.tls);
      env = { ...env, AZURE_AUTHORITY_HOST: `${front.origin}/` };
    }
    const result = expectOk(await child(runtime, "peer.ts", [peer, PEER_RESOURCE], env));
    const token = String(result.token);
    const claims = await verifyEmulatorToken(running, token, PEER_RESOURCE);
    const log = running.emulator.requests.filter((request) => request.source === source);
    assert.equal(log.at(-1)?.status, 200, "the emulator's last answer was the token");
    if (source === "AzureArc") {
      assert.deepEqual(log.map((r) => r.status), [401, 200], "Arc's challenge, then the token");
    }
    assert.ok(Number(result.expiresOn) > Date.now(), "an expiry in the future");
    return `aud ${claims.aud}, signature verified` + (source === "AzureArc" ? ", after the 401 challenge" : "");
  } finally {
    await front?.close();
    await running.close();
  }
}

/** An origin of real tokens stood in for: one JWT-shaped token an hour from now, or a failure; calls counted. */
function countingOrigin(failure?: OriginFailure): TokenOrigin & { calls: number; token: TokenOrigin["token"] } {
  const origin = {
    name: "fake az",
    calls: 0,
    token(_resource: string, _signal: AbortSignal) {
      origin.calls++;
      if (failure) {
        return Promise.reject(new OriginError(failure, "Please run 'az login' to setup account."));
      }
      return Promise.resolve({
        accessToken: `eyJ0eXAiOiJKV1QifQ.eyJyZWxheWVkIjp0cnVlfQ.${crypto.randomUUID().replace(/-/g, "")}`,
        expiresOn: Math.floor(Date.now() / 1000) + 3600,
      });
    },
  };
  return origin;
}

/**
 * The relay (`serve({ origin })`): a reference client gets the origin's token as it is, over App
 * Service or IMDS, with one origin call; both run the request on their own.
 */
export async function relayCase(runtime: Runtime, peer: Peer, source: Source): Promise<string> {
  const origin = countingOrigin();
  let served: string | undefined;
  const recording: TokenOrigin = {
    name: origin.name,
    token: async (resource, signal) => {
      const token = await origin.token(resource, signal);
      served = token.accessToken;
      return token;
    },
  };
  const running = await serve({ origin: recording, sources: [source] });
  try {
    const result = expectOk(await child(runtime, "peer.ts", [peer, PEER_RESOURCE], { ...running.env[source] }));
    assert.equal(result.token, served, "the origin's token, as it is");
    assert.equal(origin.calls, 1, "one origin call");
    const expiresOn = Number(result.expiresOn);
    assert.ok(expiresOn > Date.now() + 3000_000 && expiresOn <= Date.now() + 3600_000, "the origin's expiry");
    return "the origin's token, one origin call";
  } finally {
    await running.close();
  }
}

/**
 * The relay's failures as a reference client sees them: a person must act (`signed_out`, 400)
 * is not retried, a tool that failed (`failed`, 500) is retried 3 times by msal-node (and so by
 * `@azure/identity`, which hands App Service to it); the origin's message reaches the client.
 */
export async function relayFailureCase(
  runtime: Runtime,
  peer: Peer,
  source: Source,
  failure: OriginFailure,
): Promise<string> {
  const origin = countingOrigin(failure);
  const running = await serve({ origin, sources: [source] });
  try {
    const outcome = await child(runtime, "peer.ts", [peer, PEER_RESOURCE], { ...running.env[source] });
    assert.equal(outcome.result?.ok, false, "the client failed");
    const error = outcome.result!.error as Record<string, unknown>;
    assert.match(String(error.message), /az login/, "the origin's message reached the client");
    const expected = failure === "failed" ? 4 : 1;
    assert.equal(origin.calls, expected, `${expected} origin call(s)`);
    return `${error.name}${error.code ? ` ${error.code}` : ""}, ${origin.calls} origin call(s)`;
  } finally {
    await running.close();
  }
}

/** Service Fabric without the development CA: the client must refuse the certificate. */
export async function untrustedCase(runtime: Runtime): Promise<string> {
  const running = await serve({ sources: ["ServiceFabric"] });
  try {
    const outcome = await child(runtime, "peer.ts", ["msal", PEER_RESOURCE], { ...running.env.ServiceFabric }, {
      trustCa: false,
    });
    assert.ok(outcome.result, `no result: ${outcome.stderr.trim().split("\n").slice(-3).join(" ")}`);
    assert.equal(outcome.result.ok, false, "msal-node got a token from a server it should not trust");
    const error = outcome.result.error as Record<string, unknown>;
    assert.equal(error.code, "network_error", `refused with ${JSON.stringify(error)}`);
    assert.equal(running.emulator.requests.length, 0, "no request reached the emulator");
    return `refused before any request: ${String(error.message).slice(0, 90)}`;
  } finally {
    await running.close();
  }
}

export async function storageCase(runtime: Runtime, azurite: string): Promise<string> {
  const running = await serve({ sources: ["AppService"] });
  try {
    const container = `interop-${runtime}-${crypto.randomUUID().slice(0, 8)}`;
    const result = expectOk(
      await child(runtime, "storage.ts", [azurite, container], {
        AZMI_INTEROP_CLIENT_ENV: JSON.stringify(running.env.AppService),
      }),
    );
    const storage = result.storageClaims as Record<string, unknown>;
    const vault = result.vaultClaims as Record<string, unknown>;
    const refusal = result.refusal as Record<string, unknown>;
    assert.equal(storage.aud, STORAGE_RESOURCE);
    assert.equal(storage.appid, running.emulator.systemIdentity.clientId);
    assert.equal(vault.aud, VAULT_RESOURCE);
    assert.ok(refusal.status === 403 || refusal.status === 401, `refused with ${refusal.status}`);
    // Our client asked the emulator once per audience, over App Service's protocol.
    const resources = running.emulator.requests.map((r) => [new URL(r.url).searchParams.get("resource"), r.status]);
    assert.deepEqual(resources, [[STORAGE_RESOURCE, 200], [VAULT_RESOURCE, 200]]);
    return `${result.bytes} bytes up and down; the ${VAULT_RESOURCE} token refused with ${refusal.status} ${
      refusal.errorCode ?? ""
    }`.trim();
  } finally {
    await running.close();
  }
}

export async function keyVaultCase(runtime: Runtime): Promise<string> {
  const running = await serve({ sources: ["WorkloadIdentity"] });
  // Our client's token requests go through a recording front, to see the claims it sends.
  const front = entraFront(running.emulator.handler("WorkloadIdentity"));
  const secret = { name: "interop-secret", value: `value-${crypto.randomUUID()}` };
  const vault = localVault({
    tls: certs.tls,
    tenant: EMULATOR_TENANT,
    secret,
    verify: (token) => verifyEmulatorToken(running, token, VAULT_RESOURCE),
  });
  try {
    const env = { ...running.env.WorkloadIdentity, AZURE_AUTHORITY_HOST: `${front.origin}/` };
    const result = expectOk(
      await child(runtime, "key_vault.ts", [vault.url, secret.name], { AZMI_INTEROP_CLIENT_ENV: JSON.stringify(env) }),
    );
    assert.deepEqual(result.reads, [secret.value, secret.value]);
    const seen = vault.requests.map((r) => `${r.status}${r.challenge ? ` ${r.challenge}` : ""}`);
    assert.deepEqual(
      seen,
      ["401 bearer", "200", "401 claims", "200"],
      `the vault saw ${JSON.stringify(vault.requests)}`,
    );
    const [first, second] = [vault.requests[1]!.token!, vault.requests[3]!.token!];
    assert.equal(vault.requests[2]!.token, first, "the second read came with the cached token");
    assert.notEqual(second, first, "after the claims challenge, a new token");
    assert.equal(readClaims(second)?.aud, VAULT_RESOURCE);
    // The emulator's Entra endpoint received the claims with the second token request only.
    const tokens = front.requests.filter((r) => r.method === "POST");
    assert.equal(tokens.length, 2, `token requests: ${JSON.stringify(tokens.map((r) => r.path))}`);
    assert.equal(tokens[0]!.form.claims, undefined);
    assert.ok(vault.claims, "the vault sent a claims challenge");
    assert.equal(tokens[1]!.form.claims, vault.claims, "the claims reached the emulator as the vault sent them");
    assert.equal(tokens[1]!.form.scope, `${VAULT_RESOURCE}/.default`);
    assert.ok(tokens.every((r) => r.status === 200));
    return "bearer challenge answered, then the CAE challenge with a new token carrying the claims";
  } finally {
    await vault.close();
    await front.close();
    await running.close();
  }
}

/** Runs Azurite (blob) on a free loopback port over HTTPS with basic OAuth; resolves to its account URL. */
export async function startAzurite(directory: string): Promise<string> {
  const main = `${modulesDirectory}/node_modules/azurite/dist/src/blob/main.js`;
  const workspace = await Deno.makeTempDir({ dir: directory, prefix: "azurite-" });
  const azurite = new Deno.Command(tools.node, {
    args: [
      main,
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      "0",
      "--oauth",
      "basic",
      "--cert",
      certs.certFile,
      "--key",
      certs.keyFile,
      "--inMemoryPersistence",
      "--disableTelemetry",
      "--skipApiVersionCheck",
      "--loose",
      "--silent",
    ],
    cwd: workspace,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: workspace, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const exited = azurite.status;
  cleanups.push(async () => {
    const kill = setTimeout(() => azurite.kill("SIGKILL"), 5000);
    try {
      azurite.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await exited;
    clearTimeout(kill);
  });
  const stderr = new Response(azurite.stderr).text();
  const reader = azurite.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => azurite.kill("SIGKILL"), 60_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Azurite stopped: ${seen.trim()} ${(await stderr).trim()}`);
      seen += value;
      const url = /successfully listens on (https:\/\/127\.0\.0\.1:\d+)/.exec(seen)?.[1];
      if (url) {
        // Keep draining its output, so it never blocks on a full pipe.
        (async () => {
          while (!(await reader.read()).done);
        })().catch(() => {});
        return `${url}/devstoreaccount1`;
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}

/** Learns what the known-cause hints need: the body of Azure Arc's challenge. */
export async function gatherFacts(arcDirectory: string | undefined): Promise<void> {
  if (!arcDirectory) return;
  const running = await serve({ sources: ["AzureArc"], arcKeyDirectory: arcDirectory });
  try {
    const url = `${running.urls.AzureArc}?api-version=2020-06-01&resource=${encodeURIComponent(PEER_RESOURCE)}`;
    const response = await fetch(url, { headers: { Metadata: "true" } });
    emulatorFacts.arcChallengeBody = await response.text();
  } finally {
    await running.close();
  }
}

/** Known causes, from what the failures say and what the emulator was seen to do. */
export function peerDiagnosis(runtime: Runtime, peer: Peer, source: Source): (error: Error) => string | undefined {
  return (error: Error): string | undefined => {
    if (source === "AzureArc" && peer === "msal" && /token_parsing_error|JSON/.test(error.message)) {
      return emulatorFacts.arcChallengeBody === ""
        ? "the emulator's Arc challenge (401) has an empty body, which msal-node parses as JSON before it reads " +
          "WWW-Authenticate (an emulator fix, src/emulator/emulator.ts: a JSON error body with the challenge)"
        : undefined;
    }
    if (source === "ServiceFabric" && runtime === "deno" && certs.serverIsCa) {
      return "the emulator's development certificate is CA:TRUE, which rustls refuses as a server's " +
        "(CaUsedAsEndEntity); the emulator needs a CA and a CA:FALSE server certificate (src/emulator/dev_cert.ts)";
    }
    if (source === "WorkloadIdentity" && /endpoints_resolution_error/.test(error.message)) {
      return "msal-node found no /{tenant}/v2.0/.well-known/openid-configuration on the emulator's Entra endpoint";
    }
    return undefined;
  };
}
