/**
 * `deno task interop`: the emulator and ManagedIdentityClient against the real Azure SDK and
 * Azurite, on Node 24, Bun 1 and Deno 2, on loopback only (127.0.0.1). Not part of
 * `deno task test`: it installs npm packages and starts about fifty processes.
 *
 * 1. Reference clients against the emulator. For every source `serve()` emulates,
 *    `@azure/identity`'s `ManagedIdentityCredential` and msal-node's `ManagedIdentityApplication`
 *    each get a token in a child process (peer.ts) whose environment is that source's variables
 *    (`env[source]`), on each runtime; the token must be the emulator's: its RS256 signature
 *    verifies with the emulator's keys, its issuer is the emulator's, its `aud` the resource, its
 *    `appid` the identity of that emulator instance, and the emulator's log shows the request
 *    (for Azure Arc, the 401 challenge and then the token). Plus one negative control per
 *    runtime: without the development CA, Service Fabric's TLS is refused (so TLS is verified).
 * 2. `@azure/storage-blob` with our client as its credential against Azurite (`--oauth basic`,
 *    HTTPS): a container, a blob uploaded, downloaded and compared; a token for another audience
 *    refused (storage.ts).
 * 3. `@azure/keyvault-secrets` with our client against a local vault: the bearer challenge, then
 *    a CAE claims challenge, after which the client must come back with a new token obtained
 *    with those claims, which the emulator's Entra endpoint must have received (key_vault.ts,
 *    local_servers.ts).
 *
 * Prints a line per case, a table of the reference clients per source and runtime, and
 * "N passed, M failed"; exits 1 on any failure (or when no case ran). `deno task interop
 * <word>...` runs only the cases whose name has words beginning with each (`deno task interop
 * bun msal`, `deno task interop deno storage`).
 *
 * What it needs and what it leaves:
 * - npm packages (packages.ts) installed with npm into `.runtimes/interop/` (gitignored; or
 *   `AZMI_INTEROP_DIR`), once; Deno's cache filled with the same versions before any child runs.
 *   Node 24 and Bun 1 from PATH, else installed into `.runtimes/` as `deno task test` does.
 * - Children get a fresh environment (PATH, HOME, DENO_DIR and what the case gives), never this
 *   process's, and `AZURE_POD_IDENTITY_AUTHORITY_HOST` pointing at a closed loopback port, so a
 *   client that falls back to IMDS reaches nothing rather than 169.254.169.254 (msal-node
 *   does, given only workload identity's variables). Deno children run with
 *   `--allow-net=127.0.0.1 --cached-only`. Azurite runs with `--disableTelemetry`.
 * - Azure Arc: both reference clients accept a challenge's key file only at
 *   `/var/opt/azcmagent/tokens/<name>.key` on Linux (msal-node's AzureArc.ts, which
 *   `@azure/identity` 4.14 delegates every source but AKS workload identity to; see
 *   ARC_KEY_DIRECTORY in setup.ts). The runner creates that directory only when it does not exist
 *   (needs root, as CI has) and removes what it created at the end, also on Ctrl+C; where it
 *   cannot, the Azure Arc cases are skipped, saying why.
 * - Every child, server and Azurite has a deadline; the whole run stops after 15 minutes.
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
import { locate } from "../helpers/runtimes.ts";
import { closedPort } from "../helpers/sockets.ts";
import { certificates } from "./certificates.ts";
import { certs, child, expectOk, prepareChildren, type Runtime, tools } from "./children.ts";
import { type EntraFront, entraFront, localVault, VAULT_RESOURCE } from "./local_servers.ts";
import { PACKAGES } from "./packages.ts";
import {
  arcKeyDirectory,
  cleanup,
  cleanups,
  guardRun,
  here,
  installPackages,
  modulesDirectory,
  run,
  seconds,
  versionOf,
} from "./setup.ts";

const PEER_RESOURCE = "https://management.azure.com";
const STORAGE_RESOURCE = "https://storage.azure.com";

type Peer = "identity" | "msal";
const RUNTIMES: readonly Runtime[] = ["node", "bun", "deno"];
const PEERS: Readonly<Record<Peer, string>> = {
  identity: `@azure/identity ${PACKAGES["@azure/identity"]}`,
  msal: `msal-node ${PACKAGES["@azure/msal-node"]}`,
};
/** The sources of the reference-client matrix, in the README's order. */
const PEER_SOURCES: readonly Source[] = [
  "DefaultToIMDS",
  "AppService",
  "AzureML",
  "CloudShell",
  "AzureArc",
  "ServiceFabric",
  "WorkloadIdentity",
];
/** What a reference client does not do, and so is not asked. */
const NOT_APPLICABLE: Partial<Record<`${Peer} ${Source}`, string>> = {
  "msal WorkloadIdentity": "msal-node's ManagedIdentityApplication has no workload identity source (given only its " +
    "variables, it falls back to IMDS); @azure/identity's ManagedIdentityCredential does it with WorkloadIdentityCredential",
};

// ---------------------------------------------------------------------------------------------
// Checks.

/** A fetch for the runner itself that trusts the development CA (the Service Fabric server's keys). */
let trustingFetch: typeof fetch;

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

interface Case {
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

async function peerCase(
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
async function relayCase(runtime: Runtime, peer: Peer, source: Source): Promise<string> {
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
async function relayFailureCase(runtime: Runtime, peer: Peer, source: Source, failure: OriginFailure): Promise<string> {
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
async function untrustedCase(runtime: Runtime): Promise<string> {
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

async function storageCase(runtime: Runtime, azurite: string): Promise<string> {
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

async function keyVaultCase(runtime: Runtime): Promise<string> {
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
async function startAzurite(directory: string): Promise<string> {
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
async function gatherFacts(arcDirectory: string | undefined): Promise<void> {
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
function peerDiagnosis(runtime: Runtime, peer: Peer, source: Source) {
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

function cases(arc: { path?: string; skip?: string }, azurite: () => Promise<string>): Case[] {
  const list: Case[] = [];
  for (const runtime of RUNTIMES) {
    for (const source of PEER_SOURCES) {
      for (const peer of ["identity", "msal"] as const) {
        if (NOT_APPLICABLE[`${peer} ${source}`]) continue;
        list.push({
          name: `${runtime} ${PEERS[peer]} ${source}: a token from the emulator`,
          cell: { source, column: `${runtime} ${peer}` },
          ...(source === "AzureArc" ? { skip: () => arc.skip } : {}),
          run: () => peerCase(runtime, peer, source, arc.path),
          diagnose: peerDiagnosis(runtime, peer, source),
        });
      }
    }
    for (const peer of ["identity", "msal"] as const) {
      for (const source of ["AppService", "DefaultToIMDS"] as const) {
        list.push({
          name: `${runtime} ${PEERS[peer]} relay ${source}: the origin's token`,
          run: () => relayCase(runtime, peer, source),
        });
        list.push({
          name: `${runtime} ${PEERS[peer]} relay ${source} signed out: the message, not retried`,
          run: () => relayFailureCase(runtime, peer, source, "signed_out"),
        });
      }
      list.push({
        name: `${runtime} ${PEERS[peer]} relay AppService failed: the message, retried 3 times`,
        run: () => relayFailureCase(runtime, peer, "AppService", "failed"),
      });
    }
    list.push({
      name: `${runtime} ${PEERS.msal} ServiceFabric: without the development CA, the certificate is refused`,
      run: () => untrustedCase(runtime),
    });
    list.push({
      name: `${runtime} @azure/storage-blob ${
        PACKAGES["@azure/storage-blob"]
      } + azmi against Azurite ${PACKAGES.azurite} (OAuth, HTTPS): container, upload, download; another audience refused`,
      run: async () => storageCase(runtime, await azurite()),
    });
    list.push({
      name: `${runtime} @azure/keyvault-secrets ${
        PACKAGES["@azure/keyvault-secrets"]
      } + azmi against a local vault: bearer challenge, CAE claims challenge`,
      run: () => keyVaultCase(runtime),
    });
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Main.

interface Outcome {
  readonly test: Case;
  readonly status: "ok" | "FAIL" | "skip";
  readonly ms: number;
  readonly note: string;
}

async function main(filters: string[]): Promise<number> {
  const started = performance.now();
  const workspace = await Deno.makeTempDir({ prefix: "azmi-interop-" });
  cleanups.push(() => Deno.remove(workspace, { recursive: true }));

  const setup = performance.now();
  const [node, bun] = [await locate("node", 24), await locate("bun", 1)];
  const versions = await installPackages();
  // Deno's cache, filled now so that Deno children can run with --cached-only.
  await run(Deno.execPath(), ["cache", "--quiet", "peer.ts", "storage.ts", "key_vault.ts"], 600_000, here);
  const certs = await certificates(workspace);
  prepareChildren({ tools: { node, bun, deno: Deno.execPath() }, certs, guardPort: await closedPort() });
  const caClient = Deno.createHttpClient({ caCerts: [...certs.caPems] });
  cleanups.push(() => caClient.close());
  trustingFetch = (input, init) => fetch(input, { ...init, client: caClient });
  console.log(
    `# node ${(await versionOf(node))?.replace(/^v/, "")}, bun ${await versionOf(bun)}, deno ${Deno.version.deno}; ${
      Object.entries(versions).map(([name, version]) => `${name} ${version}`).join(", ")
    }`,
  );
  console.log(`# TLS (Service Fabric's emulator, Azurite, the local vault): ${certs.description}`);

  // Each word must begin a word of the name: "node" picks Node's cases, not msal-node's.
  const wanted = (test: Case) => {
    const words = test.name.toLowerCase().split(/[\s:/@+(),;]+/);
    return filters.every((filter) => words.some((word) => word.startsWith(filter.toLowerCase())));
  };
  const arc: { path?: string; skip?: string } = {};
  let azuriteStart: Promise<string> | undefined;
  let azuriteMs = 0;
  const azurite = () =>
    azuriteStart ??= (async () => {
      const at = performance.now();
      const url = await startAzurite(workspace);
      azuriteMs = performance.now() - at;
      return url;
    })();
  const selected = cases(arc, azurite).filter(wanted);
  if (selected.some((test) => test.cell?.source === "AzureArc")) Object.assign(arc, await arcKeyDirectory());
  await gatherFacts(arc.path);
  const setupMs = performance.now() - setup;
  console.log(`# setup ${seconds(setupMs)}; ${selected.length} cases\n`);

  // The cases, a few at a time (each is one child process and its own emulator).
  const outcomes: Outcome[] = [];
  const queue = [...selected];
  const width = Math.max(2, Math.min(6, navigator.hardwareConcurrency * 2));
  const casesStarted = performance.now();
  await Promise.all(Array.from({ length: width }, async () => {
    for (let test = queue.shift(); test; test = queue.shift()) {
      const at = performance.now();
      let outcome: Outcome;
      const skip = test.skip?.();
      if (skip) {
        outcome = { test, status: "skip", ms: 0, note: skip };
      } else {
        try {
          outcome = { test, status: "ok", ms: 0, note: await test.run() };
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          const hint = test.diagnose?.(failure);
          outcome = {
            test,
            status: "FAIL",
            ms: 0,
            note: `${failure.message}${hint ? `\n  known cause: ${hint}` : ""}`,
          };
        }
      }
      outcome = { ...outcome, ms: performance.now() - at };
      outcomes.push(outcome);
      console.log(
        `${outcome.status.padEnd(4)} ${test.name} (${seconds(outcome.ms)})\n  ${outcome.note.replace(/\n/g, "\n  ")}`,
      );
    }
  }));
  const casesMs = performance.now() - casesStarted;

  // The reference clients per source and runtime.
  const matrix = outcomes.filter((o) => o.test.cell);
  if (matrix.length > 0) {
    const columns = RUNTIMES.flatMap((runtime) => (["identity", "msal"] as const).map((peer) => `${runtime} ${peer}`));
    const rows = [["source", ...columns]];
    for (const source of PEER_SOURCES.filter((s) => matrix.some((o) => o.test.cell!.source === s))) {
      rows.push([
        source,
        ...columns.map((column) => {
          const found = matrix.find((o) => o.test.cell!.source === source && o.test.cell!.column === column);
          if (found) return found.status.toLowerCase();
          return NOT_APPLICABLE[`${column.split(" ")[1] as Peer} ${source}`] ? "n/a" : "";
        }),
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
    const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
    console.log(`\n${PEERS.identity} (identity) and ${PEERS.msal} (msal) against the emulator:`);
    console.log([line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)]
      .join("\n"));
    for (const [key, why] of Object.entries(NOT_APPLICABLE)) {
      if (rows.some((row) => row[0] === key.split(" ")[1])) console.log(`n/a (${key}): ${why}`);
    }
  }

  const failed = outcomes.filter((o) => o.status === "FAIL");
  const skipped = outcomes.filter((o) => o.status === "skip");
  if (failed.length > 0) {
    console.log(`\nFailed:`);
    for (const o of failed) console.log(`- ${o.test.name}\n  ${o.note.replace(/\n/g, "\n  ")}`);
  }
  console.log(
    `\n# setup ${seconds(setupMs)} (Azurite start ${seconds(azuriteMs)}), cases ${seconds(casesMs)}, total ${
      seconds(performance.now() - started)
    }`,
  );
  const passed = outcomes.filter((o) => o.status === "ok").length;
  await cleanup(); // before the last line, which is the summary
  console.log(
    `${passed} passed, ${failed.length} failed${
      skipped.length ? ` (${skipped.length} skipped: ${[...new Set(skipped.map((o) => o.note))].join("; ")})` : ""
    }`,
  );
  return failed.length === 0 && passed > 0 ? 0 : 1;
}

guardRun();
let code = 1;
try {
  code = await main(Deno.args);
} catch (error) {
  console.error(`interop: ${error instanceof Error ? error.stack ?? error.message : error}`);
} finally {
  await cleanup();
}
Deno.exit(code);
