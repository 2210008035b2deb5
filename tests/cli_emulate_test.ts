/**
 * `azmi emulate`, and the CLI against the emulator as Microsoft Entra ID for workload identity
 * (AKS). Every request goes to the emulator: nothing leaves the machine.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { createEmulator, type Emulator, EMULATOR_TENANT, readClaims } from "../src/emulator/mod.ts";
import { parseExports, startEmulate } from "./helpers/emulate.ts";
import { emulatedEndpoint, run, VAULT } from "./helpers/cli.ts";

describe("azmi emulate", () => {
  test("prints export lines that a client can use, and stops when the signal aborts", async () => {
    const emulate = await startEmulate(["--source", "appservice", "--lifetime", "7200"]);
    const out = emulate.out();
    try {
      const env = parseExports(out);
      assert.deepEqual(Object.keys(env), ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]);
      assert.match(out, /^# AppService: http:\/\/127\.0\.0\.1:\d+\/msi\/token/m);
      assert.match(out, /throwaway secret/);

      const client = new ManagedIdentityClient({ env, cache: new TokenCache() });
      const token = await client.acquireToken(VAULT);
      assert.equal(token.source, "AppService");
      assert.equal(readClaims(token.accessToken)?.aud, VAULT);
      assert.ok(token.expiresOn.getTime() > Date.now() + 110 * 60_000);
      // The issuer and keys that validate the tokens are printed, and the keys are served.
      assert.match(out, new RegExp(`issuer https://sts\\.windows\\.net/${EMULATOR_TENANT}/ `));
      assert.equal(readClaims(token.accessToken)?.iss, `https://sts.windows.net/${EMULATOR_TENANT}/`);
      const jwksUri = /keys at\n# (http:\S+\/discovery\/keys) /.exec(out)?.[1];
      assert.ok(jwksUri, "the keys' URL is printed");
      const { keys } = await (await fetch(jwksUri)).json() as { keys: { kid: string }[] };
      assert.equal(keys.length, 1);

      const clientId = /client ID: +([0-9a-f-]{36})/.exec(out)?.[1];
      assert.ok(clientId, "the user-assigned client ID is printed");
      const user = new ManagedIdentityClient({ env, clientId, cache: new TokenCache() });
      assert.equal(readClaims((await user.acquireToken(VAULT)).accessToken)?.appid, clientId);
    } finally {
      emulate.stop.abort();
    }
    assert.equal(await emulate.running, EXIT_CODES.ok);
    assert.match(emulate.err(), /stopped/);
    // Stopped means stopped: nothing listens any more.
    const after = new ManagedIdentityClient({ env: parseExports(out), cache: new TokenCache(), retry: false });
    await assert.rejects(
      after.acquireToken(VAULT),
      (error: unknown) => error instanceof ManagedIdentityError && error.code === "unavailable",
    );
  });
});

describe("azmi emulate --source servicefabric", () => {
  test("says Service Fabric takes an object ID only, and a client gets that identity's token with it", async () => {
    const emulate = await startEmulate(["--source", "servicefabric"]);
    const out = emulate.out();
    try {
      assert.match(out, /^# ServiceFabric: https:\/\/\S+ \(user-assigned identity: object ID only, as principalId\)$/m);
      const objectId = /object ID: +([0-9a-f-]{36})/.exec(out)?.[1];
      assert.ok(objectId, "the user-assigned object ID is printed");
      const client = new ManagedIdentityClient({ env: parseExports(out), objectId, cache: new TokenCache() });
      assert.equal(readClaims((await client.acquireToken(VAULT)).accessToken)?.oid, objectId);
    } finally {
      emulate.stop.abort();
    }
    assert.equal(await emulate.running, EXIT_CODES.ok);
  });
});

describe("azmi and workload identity (AKS)", () => {
  // Every request goes to the emulator's handler, at a loopback authority host: nothing leaves the machine.
  const AUTHORITY = "http://127.0.0.1:41741/";
  const TOKEN_URL = `http://127.0.0.1:41741/${EMULATOR_TENANT}/oauth2/v2.0/token`;

  async function withWorkload<T>(
    body: (w: {
      dir: string;
      emulator: Emulator;
      file: string;
      assertion: string;
      env: Record<string, string>;
      endpoint: ReturnType<typeof emulatedEndpoint>;
    }) => Promise<T>,
  ): Promise<T> {
    const dir = await mkdtemp(`${tmpdir()}/azmi-cli-wi-`);
    const emulator = createEmulator({ federatedTokenDirectory: dir });
    try {
      const file = await emulator.federatedTokenFile();
      const env = {
        AZURE_FEDERATED_TOKEN_FILE: file,
        AZURE_TENANT_ID: EMULATOR_TENANT,
        AZURE_CLIENT_ID: emulator.systemIdentity.clientId,
        AZURE_AUTHORITY_HOST: AUTHORITY,
      };
      const endpoint = emulatedEndpoint(emulator, "WorkloadIdentity");
      const result = await body({ dir, emulator, file, assertion: await readFile(file, "utf8"), env, endpoint });
      for (const request of endpoint.requests) assert.equal(new URL(request.url).hostname, "127.0.0.1", request.url);
      return result;
    } finally {
      await emulator.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Neither the assertion nor any 16 characters in a row of it appear in `text`. */
  function assertNoAssertion(text: string, assertion: string): void {
    assert.ok(assertion.length > 100, "a real assertion to look for");
    assert.ok(!text.includes(assertion), "the assertion is printed");
    for (let at = 0; at + 16 <= assertion.length; at++) {
      const run = assertion.slice(at, at + 16);
      if (text.includes(run)) assert.fail(`16 characters of the assertion are printed (at ${at}): ${run}`);
    }
  }

  /** Rewrites the token file with the same assertion but another subject (and so no valid signature). */
  async function otherSubject(file: string, assertion: string): Promise<string> {
    const [header, , signature] = assertion.split(".");
    const claims = { ...readClaims(assertion), sub: "system:serviceaccount:default:someone-else" };
    const changed = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    await writeFile(file, changed);
    return changed;
  }

  test("detect names WorkloadIdentity and its variables (the token file's path, never its contents)", async () => {
    await withWorkload(async ({ file, assertion, env }) => {
      const plain = await run(["detect"], { env });
      assert.equal(plain.code, EXIT_CODES.ok, plain.err);
      assert.equal(
        plain.out,
        `WorkloadIdentity (AZURE_FEDERATED_TOKEN_FILE=${file}, AZURE_TENANT_ID=${EMULATOR_TENANT}, ` +
          `AZURE_CLIENT_ID=${env.AZURE_CLIENT_ID}, AZURE_AUTHORITY_HOST=${AUTHORITY})\n`,
      );
      const json = await run(["detect", "--json"], { env });
      assert.deepEqual(JSON.parse(json.out), { source: "WorkloadIdentity", variables: env, endpoint: TOKEN_URL });
      // Without AZURE_AUTHORITY_HOST, Microsoft Entra ID's public cloud (detect never touches the network).
      const { AZURE_AUTHORITY_HOST: _, ...publicCloud } = env;
      const entra = JSON.parse((await run(["detect", "--json"], { env: publicCloud })).out);
      assert.equal(entra.endpoint, `https://login.microsoftonline.com/${EMULATOR_TENANT}/oauth2/v2.0/token`);
      assertNoAssertion(`${plain.out}${plain.err}${json.out}${json.err}`, assertion);
    });
  });

  test("detect exits 5 and names what is missing when AZURE_FEDERATED_TOKEN_FILE is set alone", async () => {
    const { code, out, err } = await run(["detect"], { env: { AZURE_FEDERATED_TOKEN_FILE: "/no/such/token" } });
    assert.equal(code, EXIT_CODES.configuration);
    assert.equal(out, "");
    assert.match(err, /AZURE_TENANT_ID and AZURE_CLIENT_ID/);
    assert.match(err, /azure\.workload\.identity\/use/);
  });

  test("doctor explains a working workload identity, on loopback only, without the assertion or the token", async () => {
    await withWorkload(async ({ assertion, env, endpoint }) => {
      const { code, out, err } = await run(["doctor"], { env, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.ok, out + err);
      assert.match(out, /Source: WorkloadIdentity \(.*workload identity.*\)/);
      assert.ok(out.includes(`AZURE_FEDERATED_TOKEN_FILE=${env.AZURE_FEDERATED_TOKEN_FILE}`));
      assert.ok(out.includes(`Token endpoint: ${TOKEN_URL}`));
      assert.match(out, /2\. Connection to 127\.0\.0\.1:41741 .*\n\s+Reachable: it answered \(HTTP 404\)/);
      assert.ok(out.includes(`the workload identity with client ID ${env.AZURE_CLIENT_ID} (AZURE_CLIENT_ID)`), out);
      assert.ok(out.includes(`Claims: aud=https://management.azure.com, appid=${env.AZURE_CLIENT_ID}`), out);
      assert.equal(endpoint.tokens.length, 1);
      assert.ok(!out.includes(endpoint.tokens[0]!), "the token must not be printed");
      assert.deepEqual(endpoint.requests.map((r) => [r.method, r.url]), [
        ["GET", "http://127.0.0.1:41741/"],
        ["POST", TOKEN_URL],
      ]);
      assertNoAssertion(out + err, assertion);
    });
  });

  test("doctor's advice for AADSTS70021: the federated credential's issuer and subject", async () => {
    await withWorkload(async ({ file, assertion, env, endpoint }) => {
      const changed = await otherSubject(file, assertion);
      const { code, out, err } = await run(["doctor", VAULT], { env, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.failed, out);
      assert.match(out, /Failed \(request_failed\): .*endpoint answered 400 \(invalid_request: AADSTS70021: /);
      assert.match(out, /What to do: .*federated identity credential.*issuer.*subject.*system:serviceaccount:/);
      assertNoAssertion(out + err, changed);
      assertNoAssertion(out + err, assertion);
    });
  });

  test("doctor's advice for AADSTS700016: the client ID", async () => {
    await withWorkload(async ({ assertion, env, endpoint }) => {
      const unknown = "00000000-0000-0000-0000-00000000dead";
      const { code, out, err } = await run(["doctor", VAULT, "--client-id", unknown], { env, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.failed, out);
      assert.match(out, /AADSTS700016: Application with identifier '00000000-0000-0000-0000-00000000dead'/);
      assert.match(out, /What to do: .*client ID.*azure\.workload\.identity\/client-id/);
      assertNoAssertion(out + err, assertion);
    });
  });

  test("doctor's advice for a missing token file: the pod label and the service account annotation", async () => {
    await withWorkload(async ({ dir, assertion, env, endpoint }) => {
      const missing = { ...env, AZURE_FEDERATED_TOKEN_FILE: `${dir}/not-mounted/azure-identity-token` };
      const { code, out, err } = await run(["doctor", VAULT], { env: missing, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.configuration, out);
      assert.match(out, /Failed \(invalid_configuration\): .*not-mounted\/azure-identity-token" does not exist/);
      assert.match(out, /What to do: .*azure\.workload\.identity\/use.*azure\.workload\.identity\/client-id/);
      assert.deepEqual(endpoint.requests.map((r) => r.method), ["GET"], "no token request without a token file");
      assertNoAssertion(out + err, assertion);
    });
  });

  test("token prints the access token alone, and an Entra error in one line, never the assertion", async () => {
    await withWorkload(async ({ file, assertion, env, endpoint }) => {
      const ok = await run(["token", VAULT], { env, fetch: endpoint.fetch });
      assert.equal(ok.code, EXIT_CODES.ok, ok.err);
      assert.equal(ok.out, `${endpoint.tokens[0]}\n`);
      assert.equal(readClaims(ok.out.trim())?.appid, env.AZURE_CLIENT_ID);
      assert.ok(!ok.out.includes(assertion));
      assert.equal(ok.err, "");

      const changed = await otherSubject(file, assertion);
      // A fresh process would read the file again: a new run is a new client.
      const refused = await run(["token", VAULT], { env, fetch: endpoint.fetch });
      assert.equal(refused.code, EXIT_CODES.failed);
      assert.equal(refused.out, "");
      assert.match(refused.err, /^azmi token: .*AADSTS70021: .*\(request_failed\)\n$/);
      assertNoAssertion(refused.err, changed);
    });
  });

  test("emulate --source wi prints the four variables, serves a client, and removes the token file at stop", async () => {
    const dir = await mkdtemp(`${tmpdir()}/azmi-cli-emulate-wi-`);
    const emulate = await startEmulate(["--source", "wi", "--federated-token-dir", dir]);
    const out = emulate.out();
    try {
      const env = parseExports(out);
      assert.deepEqual(Object.keys(env), [
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_AUTHORITY_HOST",
      ]);
      assert.match(
        out,
        new RegExp(`^# WorkloadIdentity: http://127\\.0\\.0\\.1:\\d+/${EMULATOR_TENANT}/oauth2/v2\\.0/token`, "m"),
      );
      assert.match(env.AZURE_AUTHORITY_HOST!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      assert.ok(env.AZURE_FEDERATED_TOKEN_FILE!.startsWith(dir));
      const assertion = await readFile(env.AZURE_FEDERATED_TOKEN_FILE!, "utf8");

      const client = new ManagedIdentityClient({ env, cache: new TokenCache() });
      const token = await client.acquireToken(VAULT);
      assert.equal(token.source, "WorkloadIdentity");
      assert.equal(readClaims(token.accessToken)?.appid, env.AZURE_CLIENT_ID);
      const clientId = /client ID: +([0-9a-f-]{36})/.exec(out)?.[1];
      assert.ok(clientId && clientId !== env.AZURE_CLIENT_ID, "a user-assigned client ID is printed");
      const user = new ManagedIdentityClient({ env, clientId, cache: new TokenCache() });
      assert.equal(readClaims((await user.acquireToken(VAULT)).accessToken)?.appid, clientId);
      assertNoAssertion(out + emulate.err(), assertion);
    } finally {
      emulate.stop.abort();
    }
    try {
      assert.equal(await emulate.running, EXIT_CODES.ok);
      assert.deepEqual(await readdir(dir), [], "the token file and its directory are removed at stop");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
