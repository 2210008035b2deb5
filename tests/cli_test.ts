/**
 * The command-line interface (src/cli.ts): help, version, detect, doctor, the deadline, failures,
 * usage errors, the demo's Arc check, and the entry point run as a program. `azmi token` is in
 * tests/cli_token_test.ts, `azmi emulate` and workload identity in tests/cli_emulate_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectSource, type EnvRecord, type FetchLike } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { VERSION } from "../src/version.ts";
import { checkWritable } from "../src/cli/writable.ts";
import { oneLine } from "../src/cli/common.ts";
import { createEmulator } from "../src/emulator/mod.ts";
import { loopback } from "./helpers/fake.ts";
import { APP_SERVICE, emulatedEndpoint, run, SECRET, THUMBPRINT, VAULT } from "./helpers/cli.ts";
import { neverAnswers } from "./helpers/stall.ts";

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
      fetch: neverAnswers,
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
        fetch: neverAnswers,
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
