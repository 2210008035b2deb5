import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { Buffer } from "node:buffer";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  detectSource,
  type EnvRecord,
  type FetchLike,
  ManagedIdentityClient,
  ManagedIdentityError,
  TokenCache,
} from "../mod.ts";
import { type CliIo, EXIT_CODES, main } from "../src/cli.ts";
import { VERSION } from "../src/version.ts";
import { checkWritable } from "../src/cli/writable.ts";
import { oneLine } from "../src/cli/common.ts";
import { createEmulator, type Emulator, EMULATOR_TENANT, readClaims } from "../src/emulator/mod.ts";
import { loopback } from "./helpers/fake.ts";
import { parseExports, startEmulate } from "./helpers/emulate.ts";

const VAULT = "https://vault.azure.net";
const SECRET = "s3cret-identity-header-value";
const THUMBPRINT = "9B765EBD524777EF0B3DAF630C3B61E669DE4254";
const APP_SERVICE: EnvRecord = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: SECRET };

/** Runs `main` with an env record and a fake fetch, capturing what it prints. */
async function run(
  args: string[],
  options: Partial<Pick<CliIo, "env" | "fetch" | "until">> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, {
    env: {},
    ...options,
    stdout: (text) => out += text,
    stderr: (text) => err += text,
  });
  return { code, out, err };
}

/** An emulator's handler that also records the requests it saw and the tokens it issued. */
function emulatedEndpoint(emulator: Emulator, source: Parameters<Emulator["handler"]>[0]) {
  const handler = emulator.handler(source);
  const requests: Request[] = [];
  const tokens: string[] = [];
  const fetch: FetchLike = async (request) => {
    requests.push(request);
    const response = await handler(request);
    const body = await response.clone().json().catch(() => ({}));
    if (typeof body.access_token === "string") tokens.push(body.access_token);
    return response;
  };
  return { fetch, requests, tokens };
}

describe("oneLine()", () => {
  test("oneLine() puts a message on one line in linear time, however long its runs of blanks", () => {
    assert.equal(oneLine("a \r\n b\tc  d\n"), "a b\tc  d ");
    const blanks = " ".repeat(1024 * 1024);
    const started = performance.now();
    const line = oneLine(`${blanks}x\n${blanks}y`);
    const ms = performance.now() - started;
    assert.equal(line, `${blanks}x y`);
    // Minutes when each blank rescanned the run after it.
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
  });
});

describe("azmi help", () => {
  test("main() prints the commands and exit codes for --help, -h and help", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const { code, out, err } = await run(args);
      assert.equal(code, EXIT_CODES.ok);
      assert.equal(err, "");
      for (const word of ["token", "detect", "doctor", "emulate", "Exit codes", "unavailable", "timeout"]) {
        assert.match(out, new RegExp(word));
      }
    }
  });

  test("main() prints a command's help for `help token` and `token --help`", async () => {
    for (const args of [["help", "token"], ["token", "--help"], ["doctor", "-h"]]) {
      const { code, out } = await run(args);
      assert.equal(code, EXIT_CODES.ok);
      assert.match(out, /^Usage: azmi (token|doctor)/);
    }
  });

  test("main() without a command prints the usage to stderr and exits 2", async () => {
    const { code, out, err } = await run([]);
    assert.equal(code, EXIT_CODES.usage);
    assert.equal(out, "");
    assert.match(err, /Usage: azmi <command>/);
  });
});

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

describe("azmi --version", () => {
  test("prints azmi and the package version for --version and -V, and nothing else", async () => {
    for (const flag of ["--version", "-V"]) {
      const { code, out, err } = await run([flag]);
      assert.equal(code, EXIT_CODES.ok);
      assert.equal(out, `azmi ${VERSION}\n`);
      assert.equal(err, "");
    }
  });
});

describe("azmi token with az's flags: --resource, --scope, -o json|tsv|none", () => {
  /** A JWT-shaped token with these claims (unsigned: the CLI never verifies, only reads `tid`). */
  const jwt = (claims: Record<string, unknown>) =>
    `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2lnbmF0dXJl`;
  /** An endpoint that answers every request with this body. */
  const answering = (body: Record<string, unknown>): FetchLike => () => Response.json(body);
  /** Python's `datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M:%S.%f")`, this process's time zone. */
  const pythonLocal = (seconds: number) => {
    const d = new Date(seconds * 1000);
    const pad = (n: number) => (n < 10 ? `0${n}` : `${n}`);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.000000`;
  };

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
    assert.equal(json.expiresOn, pythonLocal(json.expires_on));
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
    assert.equal(expiresOn, pythonLocal(Number(expiresOnSeconds)));
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
        expiresOn: pythonLocal(expires_on),
        expires_on,
        subscription: "",
        tenant: "",
        tokenType: "Bearer",
      });
      const tsv = await run(["token", VAULT, "-o", "tsv"], { env: APP_SERVICE, fetch });
      assert.equal(tsv.out, `${token}\t${pythonLocal(expires_on)}\t${expires_on}\t\t\tBearer\n`);
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

describe("azmi detect", () => {
  const cases: { name: string; env: EnvRecord; line: RegExp }[] = [
    {
      name: "AppService",
      env: APP_SERVICE,
      line:
        /^AppService \(IDENTITY_ENDPOINT=http:\/\/127\.0\.0\.1:41741\/msi\/token, IDENTITY_HEADER=<set, redacted>\)\n$/,
    },
    {
      name: "ServiceFabric",
      env: {
        ...APP_SERVICE,
        IDENTITY_ENDPOINT: "https://127.0.0.1:2377/msi/token",
        IDENTITY_SERVER_THUMBPRINT: THUMBPRINT,
      },
      line: new RegExp(
        `^ServiceFabric \\(IDENTITY_ENDPOINT=https://127\\.0\\.0\\.1:2377/msi/token, IDENTITY_HEADER=<set, redacted>, IDENTITY_SERVER_THUMBPRINT=${THUMBPRINT}\\)\n$`,
      ),
    },
    {
      name: "AzureML",
      env: { MSI_ENDPOINT: "http://127.0.0.1:46808/msi/token", MSI_SECRET: SECRET },
      line: /^AzureML \(MSI_ENDPOINT=http:\/\/127\.0\.0\.1:46808\/msi\/token, MSI_SECRET=<set, redacted>\)\n$/,
    },
    {
      name: "CloudShell",
      env: { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" },
      line: /^CloudShell \(MSI_ENDPOINT=http:\/\/localhost:50342\/oauth2\/token\)\n$/,
    },
    {
      name: "AzureArc",
      env: {
        IDENTITY_ENDPOINT: "http://localhost:40342/metadata/identity/oauth2/token",
        IMDS_ENDPOINT: "http://localhost:40342",
      },
      line: /^AzureArc \(IDENTITY_ENDPOINT=http:\/\/localhost:40342\/metadata\/identity\/oauth2\/token, IMDS_ENDPOINT=/,
    },
  ];
  for (const each of cases) {
    test(`names ${each.name} and its variables, secrets redacted`, async () => {
      const { code, out, err } = await run(["detect"], { env: each.env });
      assert.equal(code, EXIT_CODES.ok);
      assert.match(out, each.line);
      assert.ok(!`${out}${err}`.includes(SECRET), "the secret must not be printed");
    });
  }

  test("prints JSON with --json, secrets redacted", async () => {
    const { code, out } = await run(["detect", "--json"], {
      env: { MSI_ENDPOINT: "http://127.0.0.1:46808/msi/token", MSI_SECRET: SECRET, DEFAULT_IDENTITY_CLIENT_ID: "c" },
    });
    assert.equal(code, EXIT_CODES.ok);
    assert.deepEqual(JSON.parse(out), {
      source: "AzureML",
      variables: {
        MSI_ENDPOINT: "http://127.0.0.1:46808/msi/token",
        MSI_SECRET: "<set, redacted>",
        DEFAULT_IDENTITY_CLIENT_ID: "c",
      },
      endpoint: "http://127.0.0.1:46808/msi/token",
    });
    assert.ok(!out.includes(SECRET));
  });

  const arcAgentHere = detectSource({}) !== "DefaultToIMDS";
  test(
    "says that IMDS is assumed when no variable matches",
    { skip: arcAgentHere && "the Arc agent is installed" },
    async () => {
      const plain = await run(["detect"], { env: {} });
      assert.equal(plain.code, EXIT_CODES.ok);
      assert.match(
        plain.out,
        /^DefaultToIMDS \(no managed identity variable is set: IMDS is assumed at http:\/\/169\.254\.169\.254\)\n$/,
      );
      const pod = await run(["detect", "--json"], {
        env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://10.0.0.1:2579/" },
      });
      const json = JSON.parse(pod.out);
      assert.equal(json.source, "DefaultToIMDS");
      assert.deepEqual(json.variables, { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://10.0.0.1:2579/" });
      assert.equal(json.endpoint, "http://10.0.0.1:2579/metadata/identity/oauth2/token");
      assert.match(json.note, /IMDS is assumed/);
    },
  );
});

describe("azmi doctor", () => {
  test("explains a working App Service endpoint and exits 0, without the token or the secret", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out, err } = await run(["doctor"], { env: APP_SERVICE, fetch: endpoint.fetch });
    assert.equal(code, EXIT_CODES.ok, out + err);
    assert.match(out, /1\. Detection\n\s+Source: AppService/);
    assert.match(out, /IDENTITY_HEADER=<set, redacted>/);
    assert.match(out, /2\. Connection to 127\.0\.0\.1:41741.*\n\s+Reachable: it answered \(HTTP 400\) in \d+ ms/);
    assert.match(out, /Claims: aud=https:\/\/management\.azure\.com, appid=[0-9a-f-]{36}, oid=[0-9a-f-]{36}/);
    assert.match(out, /Expires \d{4}-\d\d-\d\dT/);
    assert.match(out, /Result: .*\(exit code 0\)\n$/);
    assert.equal(endpoint.tokens.length, 1);
    assert.ok(!out.includes(endpoint.tokens[0]!), "the token must not be printed");
    assert.ok(!`${out}${err}`.includes(SECRET), "the secret must not be printed");
    // The connection check sends no header of ours, so no secret.
    const check = endpoint.requests[0]!;
    assert.equal(new URL(check.url).pathname, "/");
    assert.equal(check.headers.get("x-identity-header"), null);
    assert.equal(new URL(endpoint.requests[1]!.url).searchParams.get("resource"), "https://management.azure.com");
  });

  test("exits 3 when nothing listens at the endpoint", async () => {
    const server = await loopback(() => {});
    await server.close(); // a port that was free a moment ago, now closed
    const { code, out } = await run(["doctor", VAULT], {
      env: { IDENTITY_ENDPOINT: `${server.url}/msi/token`, IDENTITY_HEADER: SECRET },
    });
    assert.equal(code, EXIT_CODES.unavailable, out);
    assert.match(out, /Unreachable after \d+ ms/);
    assert.match(out, /Failed \(unavailable\)/);
    assert.match(out, /What to do: /);
    assert.ok(!out.includes(SECRET));
  });

  test("exits 1 with advice when the endpoint refuses the identity", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const { code, out } = await run(["doctor", "--client-id", "00000000-0000-0000-0000-00000000dead"], {
      env: APP_SERVICE,
      fetch: emulator.handler("AppService"),
    });
    assert.equal(code, EXIT_CODES.failed, out);
    assert.match(out, /Failed \(request_failed\): Cannot acquire token from "AppService": endpoint answered 400/);
    assert.match(out, /What to do: The endpoint does not know this identity/);
    assert.match(out, /client ID 00000000-0000-0000-0000-00000000dead/);
  });

  test("exits 5 when the configuration is unusable", async () => {
    const { code, out } = await run(["doctor"], {
      env: { ...APP_SERVICE, IDENTITY_SERVER_THUMBPRINT: THUMBPRINT }, // Service Fabric over http:
      fetch: () => Response.json({}),
    });
    assert.equal(code, EXIT_CODES.configuration, out);
    assert.match(out, /Source: ServiceFabric/);
    assert.match(out, /Failed \(invalid_configuration\): IDENTITY_ENDPOINT must be an https: URL/);
    assert.ok(!out.includes(SECRET));
  });
});

describe("azmi --timeout: the whole command's deadline", () => {
  test("token --timeout 300 ends at the deadline, exit 4, on an endpoint that answers 503 every time", async () => {
    let requests = 0;
    const started = Date.now();
    const { code, out, err } = await run(["token", VAULT, "--timeout", "300"], {
      env: APP_SERVICE,
      fetch: () => {
        requests++;
        return new Response("busy", { status: 503 }); // retried by the library after 1 s
      },
    });
    const elapsed = Date.now() - started;
    assert.equal(code, EXIT_CODES.timeout, err);
    assert.equal(out, "");
    assert.equal(err, "azmi token: no token within the 300 ms deadline (--timeout)\n");
    assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    assert.ok(requests >= 1 && requests <= 2, `${requests} requests`);
  });

  test("token --timeout 5000 prints the token that arrives before the deadline", async () => {
    const emulator = createEmulator({ secret: SECRET });
    const endpoint = emulatedEndpoint(emulator, "AppService");
    const { code, out, err } = await run(["token", VAULT, "--timeout", "5000"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(code, EXIT_CODES.ok, err);
    assert.equal(out, `${endpoint.tokens[0]}\n`);
    assert.equal(err, "");
  });

  test("token --timeout 200 ends at the deadline, exit 4, on an endpoint that never answers", async () => {
    const started = Date.now();
    const { code, out, err } = await run(["token", VAULT, "--timeout", "200"], {
      env: APP_SERVICE,
      fetch: () => new Promise<Response>(() => {}),
    });
    const elapsed = Date.now() - started;
    assert.equal(code, EXIT_CODES.timeout, err);
    assert.equal(out, "");
    assert.equal(err, "azmi token: no token within the 200 ms deadline (--timeout)\n");
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  });

  for (const [ms, bound] of [[300, 1500], [1000, 1700]] as const) {
    test(`doctor --timeout ${ms} fits its three steps in the deadline, exit 4, on an endpoint that never answers`, async () => {
      const started = Date.now();
      const { code, out } = await run(["doctor", "--timeout", String(ms)], {
        env: APP_SERVICE,
        fetch: () => new Promise<Response>(() => {}),
      });
      const elapsed = Date.now() - started;
      assert.equal(code, EXIT_CODES.timeout, out);
      // The connection check takes at most half of the deadline, the token request the rest.
      assert.match(out, new RegExp(`No answer: no answer within ${ms / 2} ms`));
      assert.match(out, new RegExp(`one attempt, within the ${ms} ms deadline`));
      assert.match(out, new RegExp(`Failed \\(timeout\\): no token within the ${ms} ms deadline \\(--timeout\\)`));
      assert.match(out, /What to do: .*larger --timeout/);
      assert.match(out, /Result: the endpoint did not answer in time \(exit code 4\)\n$/);
      assert.ok(elapsed < bound, `took ${elapsed} ms`);
    });
  }

  test("the help of token and doctor says --timeout is the whole command's deadline", async () => {
    for (const command of ["token", "doctor"]) {
      const { out } = await run([command, "--help"]);
      assert.match(out, /--timeout MS +the whole command's deadline/);
    }
  });
});

describe("azmi token without a managed identity", () => {
  const arcAgentHere = detectSource({}) !== "DefaultToIMDS";
  test(
    "exits 3 within a second with one line when nothing listens at IMDS",
    { skip: arcAgentHere && "the Arc agent is installed" },
    async () => {
      // A loopback port that was free a moment ago, now closed; the runtime's own fetch.
      const port = await new Promise<number>((resolve, reject) => {
        const server = createNetServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as AddressInfo;
          server.close(() => resolve(port));
        });
      });
      const started = Date.now();
      const { code, out, err } = await run(["token", VAULT], {
        env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${port}` },
      });
      const elapsed = Date.now() - started;
      assert.equal(code, EXIT_CODES.unavailable, err);
      assert.equal(out, "");
      assert.match(err, /^azmi token: no managed identity here: [^\n]+\n$/);
      assert.ok(elapsed < 1500, `took ${elapsed} ms`);
    },
  );
});

describe("azmi with a hostile endpoint", () => {
  for (const expiry of [{ expires_on: 1e20 }, { expires_on: "17000000000000" }, { expires_in: 1e300 }]) {
    test(`token --json and doctor exit 1 with invalid_response for ${JSON.stringify(expiry)}, without crashing`, async () => {
      const fetch: FetchLike = () => Response.json({ access_token: "t", ...expiry });
      const token = await run(["token", VAULT, "--json"], { env: APP_SERVICE, fetch });
      assert.equal(token.code, EXIT_CODES.failed, token.err);
      assert.equal(token.out, "");
      assert.match(token.err, /more than a year ahead/);
      const doctor = await run(["doctor", VAULT], { env: APP_SERVICE, fetch });
      assert.equal(doctor.code, EXIT_CODES.failed, doctor.out);
      assert.match(doctor.out, /Failed \(invalid_response\)/);
    });
  }

  test("doctor makes exactly one token request on an IMDS that answers 410, as it says", async () => {
    const tokenRequests: string[] = [];
    const started = Date.now();
    const { code, out } = await run(["doctor", VAULT], {
      env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://127.0.0.1:41799" },
      fetch: (request) => {
        // The probe, answered as IMDS answers it.
        if (!request.headers.has("metadata")) return Response.json({ error: "invalid_request" }, { status: 400 });
        tokenRequests.push(request.url);
        return Response.json({ error: "updating" }, { status: 410 });
      },
    });
    assert.equal(code, EXIT_CODES.failed, out);
    assert.match(out, /one attempt/);
    assert.equal(tokenRequests.length, 1);
    assert.ok(Date.now() - started < 2000, "no 70 s of 410 retries");
  });
});

describe("azmi usage errors", () => {
  const cases: { args: string[]; message: RegExp; help: string }[] = [
    { args: ["frobnicate"], message: /Unknown command "frobnicate"/, help: "azmi --help" },
    {
      args: ["token", VAULT, "--frob"],
      message: /Unknown flag "--frob": "azmi token" takes --client-id/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "--client-id", "a", "--object-id", "b"],
      message: /at most one of --client-id, --object-id, --resource-id: got --client-id and --object-id/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "--resource", VAULT],
      message: /Give one resource, .*: got the argument "https:\/\/vault\.azure\.net" and --resource/,
      help: "azmi token --help",
    },
    { args: ["token", VAULT, "--scope", VAULT], message: /got the argument .* and --scope/, help: "azmi token --help" },
    {
      args: ["token", "--scope", `${VAULT}/.default`, "https://storage.azure.com/.default"],
      message: /Give one resource/,
      help: "azmi token --help",
    },
    {
      args: ["token", "--scope", VAULT, "--scope", "https://storage.azure.com"],
      message: /Flag "--scope" is given more than once/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "-o", "xml"],
      message: /Flag "--output" expects one of json, jsonc, tsv, yaml, yamlc, table, none: got "xml"/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "-o"],
      message: /Flag "-o" needs a value: one of json, jsonc, tsv, yaml, yamlc, table, none/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "--json", "-o", "tsv"],
      message: /--json is -o json: give one of them, not --json and --output tsv/,
      help: "azmi token --help",
    },
    {
      args: ["token", VAULT, "-x"],
      message: /Unknown flag "-x": .*, -o, -s, -n, -t and --help/,
      help: "azmi token --help",
    },
    { args: ["token", VAULT, "--resource"], message: /Flag "--resource" needs a value/, help: "azmi token --help" },
    { args: ["detect", "-o", "json"], message: /Unknown flag "-o"/, help: "azmi detect --help" },
    {
      args: ["token", VAULT, "--timeout"],
      message: /Flag "--timeout" needs a value: a number of milliseconds/,
      help: "azmi token --help",
    },
    {
      args: ["doctor", "--timeout", "soon"],
      message: /Flag "--timeout" expects a whole number of milliseconds .*: got "soon"/,
      help: "azmi doctor --help",
    },
    {
      args: ["emulate", "--port", "70000"],
      message: /Flag "--port" expects a port number from 0 to 65535: got "70000"/,
      help: "azmi emulate --help",
    },
    { args: ["emulate", "--port", "http"], message: /Flag "--port" .*got "http"/, help: "azmi emulate --help" },
    {
      args: ["emulate", "--source", "mars"],
      message: /Flag "--source" expects one of .*got "mars"/,
      help: "azmi emulate --help",
    },
    { args: ["detect", "--json=yes"], message: /Flag "--json" takes no value/, help: "azmi detect --help" },
  ];
  for (const each of cases) {
    test(`main() exits 2 for \`${each.args.join(" ")}\``, async () => {
      const { code, out, err } = await run(each.args, { env: APP_SERVICE, fetch: () => Response.json({}) });
      assert.equal(code, EXIT_CODES.usage);
      assert.equal(out, "");
      assert.match(err, each.message);
      assert.ok(err.includes(`Run "${each.help}" for usage.`), err);
    });
  }
});

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

describe("the demo's Azure Arc check (checkWritable)", () => {
  test("writes and removes a probe file in a writable directory, and never creates a missing one", async () => {
    const dir = await mkdtemp(`${tmpdir()}/azmi-writable-`);
    try {
      assert.deepEqual(await checkWritable(dir), { writable: true });
      assert.deepEqual(await readdir(dir), [], "the probe file is removed");
      assert.deepEqual(await checkWritable(`${dir}/tokens`), { writable: false, reason: "it does not exist" });
      await assert.rejects(stat(`${dir}/tokens`), "a missing directory is not created");
      await writeFile(`${dir}/file`, "");
      assert.deepEqual(await checkWritable(`${dir}/file`), { writable: false, reason: "it is not a directory" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const root = process.getuid?.() === 0;
  test(
    "says why a directory without write permission is not writable",
    { skip: root && "root writes regardless of the mode" },
    async () => {
      const dir = await mkdtemp(`${tmpdir()}/azmi-writable-`);
      try {
        await chmod(dir, 0o555);
        assert.deepEqual(await checkWritable(dir), { writable: false, reason: "this user may not write there" });
      } finally {
        await chmod(dir, 0o755);
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

test("the cli.ts entry point prints its version as a program in this runtime, on Deno with no permission", async () => {
  const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
  const runtime = globalThis as { Deno?: unknown };
  const args = runtime.Deno ? ["run", cli, "--version"] : [cli, "--version"];
  const result = await new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error as { code?: number | string }).code ?? null : 0, stdout, stderr });
    });
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, `azmi ${VERSION}\n`);
});

test("the cli.ts entry point runs as a program in this runtime and prints its usage", async () => {
  const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
  const runtime = globalThis as { Deno?: unknown; Bun?: unknown };
  const args = runtime.Deno ? ["run", "-A", cli, "--help"] : [cli, "--help"];
  const result = await new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error as { code?: number | string }).code ?? null : 0, stdout, stderr });
    });
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^azmi: Azure managed identity tokens/);
  assert.match(result.stdout, /Exit codes:/);
});
