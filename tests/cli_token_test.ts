/**
 * `azmi token`: what it prints, and az's flags (--resource, --scope, -o json|tsv|none).
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { FetchLike } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { createEmulator, EMULATOR_TENANT, readClaims } from "../src/emulator/mod.ts";
import { APP_SERVICE, emulatedEndpoint, run, SECRET, VAULT } from "./helpers/cli.ts";
import { azLocalTime } from "./helpers/fake_tools.ts";

describe("azmi token", () => {
  test("prints the access token alone for App Service", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out, err } = await run(["token", VAULT], { env: APP_SERVICE, fetch: endpoint.fetch });
    assert.equal(code, EXIT_CODES.ok, err);
    assert.equal(out, `${endpoint.tokens[0]}\n`);
    assert.equal(readClaims(out.trim())?.aud, VAULT);
    assert.equal(err, "");
  });

  test("prints az's JSON with --json, the same as -o json (one expiresOn format)", async () => {
    const emulator = createEmulator({ secret: SECRET, refreshInSeconds: 600 });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out } = await run(["token", `${VAULT}/.default`, "--json"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(code, EXIT_CODES.ok);
    const json = JSON.parse(out);
    assert.deepEqual(Object.keys(json), [
      "accessToken",
      "expiresOn",
      "expires_on",
      "subscription",
      "tenant",
      "tokenType",
    ]);
    assert.equal(json.accessToken, endpoint.tokens[0]);
    assert.equal(json.tokenType, "Bearer");
    assert.match(json.expiresOn, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$/);
    assert.ok(json.expires_on * 1000 > Date.now() + 50 * 60_000);
  });

  test("gets a token for the user-assigned identity named by --client-id", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const user = emulator.identities[0]!;
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out } = await run(["token", VAULT, "--client-id", user.clientId], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(code, EXIT_CODES.ok);
    assert.equal(readClaims(out.trim())?.appid, user.clientId);
    assert.equal(new URL(endpoint.requests[0]!.url).searchParams.get("client_id"), user.clientId);
  });

  test("exits 1 with the error's message when the endpoint refuses an unknown --object-id", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const { code, out, err } = await run(["token", VAULT, "--object-id=00000000-0000-0000-0000-00000000dead"], {
      env: APP_SERVICE,
      fetch: emulator.handler("AppService"),
    });
    assert.equal(code, EXIT_CODES.failed);
    assert.equal(out, "");
    assert.match(
      err,
      /^azmi token: Cannot acquire token from "AppService": endpoint answered 400 .*\(request_failed\)\n$/,
    );
    assert.ok(!err.includes(SECRET));
  });

  test("exits 5 for an identity the source cannot serve", async () => {
    const { code, err } = await run(["token", VAULT, "--client-id", "abc"], {
      env: { MSI_ENDPOINT: "http://127.0.0.1:41741/msi/token" },
      fetch: () => Response.json({}),
    });
    assert.equal(code, EXIT_CODES.configuration);
    assert.match(err, /CloudShell.*\(unsupported_identity\)/);
  });
});
describe("azmi token with az's flags: --resource, --scope, -o json|tsv|none", () => {
  /** A JWT-shaped token with these claims (unsigned: the CLI never verifies, only reads `tid`). */
  const jwt = (claims: Record<string, unknown>) =>
    `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2lnbmF0dXJl`;
  /** An endpoint that answers every request with this body. */
  const answering = (body: Record<string, unknown>): FetchLike => () => Response.json(body);

  test("--resource and --scope (a trailing /.default removed) ask for the same resource as the argument", async () => {
    for (const flag of [["--resource", VAULT], [`--scope=${VAULT}/.default`], ["--scope", VAULT]]) {
      const args = [...flag, "--query", "accessToken", "-o", "tsv"];
      const emulator = createEmulator({ secret: SECRET });
      const endpoint = emulatedEndpoint(emulator, "AppService");
      const { code, out, err } = await run(["token", ...args], { env: APP_SERVICE, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.ok, err);
      assert.equal(out, `${endpoint.tokens[0]}\n`);
      assert.equal(new URL(endpoint.requests[0]!.url).searchParams.get("resource"), VAULT, args.join(" "));
      assert.equal(readClaims(out.trim())?.aud, VAULT);
    }
  });

  test("-o json prints az's fields in az's order: local expiresOn, Unix expires_on, the tid claim as tenant", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const before = Math.floor(Date.now() / 1000);
    const { code, out, err } = await run(["token", VAULT, "-o", "json"], { env: APP_SERVICE, fetch: endpoint.fetch });
    assert.equal(code, EXIT_CODES.ok, err);
    assert.equal(err, "");
    const json = JSON.parse(out);
    // knack sorts the keys: accessToken, expiresOn, expires_on, subscription, tenant, tokenType.
    assert.deepEqual(Object.keys(json), [
      "accessToken",
      "expiresOn",
      "expires_on",
      "subscription",
      "tenant",
      "tokenType",
    ]);
    assert.equal(json.subscription, "");
    assert.equal(json.accessToken, endpoint.tokens[0]);
    assert.ok(Number.isInteger(json.expires_on));
    assert.equal(json.expires_on, readClaims(json.accessToken)?.exp, "the token's own expiry");
    assert.ok(json.expires_on >= before + 3500 && json.expires_on <= before + 3700, String(json.expires_on));
    assert.match(json.expiresOn, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$/);
    assert.equal(json.expiresOn, azLocalTime(json.expires_on));
    assert.equal(json.tenant, EMULATOR_TENANT);
    assert.equal(json.tokenType, "Bearer");
    // Indented by two, as az prints it; the same for -ojson and --output=JSON.
    assert.equal(out, `${JSON.stringify(json, null, 2)}\n`);
    for (const form of [["-ojson"], ["--output=JSON"], ["--output", "json"]]) {
      const again = await run(["token", VAULT, ...form], { env: APP_SERVICE, fetch: endpoint.fetch });
      assert.equal(again.code, EXIT_CODES.ok, again.err);
      assert.deepEqual(Object.keys(JSON.parse(again.out)), Object.keys(json), form.join(" "));
    }
  });

  test("-o tsv prints the same values on one line, tab-separated, in az's order", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out, err } = await run(["token", "--scope", `${VAULT}/.default`, "-o", "tsv"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(code, EXIT_CODES.ok, err);
    assert.equal(err, "");
    assert.match(out, /^[^\n]+\n$/);
    const [accessToken, expiresOn, expiresOnSeconds, subscription, tenant, tokenType, ...rest] = out.slice(0, -1).split(
      "\t",
    );
    assert.equal(subscription, "");
    assert.deepEqual(rest, []);
    assert.equal(accessToken, endpoint.tokens[0]);
    assert.equal(expiresOn, azLocalTime(Number(expiresOnSeconds)));
    assert.equal(Number(expiresOnSeconds), readClaims(accessToken!)?.exp);
    assert.equal(tenant, EMULATOR_TENANT);
    assert.equal(tokenType, "Bearer");
    const upper = await run(["token", VAULT, "-oTSV"], { env: APP_SERVICE, fetch: endpoint.fetch });
    assert.equal(upper.out.split("\t").length, 6);
  });

  test("-o json and tsv leave the tenant empty when the token is not a JWT or its tid is not a tenant ID", async () => {
    const expires_on = Math.floor(Date.now() / 1000) + 3600;
    for (const token of ["opaque-token-value", jwt({ tid: "contoso.onmicrosoft.com" }), jwt({ oid: "x" })]) {
      const fetch = answering({ access_token: token, expires_on: String(expires_on), token_type: "Bearer" });
      const json = await run(["token", VAULT, "-o", "json"], { env: APP_SERVICE, fetch });
      assert.equal(json.code, EXIT_CODES.ok, json.err);
      assert.deepEqual(JSON.parse(json.out), {
        accessToken: token,
        expiresOn: azLocalTime(expires_on),
        expires_on,
        subscription: "",
        tenant: "",
        tokenType: "Bearer",
      });
      const tsv = await run(["token", VAULT, "-o", "tsv"], { env: APP_SERVICE, fetch });
      assert.equal(tsv.out, `${token}\t${azLocalTime(expires_on)}\t${expires_on}\t\t\tBearer\n`);
    }
  });

  test("expires_on is whole seconds, rounded down, when the endpoint gives expires_in", async () => {
    const before = Date.now();
    const tid = "4b0e3bd4-1c33-4e29-9a29-8e1f0c1d7a55";
    const fetch = answering({ access_token: jwt({ tid }), expires_in: 3599 });
    const { code, out } = await run(["token", VAULT, "-o", "json"], { env: APP_SERVICE, fetch });
    assert.equal(code, EXIT_CODES.ok);
    const json = JSON.parse(out);
    assert.equal(json.tenant, tid);
    assert.ok(json.expires_on >= Math.floor(before / 1000) + 3599 && json.expires_on <= Date.now() / 1000 + 3599);
  });

  test("-o none prints nothing, and only the exit code tells success from failure", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const ok = await run(["token", VAULT, "-o", "none"], { env: APP_SERVICE, fetch: emulator.handler("AppService") });
    assert.deepEqual(ok, { code: EXIT_CODES.ok, out: "", err: "" });
    const refused = await run([
      "token",
      VAULT,
      "--output",
      "none",
      "--client-id",
      "00000000-0000-0000-0000-00000000dead",
    ], {
      env: APP_SERVICE,
      fetch: emulator.handler("AppService"),
    });
    assert.equal(refused.code, EXIT_CODES.failed);
    assert.equal(refused.out, "");
    assert.match(refused.err, /\(request_failed\)\n$/, "errors still go to stderr, as with az -o none");
  });

  test("-o tsv prints a token type with a tab or line break escaped, so no column shifts", async () => {
    const token = jwt({ tid: EMULATOR_TENANT });
    for (const [token_type, shown] of [["Bearer\tEvil", "Bearer\\x09Evil"], ["Bearer\nEvil", "Bearer\\x0aEvil"]]) {
      const fetch = answering({ access_token: token, expires_in: 3600, token_type });
      const { code, out, err } = await run(["token", VAULT, "-o", "tsv"], { env: APP_SERVICE, fetch });
      assert.equal(code, EXIT_CODES.ok, err);
      assert.deepEqual(out.replace(/\n$/, "").split("\t").slice(4), [EMULATOR_TENANT, shown]);
    }
  });

  test("no format prints more than the token: stderr stays empty, stdout holds no secret and the token once", async () => {
    const formats = [[], ["--json"], ["-o", "json"], ["-o", "tsv"], ["-o", "none"]];
    for (const format of formats) {
      const emulator = createEmulator({ secret: SECRET });
      const endpoint = emulatedEndpoint(emulator, "AppService");
      const { code, out, err } = await run(["token", VAULT, ...format], { env: APP_SERVICE, fetch: endpoint.fetch });
      const name = format.join(" ") || "(bare)";
      assert.equal(code, EXIT_CODES.ok, `${name}: ${err}`);
      assert.equal(err, "", name);
      assert.ok(!out.includes(SECRET), `${name} prints the secret`);
      const token = endpoint.tokens[0]!;
      assert.equal(out.split(token).length - 1, format.includes("none") ? 0 : 1, `${name}: the token once`);
      // Beyond the token itself, no part of it (its claims' segment, its signature) is printed.
      const rest = out.replace(token, "");
      for (const part of token.split(".")) assert.ok(!rest.includes(part.slice(0, 16)), `${name} prints a part`);
    }
  });

  test("no format prints the secret on failure: stderr holds one line, stdout nothing", async () => {
    // A hostile endpoint that repeats the request's secret header in its error.
    const fetch: FetchLike = (request) =>
      Response.json(
        { error: "invalid_request", error_description: `bad ${request.headers.get("x-identity-header")}` },
        {
          status: 400,
        },
      );
    for (const format of [[], ["--json"], ["-o", "json"], ["-o", "tsv"], ["-o", "none"]]) {
      const { code, out, err } = await run(["token", VAULT, ...format], { env: APP_SERVICE, fetch });
      assert.equal(code, EXIT_CODES.failed, err);
      assert.equal(out, "");
      assert.match(err, /^azmi token: [^\n]+\n$/);
      assert.ok(!err.includes(SECRET), `${format.join(" ")} prints the secret`);
    }
  });
});
