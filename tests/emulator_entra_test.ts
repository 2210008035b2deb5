/**
 * The emulator as Microsoft Entra ID's token endpoint for workload identity: the client's token
 * requests against it, and the requests the client never makes, which it answers as Entra does.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import process from "node:process";
import { join } from "node:path";
import { ManagedIdentityError } from "../mod.ts";
import { createEmulator, type Emulator, EMULATOR_TENANT, readClaims, serve } from "../src/emulator/mod.ts";
import { testClient } from "./helpers/fake.ts";
import { VAULT, withTempDir } from "./helpers/emulator.ts";

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
