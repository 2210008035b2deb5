/**
 * The emulator's tokens are like Entra's: RS256-signed v1 tokens, with the OpenID configuration and
 * the keys that validate them.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import {
  ALL_SOURCES,
  createEmulator,
  EMULATED_HOST_RESOURCE_IDS,
  type EmulatedIdentity,
  EMULATOR_TENANT,
  readClaims,
  serve,
} from "../src/emulator/mod.ts";
import { testClient } from "./helpers/fake.ts";
import { VAULT, withTempDir } from "./helpers/emulator.ts";

describe("tokens like Entra's: RS256-signed v1 tokens, with the OpenID configuration and keys that validate them", () => {
  interface Jwk {
    kty: string;
    use: string;
    kid: string;
    x5t: string;
    n: string;
    e: string;
    x5c: string[];
    alg: string;
  }
  const decode = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  const header = (token: string) => decode(token.split(".")[0]!) as Record<string, unknown>;
  const getJson = async (url: string) => {
    const response = await fetch(url);
    assert.equal(response.status, 200, url);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/, url);
    return await response.json() as Record<string, unknown>;
  };

  /** Whether `token`'s RS256 signature verifies with `jwk`, by Web Crypto alone. */
  async function verifies(token: string, jwk: Jwk): Promise<boolean> {
    const [head, body, signature] = token.split(".");
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: jwk.kty, n: jwk.n, e: jwk.e, alg: jwk.alg, ext: true },
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      key,
      new Uint8Array(Buffer.from(signature!, "base64url")),
      new TextEncoder().encode(`${head}.${body}`),
    );
  }

  const CLAIMS = [
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "appid",
    "appidacr",
    "idp",
    "idtyp",
    "oid",
    "sub",
    "tid",
    "uti",
    "ver",
    "xms_mirid",
    "azmi_source",
  ];

  test("every source's token, system- and user-assigned, verifies with the served keys and carries Entra's v1 claims", async () => {
    await withTempDir(async (dir) => {
      const running = await serve({ arcKeyDirectory: dir, federatedTokenDirectory: dir, lifetimeSeconds: 5400 });
      try {
        const issuer = `https://sts.windows.net/${EMULATOR_TENANT}/`;
        assert.equal(running.issuer, issuer);
        assert.equal(running.emulator.issuer, issuer);
        const configuration = await getJson(running.openIdConfiguration);
        assert.equal(configuration.issuer, issuer);
        assert.equal(configuration.jwks_uri, running.jwksUri);
        assert.deepEqual(configuration.id_token_signing_alg_values_supported, ["RS256"]);
        // On the WorkloadIdentity server: its token endpoint is the one the emulator answers.
        assert.equal(
          running.openIdConfiguration,
          `${new URL(running.urls.WorkloadIdentity!).origin}/${EMULATOR_TENANT}/.well-known/openid-configuration`,
        );
        const { keys } = await getJson(running.jwksUri) as { keys: Jwk[] };
        assert.equal(keys.length, 1);
        const [jwk] = keys as [Jwk];
        assert.deepEqual(Object.keys(jwk).sort(), ["alg", "e", "kid", "kty", "n", "use", "x5c", "x5t"]);
        assert.equal(jwk.kty, "RSA");
        assert.equal(jwk.use, "sig");
        assert.equal(jwk.alg, "RS256");
        assert.equal(jwk.e, "AQAB");
        assert.equal(Buffer.from(jwk.n, "base64url").length, 256, "2048 bits");
        assert.deepEqual(await running.emulator.jwks(), { keys });

        const user = running.emulator.identities[0]!;
        const system = running.emulator.systemIdentity;
        let checked = 0;
        for (const source of ALL_SOURCES) {
          const kinds: [string, { clientId?: string; objectId?: string }, EmulatedIdentity, string][] = [
            ["system-assigned", {}, system, EMULATED_HOST_RESOURCE_IDS[source]],
          ];
          if (source === "ServiceFabric") {
            kinds.push(["user-assigned", { objectId: user.objectId }, user, user.resourceId]);
          } else if (source !== "CloudShell") {
            kinds.push(["user-assigned", { clientId: user.clientId }, user, user.resourceId]);
          }
          for (const [kind, options, who, mirid] of kinds) {
            const what = `${source}, ${kind}`;
            const client = testClient({ env: running.env[source]!, ...options }, { arcTokenDirectory: dir });
            const { accessToken } = await client.acquireToken(`${VAULT}/.default`);
            assert.deepEqual(header(accessToken), { typ: "JWT", alg: "RS256", x5t: jwk.x5t, kid: jwk.kid }, what);
            assert.equal(await verifies(accessToken, jwk), true, what);
            const claims = readClaims(accessToken)!;
            assert.deepEqual(Object.keys(claims), CLAIMS, what);
            assert.equal(claims.aud, VAULT, what);
            assert.equal(claims.iss, configuration.issuer, what);
            assert.equal(claims.idp, issuer, what);
            assert.equal(claims.tid, EMULATOR_TENANT, what);
            assert.equal(claims.appid, who.clientId, what);
            assert.equal(claims.appidacr, "2", what);
            assert.equal(claims.idtyp, "app", what);
            assert.equal(claims.oid, who.objectId, what);
            assert.equal(claims.sub, who.objectId, what);
            assert.equal(claims.ver, "1.0", what);
            assert.equal(claims.xms_mirid, mirid, what);
            assert.match(String(claims.uti), /^[\w-]{22}$/, what);
            assert.equal(claims.nbf, claims.iat, what);
            assert.ok(Math.abs(Number(claims.iat) - Date.now() / 1000) < 60, what);
            assert.equal(Number(claims.exp) - Number(claims.iat), source === "WorkloadIdentity" ? 5399 : 5400, what);
            assert.equal(claims.azmi_source, source, what);
            checked++;
          }
        }
        assert.equal(checked, 13);
        // Where each system-assigned identity lives, as Entra names it in xms_mirid.
        assert.match(
          EMULATED_HOST_RESOURCE_IDS.DefaultToIMDS,
          /\/providers\/Microsoft\.Compute\/virtualMachines\/[^/]+$/,
        );
        assert.match(EMULATED_HOST_RESOURCE_IDS.AppService, /\/providers\/Microsoft\.Web\/sites\/[^/]+$/);
        assert.match(EMULATED_HOST_RESOURCE_IDS.AzureArc, /\/providers\/Microsoft\.HybridCompute\/machines\/[^/]+$/);
        assert.match(
          EMULATED_HOST_RESOURCE_IDS.WorkloadIdentity,
          /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[^/]+$/,
        );
        assert.match(user.resourceId, /\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/[^/]+$/);
      } finally {
        await running.close();
      }
    });
  });

  test("a token with one flipped signature byte, or another emulator's token, fails verification", async () => {
    const emulator = createEmulator();
    const response = await emulator.handler("DefaultToIMDS")(
      new Request(`http://e/t?api-version=2018-02-01&resource=${encodeURIComponent(VAULT)}`, {
        headers: { Metadata: "true" },
      }),
    );
    const token = ((await response.json()) as { access_token: string }).access_token;
    const [jwk] = (await emulator.jwks()).keys as unknown as [Jwk];
    assert.equal(await verifies(token, jwk), true);
    const [head, body, signature] = token.split(".") as [string, string, string];
    const bytes = Buffer.from(signature, "base64url");
    for (const at of [0, 100, bytes.length - 1]) {
      const flipped = Buffer.from(bytes);
      flipped[at] = flipped[at]! ^ 0x01;
      assert.equal(await verifies(`${head}.${body}.${flipped.toString("base64url")}`, jwk), false, `byte ${at}`);
    }
    // A changed claim breaks it too, and another emulator has another key.
    const claims = { ...readClaims(token)!, aud: "https://management.azure.com" };
    const forged = `${head}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    assert.equal(await verifies(forged, jwk), false);
    const [other] = (await createEmulator().jwks()).keys as unknown as [Jwk];
    assert.notEqual(other.kid, jwk.kid);
    assert.equal(await verifies(token, other), false);
  });

  test("the key's x5c is a self-signed certificate of that key, whose SHA-1 is x5t and kid", async () => {
    const [jwk] = (await createEmulator().jwks()).keys as unknown as [Jwk];
    const certificate = new X509Certificate(Buffer.from(jwk.x5c[0]!, "base64"));
    assert.equal(Buffer.from(certificate.fingerprint.replace(/:/g, ""), "hex").toString("base64url"), jwk.x5t);
    assert.equal(jwk.kid, jwk.x5t);
    assert.equal(certificate.verify(certificate.publicKey), true);
    assert.equal(certificate.ca, false);
    assert.match(certificate.subject, /azmi emulator token signing/);
    const exported = certificate.publicKey.export({ format: "jwk" }) as { n?: string; e?: string };
    assert.equal(exported.n, jwk.n);
    assert.equal(exported.e, jwk.e);
  });

  test("every server answers Entra's discovery paths with its own origin; another tenant is Entra's AADSTS90002", async () => {
    await withTempDir(async (dir) => {
      const running = await serve({
        sources: ["AppService", "WorkloadIdentity"],
        federatedTokenDirectory: dir,
        faults: { AppService: [{ status: 500 }] },
      });
      try {
        const { keys } = await running.emulator.jwks();
        for (const source of ["AppService", "WorkloadIdentity"] as const) {
          const origin = new URL(running.urls[source]!).origin;
          const base = `${origin}/${EMULATOR_TENANT}`;
          const v1 = await getJson(`${base}/.well-known/openid-configuration`);
          assert.equal(v1.issuer, `https://sts.windows.net/${EMULATOR_TENANT}/`);
          assert.equal(v1.jwks_uri, `${base}/discovery/keys`);
          assert.equal(v1.token_endpoint, `${base}/oauth2/token`);
          assert.deepEqual(v1.id_token_signing_alg_values_supported, ["RS256"]);
          const v2 = await getJson(`${base}/v2.0/.well-known/openid-configuration`);
          // As Entra's: the v2.0 issuer, which v1 tokens do not carry.
          assert.equal(v2.issuer, `https://login.microsoftonline.com/${EMULATOR_TENANT}/v2.0`);
          assert.equal(v2.jwks_uri, `${base}/discovery/v2.0/keys`);
          assert.equal(v2.token_endpoint, `${base}/oauth2/v2.0/token`);
          for (
            const path of [
              "/common/discovery/keys",
              `/${EMULATOR_TENANT}/discovery/keys`,
              `/common/discovery/v2.0/keys`,
            ]
          ) {
            assert.deepEqual(await getJson(`${origin}${path}`), { keys }, path);
          }
          const other = await fetch(`${origin}/11111111-2222-3333-4444-555555555555/.well-known/openid-configuration`);
          assert.equal(other.status, 400);
          const refused = await other.json() as Record<string, unknown>;
          assert.equal(refused.error, "invalid_tenant");
          assert.deepEqual(refused.error_codes, [90002]);
        }
        // The v2.0 token endpoint the WorkloadIdentity server's document names is the one it answers.
        const v2 = await getJson(
          `${new URL(running.urls.WorkloadIdentity!).origin}/${EMULATOR_TENANT}/v2.0/.well-known/openid-configuration`,
        );
        assert.equal(v2.token_endpoint, running.urls.WorkloadIdentity);
        // Discovery is neither logged nor subject to faults: the scripted 500 is still there for the token request.
        assert.equal(running.emulator.requests.length, 0);
        const sleeps: number[] = [];
        const client = testClient({ env: running.env.AppService! }, {
          sleep: (ms) => (sleeps.push(ms), Promise.resolve()),
        });
        assert.ok((await client.acquireToken(VAULT)).accessToken);
        assert.deepEqual(running.emulator.requests.map((r) => r.status), [500, 200]);
      } finally {
        await running.close();
      }
    }, "azmi-emulator-wi-");
  });

  test("without sockets, a handler answers the OpenID configuration with the request's origin", async () => {
    const emulator = createEmulator();
    const response = await emulator.handler("DefaultToIMDS")(
      new Request(`http://169.254.169.254/${EMULATOR_TENANT}/.well-known/openid-configuration`),
    );
    const configuration = await response.json() as Record<string, unknown>;
    assert.equal(configuration.jwks_uri, `http://169.254.169.254/${EMULATOR_TENANT}/discovery/keys`);
    assert.equal(configuration.issuer, emulator.issuer);
    // Not a GET: the source's own answer.
    const post = await emulator.handler("DefaultToIMDS")(
      new Request(`http://169.254.169.254/${EMULATOR_TENANT}/.well-known/openid-configuration`, { method: "POST" }),
    );
    assert.equal(post.status, 400);
    assert.equal(((await post.json()) as { error: string }).error, "invalid_request");
  });
});
