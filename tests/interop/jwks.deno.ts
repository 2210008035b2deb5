/**
 * The emulator's tokens validate with `jose` as Microsoft Entra ID's do (Deno only: it imports
 * an npm: package). A real `serve()` on loopback; the OpenID configuration is read from it, and
 * `createRemoteJWKSet(new URL(jwks_uri))` with `jwtVerify(token, jwks, { issuer, audience })`
 * checks each source's token, as an API that trusts Entra would, with only the issuer and key
 * URL changed. Run with `deno test -A tests/interop/jwks.deno.ts`.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createRemoteJWKSet, errors, jwtVerify } from "npm:jose@6";
import { ALL_SOURCES, createEmulator, EMULATED_HOST_RESOURCE_IDS, serve } from "../../src/emulator/mod.ts";
import { testClient } from "../helpers/fake.ts";

const VAULT = "https://vault.azure.net";

test("jose's jwtVerify accepts every source's token with the served issuer and keys, and refuses tampered ones", async () => {
  const dir = await mkdtemp(join(tmpdir(), "azmi-jwks-"));
  const running = await serve({ arcKeyDirectory: dir, federatedTokenDirectory: dir });
  try {
    const configuration = await (await fetch(running.openIdConfiguration)).json() as {
      issuer: string;
      jwks_uri: string;
    };
    assert.equal(configuration.jwks_uri, running.jwksUri);
    const jwks = createRemoteJWKSet(new URL(configuration.jwks_uri));
    const options = { issuer: configuration.issuer, audience: VAULT, algorithms: ["RS256"] };
    let token = "";
    for (const source of ALL_SOURCES) {
      const client = testClient({ env: running.env[source]! }, { arcTokenDirectory: dir });
      token = (await client.acquireToken(`${VAULT}/.default`)).accessToken;
      const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
      assert.equal(protectedHeader.alg, "RS256", source);
      assert.equal(payload.iss, `https://sts.windows.net/${payload.tid}/`, source);
      assert.equal(payload.appid, running.emulator.systemIdentity.clientId, source);
      assert.equal(payload.xms_mirid, EMULATED_HOST_RESOURCE_IDS[source], source);
      assert.equal(payload.ver, "1.0", source);
    }

    // Another audience, the v2.0 document's issuer (v1 tokens do not carry it), a flipped
    // signature byte, a changed claim: refused.
    await assert.rejects(
      jwtVerify(token, jwks, { ...options, audience: "https://management.azure.com" }),
      errors.JWTClaimValidationFailed,
    );
    const v2 = await (await fetch(running.openIdConfiguration.replace("/.well-known", "/v2.0/.well-known"))).json() as {
      issuer: string;
    };
    await assert.rejects(jwtVerify(token, jwks, { ...options, issuer: v2.issuer }), errors.JWTClaimValidationFailed);
    const [head, body, signature] = token.split(".") as [string, string, string];
    const bytes = Uint8Array.from(atob(signature.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    bytes[10] = bytes[10]! ^ 0x01;
    const flipped = btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    await assert.rejects(jwtVerify(`${head}.${body}.${flipped}`, jwks, options), errors.JWSSignatureVerificationFailed);
    const claims = JSON.parse(atob(body.replace(/-/g, "+").replace(/_/g, "/")));
    const changed = btoa(JSON.stringify({ ...claims, appid: "00000000-0000-0000-0000-000000000000" }))
      .replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    await assert.rejects(
      jwtVerify(`${head}.${changed}.${signature}`, jwks, options),
      errors.JWSSignatureVerificationFailed,
    );

    // Another emulator's token names a key this one does not have.
    const other = createEmulator();
    const answer = await other.handler("DefaultToIMDS")(
      new Request(`http://e/t?api-version=2018-02-01&resource=${encodeURIComponent(VAULT)}`, {
        headers: { Metadata: "true" },
      }),
    );
    const stranger = ((await answer.json()) as { access_token: string }).access_token;
    await assert.rejects(jwtVerify(stranger, jwks, options), errors.JWKSNoMatchingKey);
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
});
