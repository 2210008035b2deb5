/**
 * The emulator (src/emulator/): the client against it on real loopback servers, its endpoints, its
 * fault injection, and the development certificates of its Service Fabric endpoint. Its Entra ID
 * endpoint is in tests/emulator_entra_test.ts, its signed tokens in tests/emulator_tokens_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { connect as tlsConnect } from "node:tls";
import { ManagedIdentityError, type Source } from "../mod.ts";
import {
  ALL_SOURCES,
  createEmulator,
  DEV_CA_CERTIFICATE,
  DEV_CERTIFICATE_THUMBPRINT,
  pemThumbprint,
  readClaims,
  serve,
} from "../src/emulator/mod.ts";
import { testClient } from "./helpers/fake.ts";
import { VAULT, withTempDir } from "./helpers/emulator.ts";

describe("the client against the emulator on real loopback servers", () => {
  test("every source serves system-assigned and, where it may, user-assigned tokens whose claims match", async () => {
    await withTempDir(async (dir) => {
      const running = await serve({ arcKeyDirectory: dir, federatedTokenDirectory: dir, lifetimeSeconds: 7200 });
      try {
        const user = running.emulator.identities[0]!;
        const system = running.emulator.systemIdentity;
        const seen: string[] = [];
        for (const source of ALL_SOURCES) {
          const env = running.env[source]!;
          const internal = { arcTokenDirectory: dir };
          const client = testClient({ env }, internal);
          assert.equal(client.source, source);
          const first = await client.acquireToken(`${VAULT}/.default`);
          const claims = readClaims(first.accessToken)!;
          assert.equal(claims.aud, VAULT, source);
          assert.equal(claims.appid, system.clientId, source);
          assert.equal(claims.azmi_source, source);
          // Entra's expires_in counts from the answer, so the client's expiry is within a second of exp.
          assert.ok(
            Math.abs(Number(claims.exp) * 1000 - first.expiresOn.getTime()) <
              (source === "WorkloadIdentity" ? 2000 : 1),
            source,
          );
          assert.ok(first.expiresOn.getTime() - Date.now() > 7100_000, source);
          assert.equal((await client.acquireToken(VAULT)).fromCache, true, source);
          seen.push(source);
          if (source === "CloudShell") continue;
          if (source === "ServiceFabric") {
            // Service Fabric names a user-assigned identity by object ID only, sent as principalId.
            const byPrincipal = testClient({ env, objectId: user.objectId }, internal);
            assert.equal(readClaims((await byPrincipal.acquireToken(VAULT)).accessToken)!.oid, user.objectId, source);
            continue;
          }
          const byClient = testClient({ env, clientId: user.clientId }, internal);
          assert.equal(readClaims((await byClient.acquireToken(VAULT)).accessToken)!.appid, user.clientId, source);
          // Workload identity is chosen by client ID only; its default is AZURE_CLIENT_ID's.
          if (source === "AzureML" || source === "WorkloadIdentity") continue;
          const byObject = testClient({ env, objectId: user.objectId }, internal);
          assert.equal(readClaims((await byObject.acquireToken(VAULT)).accessToken)!.oid, user.objectId, source);
          const byResource = testClient({ env, resourceId: user.resourceId }, internal);
          assert.equal(
            readClaims((await byResource.acquireToken(VAULT)).accessToken)!.xms_mirid,
            user.resourceId,
            source,
          );
        }
        assert.deepEqual(seen, [...ALL_SOURCES]);
        // The request log never holds a secret.
        assert.equal(JSON.stringify(running.emulator.requests).includes(running.emulator.secret), false);
      } finally {
        await running.close();
      }
      assert.deepEqual(await readdir(dir), [], "close() removes the Arc key files and the federated token file");
    });
  });

  test("an unknown user-assigned identity is refused with each source's error", async () => {
    await withTempDir(async (dir) => {
      const running = await serve({ arcKeyDirectory: dir, federatedTokenDirectory: dir });
      try {
        const expected: Partial<Record<Source, number>> = {
          WorkloadIdentity: 400,
          DefaultToIMDS: 400,
          AppService: 400,
          AzureML: 400,
          AzureArc: 404,
          ServiceFabric: 404,
        };
        for (const [source, status] of Object.entries(expected) as [Source, number][]) {
          const unknown = "00000000-0000-0000-0000-00000000dead";
          const client = testClient(
            {
              env: running.env[source]!,
              ...(source === "ServiceFabric" ? { objectId: unknown } : { clientId: unknown }),
              retry: false,
            },
            { arcTokenDirectory: dir },
          );
          await assert.rejects(client.acquireToken(VAULT), (error) => {
            assert.ok(error instanceof ManagedIdentityError, source);
            // IMDS's 400 "Identity not found" means no such identity here: try another credential.
            assert.equal(error.code, source === "DefaultToIMDS" ? "unavailable" : "request_failed", source);
            assert.equal(error.status, status, source);
            return true;
          });
        }
      } finally {
        await running.close();
      }
    });
  });

  test("a client pinned to another thumbprint is refused by the Service Fabric endpoint's TLS check", async () => {
    const running = await serve({ sources: ["ServiceFabric"] });
    try {
      const env = { ...running.env.ServiceFabric!, IDENTITY_SERVER_THUMBPRINT: "00".repeat(20) };
      await assert.rejects(
        testClient({ env, retry: false }).acquireToken(VAULT),
        (error) => error instanceof ManagedIdentityError && error.code === "certificate_mismatch",
      );
      assert.equal(running.emulator.requests.length, 0);
    } finally {
      await running.close();
    }
  });
});

describe("createEmulator() endpoints", () => {
  const call = (source: Source, url: string, init: RequestInit = {}) =>
    createEmulator({ secret: "s3cret" }).handler(source)(new Request(url, init));

  test("IMDS refuses a request without Metadata: true with its error shape", async () => {
    const response = await call(
      "DefaultToIMDS",
      "http://e/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
    );
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      error: "invalid_request",
      error_description: "Required metadata header not specified",
    });
  });

  test("IMDS refuses a wrong api-version", async () => {
    const response = await call("DefaultToIMDS", "http://e/t?api-version=2017-01-01&resource=x", {
      headers: { Metadata: "true" },
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, "invalid_request");
  });

  test("App Service refuses a missing or wrong X-IDENTITY-HEADER with its error shape", async () => {
    for (const headers of [{}, { "X-IDENTITY-HEADER": "wrong" }] as Record<string, string>[]) {
      const response = await call("AppService", "http://e/msi/token?api-version=2019-08-01&resource=x", { headers });
      assert.equal(response.status, 400);
      const body = await response.json() as { statusCode: number; message: string; correlationId: string };
      assert.equal(body.statusCode, 400);
      assert.match(body.message, /x-identity-header/);
      assert.match(body.correlationId, /^[0-9a-f-]{36}$/);
    }
  });

  test("Azure ML requires its secret header", async () => {
    const ok = await call("AzureML", "http://e/?api-version=2017-09-01&resource=x&clientid=", {
      headers: { secret: "s3cret", Metadata: "true" },
    });
    assert.equal(ok.status, 200);
    const refused = await call("AzureML", "http://e/?api-version=2017-09-01&resource=x&clientid=", {
      headers: { Metadata: "true" },
    });
    assert.equal(refused.status, 400);
  });

  test("Cloud Shell takes a POST form body and refuses a GET", async () => {
    const ok = await call("CloudShell", "http://e/", {
      method: "POST",
      headers: { Metadata: "true", "content-type": "application/x-www-form-urlencoded" },
      body: "resource=https%3A%2F%2Fvault.azure.net",
    });
    assert.equal(ok.status, 200);
    assert.equal(readClaims(((await ok.json()) as { access_token: string }).access_token)!.aud, VAULT);
    const refused = await call("CloudShell", "http://e/", { headers: { Metadata: "true" } });
    assert.equal(refused.status, 405);
  });

  test("Service Fabric refuses a missing Secret with SecretHeaderNotFound and a nested correlation ID", async () => {
    const response = await call("ServiceFabric", "https://e/?api-version=2020-05-01&resource=x");
    assert.equal(response.status, 401);
    const body = await response.json() as { error: { correlationId: string } };
    // The shape of Microsoft's sample error, correlation ID first.
    assert.deepEqual(Object.keys(body.error), ["correlationId", "code", "message"]);
    assert.match(body.error.correlationId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(body, {
      error: {
        correlationId: body.error.correlationId,
        code: "SecretHeaderNotFound",
        message: "Secret is not found in the request headers.",
      },
    });
  });

  test("Service Fabric accepts api-version 2020-05-01 and 2019-07-01-preview, and refuses another", async () => {
    const headers = { Secret: "s3cret" };
    for (const version of ["2020-05-01", "2019-07-01-preview"]) {
      const response = await call("ServiceFabric", `https://e/?api-version=${version}&resource=x`, { headers });
      assert.equal(response.status, 200, version);
    }
    for (const version of ["2017-09-01", ""]) {
      const response = await call("ServiceFabric", `https://e/?api-version=${version}&resource=x`, { headers });
      assert.equal(response.status, 400, version);
      const { error } = await response.json() as { error: { code: string; message: string } };
      assert.equal(error.code, "InvalidApiVersion", version);
      assert.match(error.message, /2020-05-01/);
    }
  });

  test("Service Fabric serves the user-assigned identity principalId names, and 404 for an unknown one", async () => {
    const emulator = createEmulator({ secret: "s3cret" });
    const user = emulator.identities[0]!;
    const headers = { Secret: "s3cret" };
    const handler = emulator.handler("ServiceFabric");
    const ok = await handler(
      new Request(`https://e/?api-version=2020-05-01&resource=x&principalId=${user.objectId.toUpperCase()}`, {
        headers,
      }),
    );
    assert.equal(ok.status, 200);
    assert.equal(readClaims(((await ok.json()) as { access_token: string }).access_token)!.oid, user.objectId);
    const unknown = await handler(
      new Request("https://e/?api-version=2020-05-01&resource=x&principalId=00000000-0000-0000-0000-00000000dead", {
        headers,
      }),
    );
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, "ManagedIdentityNotFound");
  });

  test("Azure Arc challenges with a key file and accepts only that key", async () => {
    await withTempDir(async (dir) => {
      const emulator = createEmulator({ arcKeyDirectory: dir });
      const handler = emulator.handler("AzureArc");
      const url = "http://e/metadata/identity/oauth2/token?api-version=2020-06-01&resource=x";
      const challenge = await handler(new Request(url, { headers: { Metadata: "true" } }));
      assert.equal(challenge.status, 401);
      const realm = /^Basic realm=(.+)$/.exec(challenge.headers.get("www-authenticate") ?? "")?.[1];
      assert.ok(realm?.startsWith(dir) && realm.endsWith(".key"));
      // A small JSON body, in IMDS's error shape: a client that parses every body (msal-node) must not fail.
      assert.match(challenge.headers.get("content-type") ?? "", /^application\/json/);
      const body = JSON.parse(await challenge.text()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), ["error", "error_description"]);
      assert.equal(body.error, "unauthorized_client");
      assert.match(String(body.error_description), /WWW-Authenticate/);
      const wrong = await handler(new Request(url, { headers: { Metadata: "true", Authorization: "Basic nope" } }));
      assert.equal(wrong.status, 401);
      await emulator.cleanup();
      assert.deepEqual(await readdir(dir), []);
    });
  });

  test("Azure Arc keeps only its newest 100 key files, and the newest key still works", async () => {
    await withTempDir(async (dir) => {
      const emulator = createEmulator({ arcKeyDirectory: dir });
      const handler = emulator.handler("AzureArc");
      const url = "http://e/metadata/identity/oauth2/token?api-version=2020-06-01&resource=x";
      let realm = "";
      for (let i = 0; i < 130; i++) {
        const challenge = await handler(new Request(url, { headers: { Metadata: "true" } }));
        realm = /^Basic realm=(.+)$/.exec(challenge.headers.get("www-authenticate") ?? "")![1]!;
      }
      assert.equal((await readdir(dir)).length, 100);
      const key = await readFile(realm, "utf8");
      const answer = await handler(new Request(url, { headers: { Metadata: "true", Authorization: `Basic ${key}` } }));
      assert.equal(answer.status, 200);
      await emulator.cleanup();
      assert.deepEqual(await readdir(dir), []);
    });
  });

  test("tokens carry refresh_in when configured and the configured lifetime", async () => {
    let now = 1_700_000_000_000;
    const emulator = createEmulator({ lifetimeSeconds: 600, refreshInSeconds: 300, now: () => now });
    const response = await emulator.handler("DefaultToIMDS")(
      new Request("http://e/t?api-version=2018-02-01&resource=x", { headers: { Metadata: "true" } }),
    );
    const body = await response.json() as Record<string, unknown>;
    assert.equal(body.refresh_in, 300);
    assert.equal(body.expires_in, "600");
    assert.equal(body.expires_on, String(1_700_000_000 + 600));
    now += 1000;
    assert.equal(readClaims(body.access_token as string)!.exp, 1_700_000_600);
  });
});

describe("emulator fault injection", () => {
  const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: "s3cret" };

  test("a scripted 500 then normal behaviour: the client retries and gets a token", async () => {
    const emulator = createEmulator({ secret: "s3cret", faults: { AppService: [{ status: 500 }] } });
    const delays: number[] = [];
    const client = testClient({ env, fetch: emulator.handler("AppService") }, {
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    assert.ok((await client.acquireToken(VAULT)).accessToken);
    assert.deepEqual(emulator.requests.map((r) => r.status), [500, 200]);
    assert.deepEqual(delays, [1000]);
  });

  test("a 429 with Retry-After is honoured", async () => {
    const emulator = createEmulator({ secret: "s3cret" });
    emulator.fault("AppService", { status: 429, headers: { "Retry-After": "3" } });
    const delays: number[] = [];
    const client = testClient({ env, fetch: emulator.handler("AppService") }, {
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    await client.acquireToken(VAULT);
    assert.deepEqual(delays, [3000]);
  });

  test("malformed bodies become invalid_response", async () => {
    for (const body of ['{"access_token":', "<html>proxy error</html>", ""]) {
      const emulator = createEmulator({ secret: "s3cret", faults: { AppService: [{ status: 200, body }] } });
      await assert.rejects(
        testClient({ env, fetch: emulator.handler("AppService"), retry: false }).acquireToken(VAULT),
        (error) => error instanceof ManagedIdentityError && error.code === "invalid_response",
      );
    }
  });

  test("a dropped connection is retried on a real server", async () => {
    const running = await serve({ sources: ["AppService"], faults: { AppService: [{ drop: true }] } });
    try {
      const client = testClient({ env: running.env.AppService!, retry: { delayMs: 1 } });
      assert.ok((await client.acquireToken(VAULT)).accessToken);
      assert.equal(running.emulator.requests.length, 2);
    } finally {
      await running.close();
    }
  });

  test("a hanging endpoint ends with the client's timeout", async () => {
    const emulator = createEmulator({ secret: "s3cret", faults: { AppService: [{ hang: true }] } });
    const started = Date.now();
    await assert.rejects(
      testClient({ env, fetch: emulator.handler("AppService"), retry: false, timeoutMs: 50 }).acquireToken(VAULT),
      (error) => error instanceof ManagedIdentityError && error.code === "timeout",
    );
    assert.ok(Date.now() - started < 2000);
  });
});
describe("the development certificates of the Service Fabric endpoint", () => {
  const SERVER_AUTH = Buffer.from("06082b06010505070301", "hex"); // OID 1.3.6.1.5.5.7.3.1 (serverAuth)
  // keyUsage (2.5.29.15), critical, keyCertSign and cRLSign.
  const CA_KEY_USAGE = Buffer.from("0603551d0f0101ff040403020106", "hex");
  const fingerprint = (x509: X509Certificate) => x509.fingerprint.replace(/:/g, "");
  const sfQuery = "?api-version=2019-07-01-preview&resource=https%3A%2F%2Fvault.azure.net";

  /** The certificate chain the endpoint presents, read with verification off. */
  function presented(url: string): Promise<{ leaf: X509Certificate; issuer: X509Certificate | undefined }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
        const peer = socket.getPeerCertificate(true);
        socket.destroy();
        const issuer = peer.issuerCertificate && peer.issuerCertificate !== peer
          ? new X509Certificate(peer.issuerCertificate.raw)
          : undefined;
        resolve({ leaf: new X509Certificate(peer.raw), issuer });
      });
      socket.on("error", reject);
    });
  }

  test("the server certificate is a leaf (CA:FALSE, serverAuth, SANs) signed by the development CA (CA:TRUE, keyCertSign)", async () => {
    const ca = new X509Certificate(DEV_CA_CERTIFICATE);
    assert.equal(ca.ca, true);
    assert.ok(ca.raw.includes(CA_KEY_USAGE), "keyUsage: critical, keyCertSign, cRLSign");
    assert.equal(ca.checkIssued(ca), true, "self-signed");
    const running = await serve({ sources: ["ServiceFabric"] });
    try {
      const { leaf, issuer } = await presented(running.urls.ServiceFabric!);
      assert.equal(leaf.ca, false);
      assert.ok(leaf.raw.includes(SERVER_AUTH), "extendedKeyUsage: serverAuth");
      const names = (leaf.subjectAltName ?? "").split(", ");
      assert.ok(names.includes("DNS:localhost") && names.includes("IP Address:127.0.0.1"), leaf.subjectAltName);
      assert.equal(leaf.checkIssued(ca), true);
      assert.equal(leaf.verify(ca.publicKey), true);
      assert.ok(issuer, "the chain is served with the CA");
      assert.equal(fingerprint(issuer), fingerprint(ca));
      // The pin is the leaf's SHA-1, not the CA's.
      assert.equal(fingerprint(leaf), DEV_CERTIFICATE_THUMBPRINT);
      assert.notEqual(fingerprint(ca), DEV_CERTIFICATE_THUMBPRINT);
      assert.equal(running.thumbprint, DEV_CERTIFICATE_THUMBPRINT);
      assert.equal(running.env.ServiceFabric!.IDENTITY_SERVER_THUMBPRINT, DEV_CERTIFICATE_THUMBPRINT);
      assert.equal(await pemThumbprint(leaf.toString()), DEV_CERTIFICATE_THUMBPRINT);
    } finally {
      await running.close();
    }
  });

  test("a client that trusts the development CA instead of pinning reaches the endpoint (node:https with ca)", async () => {
    const running = await serve({ sources: ["ServiceFabric"] });
    try {
      const url = new URL(`${running.urls.ServiceFabric!}${sfQuery}`);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        httpsGet(
          url,
          { ca: DEV_CA_CERTIFICATE, agent: false, headers: { Secret: running.emulator.secret } },
          (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => body += chunk);
            response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
          },
        ).on("error", reject);
      });
      assert.equal(answer.status, 200);
      assert.equal(readClaims((JSON.parse(answer.body) as { access_token: string }).access_token)!.aud, VAULT);
      // Without the CA it is refused: the trust is what makes it work.
      await assert.rejects(
        new Promise((resolve, reject) => httpsGet(url, { agent: false }, resolve).on("error", reject)),
      );
    } finally {
      await running.close();
    }
  });

  test("on Deno, fetch with Deno.createHttpClient({ caCerts: [DEV_CA_CERTIFICATE] }) reaches the endpoint", async (context) => {
    const deno = (globalThis as { Deno?: typeof Deno }).Deno;
    if (!deno) return context.skip("Deno only: Bun and Node do the same with node:https's ca (the test above)");
    const running = await serve({ sources: ["ServiceFabric"] });
    const client = deno.createHttpClient({ caCerts: [DEV_CA_CERTIFICATE] });
    try {
      const url = `${running.urls.ServiceFabric!}${sfQuery}`;
      const response = await fetch(url, { client, headers: { Secret: running.emulator.secret } });
      assert.equal(response.status, 200);
      const body = await response.json() as { access_token: string };
      assert.equal(readClaims(body.access_token)!.aud, VAULT);
      // rustls refused the old single CA:TRUE certificate even when trusted (CaUsedAsEndEntity);
      // without the CA, it is untrusted.
      await assert.rejects(fetch(url, { headers: { Secret: running.emulator.secret } }));
    } finally {
      client.close();
      await running.close();
    }
  });
});
