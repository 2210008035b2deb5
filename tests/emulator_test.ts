import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { ManagedIdentityError, type Source } from "../mod.ts";
import {
  ALL_SOURCES,
  createEmulator,
  DEV_CA_CERTIFICATE,
  DEV_CERTIFICATE_THUMBPRINT,
  EMULATED_HOST_RESOURCE_IDS,
  type EmulatedIdentity,
  type Emulator,
  EMULATOR_TENANT,
  pemThumbprint,
  readClaims,
  serve,
} from "../src/emulator/mod.ts";
import { testClient } from "./helpers/fake.ts";

const VAULT = "https://vault.azure.net";

async function withTempDir<T>(body: (dir: string) => Promise<T>, prefix = "azmi-emulator-"): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

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

describe("workload identity: the emulator as Microsoft Entra ID's token endpoint", () => {
  const AUTHORITY = "http://127.0.0.1:41741/";
  const TOKEN_URL = `http://127.0.0.1:41741/${EMULATOR_TENANT}/oauth2/v2.0/token`;
  const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  /** A JWT-shaped assertion with these claims and a signature the emulator never made. */
  const madeUp = (claims: Record<string, unknown>) =>
    `${part({ alg: "RS256", kid: "made-up" })}.${part(claims)}.${Buffer.from("not a signature").toString("base64url")}`;

  /** An emulator with its token file written, and the env that points a client at its handler. */
  async function federated(dir: string, options: Parameters<typeof createEmulator>[0] = {}) {
    const emulator = createEmulator({ federatedTokenDirectory: dir, ...options });
    const file = await emulator.federatedTokenFile();
    const env: Record<string, string> = {
      AZURE_FEDERATED_TOKEN_FILE: file,
      AZURE_TENANT_ID: EMULATOR_TENANT,
      AZURE_CLIENT_ID: emulator.systemIdentity.clientId,
      AZURE_AUTHORITY_HOST: AUTHORITY,
    };
    return { emulator, file, env, assertion: await readFile(file, "utf8") };
  }

  /** The emulator's handler, with the requests and answer bodies it saw; `edit` may change a request first. */
  function counted(emulator: Emulator, edit?: (form: URLSearchParams) => void) {
    const handler = emulator.handler("WorkloadIdentity");
    const seen: {
      method: string;
      url: string;
      form: URLSearchParams;
      status: number;
      body: Record<string, unknown>;
    }[] = [];
    const fetch = async (request: Request) => {
      const form = new URLSearchParams(await request.clone().text());
      edit?.(form);
      const response = await handler(
        new Request(request.url, { method: request.method, headers: request.headers, body: form.toString() }),
      );
      const body = await response.clone().json().catch(() => ({}));
      seen.push({ method: request.method, url: request.url, form, status: response.status, body });
      return response;
    };
    return { fetch, seen };
  }

  test("the client gets a token whose claims match, through the handler and the token file the emulator wrote", async () => {
    await withTempDir(async (dir) => {
      const { emulator, file, env, assertion } = await federated(dir);
      try {
        // The file: one JWT-shaped service account token, in a private directory of its own under `dir`.
        assert.ok(file.startsWith(dir) && file !== dir);
        assert.equal(assertion.split(".").length, 3);
        assert.ok(assertion.split(".").every((piece) => /^[\w-]+$/.test(piece)));
        const sa = readClaims(assertion)!;
        assert.deepEqual(sa.aud, ["api://AzureADTokenExchange"]);
        assert.equal(sa.iss, emulator.federatedCredential.issuer);
        assert.match(String(sa.sub), /^system:serviceaccount:[a-z0-9-]+:[a-z0-9-]+$/);
        assert.equal(sa.sub, emulator.federatedCredential.subject);
        assert.equal(Number(sa.exp) - Number(sa.iat), 3600);
        assert.equal(sa.nbf, sa.iat);
        if (process.platform !== "win32") assert.equal((await stat(file)).mode & 0o777, 0o600);

        const { fetch, seen } = counted(emulator);
        const client = testClient({ env, fetch });
        assert.equal(client.source, "WorkloadIdentity");
        const result = await client.acquireToken(`${VAULT}/.default`);
        const claims = readClaims(result.accessToken)!;
        assert.equal(claims.aud, VAULT);
        assert.equal(claims.appid, emulator.systemIdentity.clientId);
        assert.equal(claims.oid, emulator.systemIdentity.objectId);
        assert.equal(claims.tid, EMULATOR_TENANT);
        assert.equal(claims.azmi_source, "WorkloadIdentity");
        assert.equal(seen.length, 1);
        assert.equal(seen[0]!.method, "POST");
        assert.equal(seen[0]!.url, TOKEN_URL);
        assert.equal(seen[0]!.form.get("client_assertion"), assertion);
        // Entra's success body, and nothing else.
        assert.deepEqual(Object.keys(seen[0]!.body).sort(), [
          "access_token",
          "expires_in",
          "ext_expires_in",
          "token_type",
        ]);
        assert.equal(seen[0]!.body.expires_in, 3599);
        assert.equal(seen[0]!.body.ext_expires_in, 3599);
        assert.equal(seen[0]!.body.token_type, "Bearer");
        assert.equal((await client.acquireToken(VAULT)).fromCache, true);

        const user = emulator.identities[0]!;
        const byClient = testClient({ env, fetch, clientId: user.clientId });
        const userClaims = readClaims((await byClient.acquireToken(VAULT)).accessToken)!;
        assert.equal(userClaims.appid, user.clientId);
        assert.equal(userClaims.oid, user.objectId);
        assert.equal(seen[1]!.form.get("client_id"), user.clientId);
        // The request log holds neither the assertion nor anything of the form.
        assert.equal(JSON.stringify(emulator.requests).includes(assertion), false);
      } finally {
        await emulator.cleanup();
      }
      assert.deepEqual(await readdir(dir), [], "cleanup() removes the token file and its directory");
    }, "azmi-emulator-wi-");
  });

  test("serve() writes the token file, and its env makes a client detect and reach the endpoint on loopback", async () => {
    await withTempDir(async (dir) => {
      const running = await serve({ sources: ["WorkloadIdentity"], federatedTokenDirectory: dir });
      let file = "";
      try {
        const env = running.env.WorkloadIdentity!;
        assert.deepEqual(Object.keys(env), [
          "AZURE_FEDERATED_TOKEN_FILE",
          "AZURE_TENANT_ID",
          "AZURE_CLIENT_ID",
          "AZURE_AUTHORITY_HOST",
        ]);
        file = env.AZURE_FEDERATED_TOKEN_FILE!;
        assert.equal(env.AZURE_TENANT_ID, EMULATOR_TENANT);
        assert.equal(env.AZURE_CLIENT_ID, running.emulator.systemIdentity.clientId);
        // As the AKS webhook sets it: with a trailing slash.
        assert.match(env.AZURE_AUTHORITY_HOST!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
        assert.equal(running.urls.WorkloadIdentity, `${env.AZURE_AUTHORITY_HOST}${EMULATOR_TENANT}/oauth2/v2.0/token`);
        const client = testClient({ env });
        assert.equal(client.source, "WorkloadIdentity");
        const claims = readClaims((await client.acquireToken(VAULT)).accessToken)!;
        assert.equal(claims.appid, running.emulator.systemIdentity.clientId);
        assert.equal(claims.aud, VAULT);
        assert.deepEqual(running.emulator.requests.map((r) => [r.method, r.url, r.status]), [
          ["POST", running.urls.WorkloadIdentity, 200],
        ]);
      } finally {
        await running.close();
      }
      await assert.rejects(stat(file), "close() removes the token file");
      assert.deepEqual(await readdir(dir), []);
    }, "azmi-emulator-wi-");
  });

  interface ErrorCase {
    readonly name: string;
    readonly status: 400 | 401;
    readonly error: string;
    readonly code: number;
    readonly says?: RegExp;
    /** Changes the setup: the env, the client's options, the request's form, the token file, the clock. */
    readonly setup: (context: {
      env: Record<string, string>;
      file: string;
      assertion: string;
      emulator: Emulator;
      advance(ms: number): void;
    }) => Promise<{ clientId?: string; edit?: (form: URLSearchParams) => void } | void>;
  }
  const rewrite = async (file: string, change: (claims: Record<string, unknown>) => void, assertion: string) => {
    const claims = readClaims(assertion)!;
    change(claims);
    await writeFile(file, madeUp(claims));
  };
  const cases: ErrorCase[] = [
    {
      name: "an assertion whose subject no federated credential names",
      status: 400,
      error: "invalid_request",
      code: 70021,
      says:
        /No matching federated identity record found for presented assertion\. .*Assertion Subject: 'system:serviceaccount:default:someone-else'/,
      setup: ({ file, assertion }) =>
        rewrite(file, (c) => c.sub = "system:serviceaccount:default:someone-else", assertion),
    },
    {
      name: "an assertion from another issuer",
      status: 400,
      error: "invalid_request",
      code: 70021,
      says: /Assertion Issuer: 'https:\/\/issuer\.example\/'/,
      setup: ({ file, assertion }) => rewrite(file, (c) => c.iss = "https://issuer.example/", assertion),
    },
    {
      name: "an assertion for another audience",
      status: 400,
      error: "invalid_request",
      code: 70021,
      says: /Assertion Audience: 'https:\/\/kubernetes\.default\.svc'/,
      setup: ({ file, assertion }) => rewrite(file, (c) => c.aud = ["https://kubernetes.default.svc"], assertion),
    },
    {
      name: "a client ID the directory does not know",
      status: 400,
      error: "unauthorized_client",
      code: 700016,
      says: /Application with identifier '00000000-0000-0000-0000-00000000dead' was not found in the directory/,
      setup: () => Promise.resolve({ clientId: "00000000-0000-0000-0000-00000000dead" }),
    },
    {
      name: "a token file that holds no JWT",
      status: 400,
      error: "invalid_request",
      code: 50027,
      says: /JWT token is invalid or malformed/,
      setup: ({ file }) => writeFile(file, "not-a-jwt-at-all"),
    },
    {
      name: "a token file whose JWT has no JSON payload",
      status: 400,
      error: "invalid_request",
      code: 50027,
      setup: ({ file }) =>
        writeFile(file, `${part({ alg: "RS256" })}.${Buffer.from("{oops").toString("base64url")}.c2ln`),
    },
    {
      name: "a request without client_id",
      status: 400,
      error: "invalid_request",
      code: 900144,
      says: /The request body must contain the following parameter: 'client_id'/,
      setup: () => Promise.resolve({ edit: (form) => form.delete("client_id") }),
    },
    {
      name: "a tenant the emulator does not know",
      status: 400,
      error: "invalid_tenant",
      code: 90002,
      says: /Tenant '11111111-2222-3333-4444-555555555555' not found/,
      setup: ({ env }) => {
        env.AZURE_TENANT_ID = "11111111-2222-3333-4444-555555555555";
        return Promise.resolve();
      },
    },
    {
      name: "a made-up assertion with the right issuer and subject",
      status: 401,
      error: "invalid_client",
      code: 700027,
      says: /Client assertion failed signature validation/,
      setup: ({ file, assertion }) => rewrite(file, () => {}, assertion),
    },
    {
      name: "an assertion that has expired",
      status: 401,
      error: "invalid_client",
      code: 700024,
      says: /Client assertion is not within its valid time range/,
      setup: ({ advance }) => {
        advance(2 * 60 * 60 * 1000);
        return Promise.resolve();
      },
    },
  ];
  for (const each of cases) {
    test(`AADSTS${each.code} (${each.status} ${each.error}) for ${each.name}, surfaced by the client and never retried`, async () => {
      await withTempDir(async (dir) => {
        let now = Date.now();
        const { emulator, file, env, assertion } = await federated(dir, { now: () => now });
        try {
          const changed = await each.setup({ env, file, assertion, emulator, advance: (ms) => now += ms }) ?? {};
          const { fetch, seen } = counted(emulator, changed.edit);
          const sleeps: number[] = [];
          const client = testClient(
            { env, fetch, ...(changed.clientId ? { clientId: changed.clientId } : {}) },
            { sleep: (ms) => (sleeps.push(ms), Promise.resolve()) },
          );
          const secret = await readFile(file, "utf8");
          await assert.rejects(client.acquireToken(VAULT), (error) => {
            assert.ok(error instanceof ManagedIdentityError);
            assert.equal(error.code, "request_failed");
            assert.equal(error.source, "WorkloadIdentity");
            assert.equal(error.status, each.status);
            assert.equal(error.error, each.error);
            assert.match(error.errorDescription ?? "", new RegExp(`^AADSTS${each.code}: `));
            if (each.says) assert.match(error.errorDescription ?? "", each.says);
            assert.match(error.message, new RegExp(`AADSTS${each.code}`));
            const body = seen[0]!.body;
            assert.deepEqual(body.error_codes, [each.code]);
            assert.equal(error.correlationId, body.correlation_id);
            assert.match(String(body.correlation_id), /^[0-9a-f-]{36}$/);
            assert.ok(
              !JSON.stringify({ ...error, message: error.message }).includes(secret),
              "the assertion is not shown",
            );
            return true;
          });
          assert.equal(seen.length, 1, "400 and 401 are never retried");
          assert.equal(seen[0]!.status, each.status);
          assert.deepEqual(sleeps, []);
        } finally {
          await emulator.cleanup();
        }
      }, "azmi-emulator-wi-");
    });
  }

  describe("requests the client never makes", () => {
    const post = async (emulator: Emulator, body: string | Record<string, string>, init: RequestInit = {}) => {
      const response = await emulator.handler("WorkloadIdentity")(
        new Request(TOKEN_URL, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: typeof body === "string" ? body : new URLSearchParams(body).toString(),
          ...init,
        }),
      );
      return { status: response.status, body: await response.json().catch(() => undefined) as Record<string, unknown> };
    };
    const form = (emulator: Emulator, assertion: string) => ({
      grant_type: "client_credentials",
      client_id: emulator.systemIdentity.clientId,
      scope: `${VAULT}/.default`,
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });

    test("each is refused with Entra's error: method, content type, grant type, scope, missing assertion", async () => {
      await withTempDir(async (dir) => {
        const { emulator, assertion } = await federated(dir);
        try {
          const good = form(emulator, assertion);
          assert.equal((await post(emulator, good)).status, 200);
          const cases: [string, Promise<{ status: number; body: Record<string, unknown> }>, number, string, number][] =
            [
              ["GET", post(emulator, "", { method: "GET", body: undefined }), 400, "invalid_request", 900561],
              [
                "JSON instead of a form",
                post(emulator, JSON.stringify(good), { headers: { "Content-Type": "application/json" } }),
                400,
                "invalid_request",
                900144,
              ],
              [
                "another grant type",
                post(emulator, { ...good, grant_type: "password" }),
                400,
                "unsupported_grant_type",
                70003,
              ],
              ["a scope without /.default", post(emulator, { ...good, scope: VAULT }), 400, "invalid_scope", 1002012],
              ["no scope", post(emulator, { ...good, scope: "" }), 400, "invalid_request", 900144],
              [
                "no assertion",
                post(emulator, { ...good, client_assertion: "" }),
                401,
                "invalid_client",
                7000218,
              ],
              [
                "another assertion type",
                post(emulator, { ...good, client_assertion_type: "urn:example:other" }),
                401,
                "invalid_client",
                7000218,
              ],
            ];
          for (const [name, answer, status, error, code] of cases) {
            const { status: got, body } = await answer;
            assert.equal(got, status, name);
            assert.equal(body.error, error, name);
            assert.deepEqual(body.error_codes, [code], name);
            assert.match(String(body.error_description), new RegExp(`^AADSTS${code}: `), name);
          }
        } finally {
          await emulator.cleanup();
        }
      }, "azmi-emulator-wi-");
    });

    test("an error body has Entra's fields, and echoes the caller's client-request-id as its correlation ID", async () => {
      const emulator = createEmulator();
      const requestId = "0b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9";
      const { status, body } = await post(emulator, { grant_type: "client_credentials" }, {
        headers: { "Content-Type": "application/x-www-form-urlencoded", "client-request-id": requestId },
      });
      assert.equal(status, 400);
      assert.deepEqual(Object.keys(body).sort(), [
        "correlation_id",
        "error",
        "error_codes",
        "error_description",
        "error_uri",
        "timestamp",
        "trace_id",
      ]);
      assert.equal(body.correlation_id, requestId);
      assert.match(String(body.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
      assert.equal(body.error_uri, "https://login.microsoftonline.com/error?code=900144");
      assert.match(
        String(body.error_description),
        new RegExp(
          `\\r\\nTrace ID: ${body.trace_id}\\r\\nCorrelation ID: ${requestId}\\r\\nTimestamp: ${body.timestamp}$`,
        ),
      );
    });

    test("another path is 404, like Entra's", async () => {
      const emulator = createEmulator();
      for (const path of ["/", `/${EMULATOR_TENANT}/oauth2/token`, `/${EMULATOR_TENANT}/oauth2/v2.0/authorize`]) {
        const response = await emulator.handler("WorkloadIdentity")(new Request(`http://127.0.0.1:41741${path}`));
        assert.equal(response.status, 404, path);
        await response.body?.cancel();
      }
    });
  });

  test("the token file is one file, rotated in place before it expires, and removed by cleanup()", async () => {
    await withTempDir(async (dir) => {
      let now = 1_700_000_000_000;
      const emulator = createEmulator({ federatedTokenDirectory: dir, now: () => now });
      try {
        const file = await emulator.federatedTokenFile();
        const first = await readFile(file, "utf8");
        assert.equal(await emulator.federatedTokenFile(), file);
        assert.equal(await readFile(file, "utf8"), first, "not rewritten while fresh");
        now += 47 * 60 * 1000;
        await emulator.federatedTokenFile();
        assert.equal(await readFile(file, "utf8"), first);
        now += 2 * 60 * 1000; // 49 min: past 80% of its hour, as the kubelet rotates
        assert.equal(await emulator.federatedTokenFile(), file);
        const second = await readFile(file, "utf8");
        assert.notEqual(second, first);
        assert.equal(readClaims(second)!.iat, Math.floor(now / 1000));
        const [own] = await readdir(dir);
        assert.deepEqual(await readdir(join(dir, own!)), ["azure-identity-token"], "one file, no leftovers");
        // A request also rotates a stale file, and the old assertion is still accepted until it expires.
        const env = {
          AZURE_FEDERATED_TOKEN_FILE: file,
          AZURE_TENANT_ID: EMULATOR_TENANT,
          AZURE_CLIENT_ID: emulator.systemIdentity.clientId,
          AZURE_AUTHORITY_HOST: AUTHORITY,
        };
        now += 50 * 60 * 1000;
        const client = testClient({ env, fetch: emulator.handler("WorkloadIdentity") }, { now: () => now });
        assert.ok((await client.acquireToken(VAULT)).accessToken);
      } finally {
        await emulator.cleanup();
      }
      assert.deepEqual(await readdir(dir), []);
    }, "azmi-emulator-wi-");
  });

  test("fault scripts work for it: a 503 then normal behaviour is retried, and a fault's body has Entra's shape", async () => {
    await withTempDir(async (dir) => {
      const { emulator, env } = await federated(dir, {
        faults: { WorkloadIdentity: [{ status: 503 }, { status: 429, headers: { "Retry-After": "3" } }] },
      });
      try {
        const sleeps: number[] = [];
        const bodies: unknown[] = [];
        const handler = emulator.handler("WorkloadIdentity");
        const client = testClient({
          env,
          fetch: async (request) => {
            const response = await handler(request);
            bodies.push(await response.clone().json());
            return response;
          },
        }, { sleep: (ms) => (sleeps.push(ms), Promise.resolve()) });
        assert.ok((await client.acquireToken(VAULT)).accessToken);
        assert.deepEqual(emulator.requests.map((r) => r.status), [503, 429, 200]);
        assert.equal(sleeps.length, 2);
        assert.equal(sleeps[1], 3000, "Retry-After is honoured");
        const fault = bodies[0] as Record<string, unknown>;
        assert.equal(typeof fault.error, "string");
        assert.ok(Array.isArray(fault.error_codes));
        assert.match(String(fault.correlation_id), /^[0-9a-f-]{36}$/);
      } finally {
        await emulator.cleanup();
      }
    }, "azmi-emulator-wi-");
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
