import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { OriginError, tokenOrigin } from "../src/cli/sign_in/index.ts";
import { parseAzLocalTime, readAzAnswer } from "../src/cli/sign_in/az.ts";
import { readAzdAnswer } from "../src/cli/sign_in/azd.ts";
import { findTool, runTool } from "../src/cli/sign_in/process.ts";
import { readClaims, serve } from "../src/emulator/mod.ts";
import {
  AZ_SIGNED_OUT,
  azAnswer,
  AZD_SIGNED_OUT,
  azdAnswer,
  azLocalTime,
  type FakeTools,
  fakeTools,
} from "./helpers/fake_tools.ts";
import { loopback, sendJson } from "./helpers/fake.ts";

const VAULT = "https://vault.azure.net";
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJlLW9mLWEtZmFrZS10b2tlbg";
const signal = () => new AbortController().signal;
const now = () => Math.floor(Date.now() / 1000);

/**
 * Whether a process of this pid still runs. A killed child whose parent died first is a zombie
 * until its new parent reaps it, and a container's PID 1 may never do that: on Linux, a zombie
 * (state `Z` in /proc) counts as gone.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** Whether `pid` has ended within `ms` (a killed process takes a moment to go on a loaded machine). */
async function gone(pid: number, ms = 3_000): Promise<boolean> {
  const until = performance.now() + ms;
  while (alive(pid)) {
    if (performance.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

async function rejects(promise: Promise<unknown>, reason: string, pattern?: RegExp): Promise<OriginError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OriginError, `expected an OriginError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail("expected a rejection");
}

let tools: FakeTools;
before(async () => {
  tools = await fakeTools();
});
after(async () => {
  await tools.remove();
});

describe("the az origin", () => {
  test("runs az account get-access-token with exactly the expected argv and reads expires_on (az 2.54+)", async () => {
    const expires = now() + 3600;
    await tools.set("az", { stdout: azAnswer(TOKEN, expires) });
    const token = await tokenOrigin("az", { env: tools.env() }).token(VAULT, signal());
    assert.deepEqual(token, { accessToken: TOKEN, expiresOn: expires });
    assert.deepEqual(await tools.argv("az"), ["account", "get-access-token", "--resource", VAULT, "--output", "json"]);
    // expires_on wins over expiresOn, which an hour of daylight saving time makes ambiguous.
    await tools.set("az", {
      stdout: azAnswer(TOKEN, expires).replace(azLocalTime(expires), azLocalTime(expires - 600)),
    });
    assert.equal((await tokenOrigin("az", { env: tools.env() }).token(VAULT, signal())).expiresOn, expires);
  });

  test("passes --tenant when a tenant is asked for, and refuses a token of another tenant", async () => {
    const expires = now() + 3600;
    await tools.set("az", { stdout: azAnswer(TOKEN, expires, { tenant: TENANT }) });
    const origin = tokenOrigin("az", { env: tools.env(), tenant: TENANT });
    assert.equal((await origin.token(VAULT, signal())).accessToken, TOKEN);
    assert.deepEqual(await tools.argv("az"), [
      "account",
      "get-access-token",
      "--resource",
      VAULT,
      "--output",
      "json",
      "--tenant",
      TENANT,
    ]);
    await tools.set("az", { stdout: azAnswer(TOKEN, expires, { tenant: "54826b22-38d6-4fb2-bad9-b7b93a3e9c5a" }) });
    const error = await rejects(origin.token(VAULT, signal()), "wrong_tenant", /54826b22/);
    assert.ok(!error.message.includes(TOKEN));
  });

  test("reads expiresOn as local time when expires_on is absent (az before 2.54)", async () => {
    const expires = now() + 1800;
    await tools.set("az", { stdout: azAnswer(TOKEN, expires, { legacy: true }) });
    const token = await tokenOrigin("az", { env: tools.env() }).token(VAULT, signal());
    assert.equal(token.expiresOn, expires);
    assert.equal(parseAzLocalTime(azLocalTime(expires)), expires);
    assert.ok(Number.isNaN(parseAzLocalTime("2024-02-30 10:00:00.000000")));
    assert.ok(Number.isNaN(parseAzLocalTime("2024-01-01T10:00:00Z")));
  });

  test("a resource with ; and $(...) is one argument, not a command", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-injection-"));
    try {
      const hostile =
        `https://x.example/;touch\${IFS}${dir}/p1;$(touch\${IFS}${dir}/p2)\`touch\${IFS}${dir}/p3\`|touch\${IFS}${dir}/p4`;
      await tools.set("az", { stdout: azAnswer(TOKEN, now() + 3600) });
      await tokenOrigin("az", { env: tools.env() }).token(hostile, signal());
      assert.equal((await tools.argv("az"))[3], hostile);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a resource that az would read as an option, or with whitespace, is refused before any run", async () => {
    const before = await tools.runs("az");
    for (const resource of ["--debug", "-h", "https://a b", "https://a\nb", ""]) {
      await rejects(tokenOrigin("az", { env: tools.env() }).token(resource, signal()), "failed", /not a resource/);
    }
    assert.equal(await tools.runs("az"), before);
  });

  test("signed out: az's own message, exit code 1, is signed_out", async () => {
    await tools.set("az", AZ_SIGNED_OUT);
    await rejects(
      tokenOrigin("az", { env: tools.env() }).token(VAULT, signal()),
      "signed_out",
      /^az: Please run 'az login' to setup account\. \(run az login\)$/,
    );
  });

  test("another tenant: AADSTS tenant codes and az's refusal of --tenant are wrong_tenant", async () => {
    const said = [
      "ERROR: AADSTS50020: User account 'dev@contoso.com' from identity provider 'live.com' does not exist in tenant 'Fabrikam'.\nInteractive authentication is needed. Please run:\naz login --scope https://vault.azure.net/.default\n",
      `ERROR: AADSTS90002: Tenant '${TENANT}' not found.\n`,
      "ERROR: For managed identity account, getting access token for non-current tenants is not supported. The specified tenant must be the current tenant x\n",
    ];
    for (const stderr of said) {
      await tools.set("az", { stderr, code: 1 });
      await rejects(tokenOrigin("az", { env: tools.env(), tenant: TENANT }).token(VAULT, signal()), "wrong_tenant");
    }
  });

  test("any other failure is failed with az's first ERROR: line", async () => {
    await tools.set("az", {
      stderr: "WARNING: something\nERROR: (InvalidResource) The resource is unknown.\nTraceback...\n",
      code: 2,
    });
    await rejects(
      tokenOrigin("az", { env: tools.env() }).token(VAULT, signal()),
      "failed",
      /^az: \(InvalidResource\) The resource is unknown\.$/,
    );
  });

  test("az or azd not on PATH is missing, with what to do", async () => {
    const empty = await mkdtemp(join(tmpdir(), "azmi-empty-"));
    try {
      await rejects(
        tokenOrigin("az", { env: { PATH: empty } }).token(VAULT, signal()),
        "missing",
        /az was not found on PATH \(install the Azure CLI .* --tokens-from azd\|sp\)/,
      );
      await rejects(
        tokenOrigin("azd", { env: { PATH: empty } }).token(VAULT, signal()),
        "missing",
        /azd was not found on PATH \(install the Azure Developer CLI .* --tokens-from az\|sp\)/,
      );
      // Never this process's PATH: an env without PATH finds nothing.
      await rejects(tokenOrigin("az", { env: {} }).token(VAULT, signal()), "missing");
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test("escape sequences and a token echoed on stderr never reach the message", async () => {
    const secret = "s3cr3t-token-value-that-is-long-enough-to-look-opaque-0123456789";
    await tools.set("az", {
      stderr: `ERROR: \x1b]0;pwned\x07\x1b[31mbad\u202e "accessToken": "${secret}" ${TOKEN}\n`,
      code: 1,
    });
    const error = await rejects(tokenOrigin("az", { env: tools.env() }).token(VAULT, signal()), "failed");
    assert.ok(!error.message.includes(secret), error.message);
    assert.ok(!error.message.includes(TOKEN), error.message);
    assert.ok(!/[\p{Cc}\u202e]/u.test(error.message), error.message);
    assert.ok(error.message.length < 400);
  });

  test("invalid JSON, a missing token and a huge, past or absent expiry are invalid_output, never quoted", async () => {
    const cases = [
      `not json ${TOKEN}`,
      JSON.stringify({ accessToken: "", expires_on: now() + 3600 }),
      JSON.stringify({ accessToken: "has space", expires_on: now() + 3600 }),
      JSON.stringify({ accessToken: TOKEN, expires_on: 1e20 }),
      JSON.stringify({ accessToken: TOKEN, expires_on: "99999999999999" }),
      JSON.stringify({ accessToken: TOKEN, expires_on: now() - 10 }),
      JSON.stringify({ accessToken: TOKEN }),
      JSON.stringify({ accessToken: TOKEN, expiresOn: "soon" }),
    ];
    for (const stdout of cases) {
      await tools.set("az", { stdout });
      const error = await rejects(tokenOrigin("az", { env: tools.env() }).token(VAULT, signal()), "invalid_output");
      assert.ok(!error.message.includes(TOKEN), error.message);
    }
  });

  test("a token longer than the relay serves (32,768 characters) is invalid_output at once, from az and azd", () => {
    const longest = "e".repeat(32_768);
    const expires = now() + 3600;
    assert.equal(
      readAzAnswer(JSON.stringify({ accessToken: longest, expires_on: expires }), { now: Date.now() }).accessToken,
      longest,
    );
    const azd = (token: string) =>
      readAzdAnswer(JSON.stringify({ token, expiresOn: new Date(expires * 1000).toISOString() }), Date.now());
    assert.equal(azd(longest).accessToken, longest);
    assert.throws(
      () => readAzAnswer(JSON.stringify({ accessToken: `${longest}e`, expires_on: expires }), { now: Date.now() }),
      (error) => error instanceof OriginError && error.reason === "invalid_output",
    );
    assert.throws(
      () => azd(`${longest}e`),
      (error) => error instanceof OriginError && error.reason === "invalid_output",
    );
  });
});

describe("running a tool", () => {
  test("a hung tool is killed with its child at the timeout, and no process is left", async () => {
    await tools.set("az", { mode: "hang" });
    const started = performance.now();
    await rejects(
      tokenOrigin("az", { env: tools.env(), timeoutMs: 500 }).token(VAULT, signal()),
      "timeout",
      /within 500 ms/,
    );
    const took = performance.now() - started;
    assert.ok(took >= 450 && took < 2000, `took ${took} ms`);
    const pids = await tools.pids("az");
    assert.equal(pids.length, 2, "the script and its child");
    for (const pid of pids) assert.ok(await gone(pid), `pid ${pid} is still there`);
  });

  test("the abort signal ends a run at once, killing the tool", async () => {
    await tools.set("az", { mode: "hang" });
    const controller = new AbortController();
    const run = tokenOrigin("az", { env: tools.env(), timeoutMs: 30_000 }).token(VAULT, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const reason = new Error("client went away");
    const started = performance.now();
    controller.abort(reason);
    await assert.rejects(run, (error) => error === reason);
    assert.ok(performance.now() - started < 1000);
    for (const pid of await tools.pids("az")) assert.ok(await gone(pid), `pid ${pid} is still there`);
  });

  test("a tool printing forever is killed at the output cap", async () => {
    await tools.set("az", { mode: "forever" });
    const started = performance.now();
    await rejects(
      runTool("az", [], { env: tools.env(), maxOutputBytes: 64 * 1024, timeoutMs: 20_000 }),
      "invalid_output",
      /more than 65536 bytes on stdout/,
    );
    assert.ok(performance.now() - started < 5000);
    for (const pid of await tools.pids("az")) assert.ok(await gone(pid), `pid ${pid} is still there`);
  });

  test("a tool that exits leaving a child in a session of its own holding its output ends at the timeout", async () => {
    await tools.set("az", { mode: "escape" });
    const started = performance.now();
    try {
      await rejects(runTool("az", [], { env: tools.env(), timeoutMs: 800 }), "timeout");
      assert.ok(performance.now() - started < 3000);
    } finally {
      for (const pid of (await tools.pids("az")).slice(1)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });

  test("the tool is found on the given env's PATH only, in absolute directories", () => {
    const exists = (path: string) => path === "/opt/az/bin/az" || path === "C:\\tools\\az.cmd";
    assert.equal(findTool("az", { PATH: "relative:/opt/az/bin" }, { platform: "linux", exists }), "/opt/az/bin/az");
    assert.equal(findTool("az", { PATH: ".:" }, { platform: "linux", exists: () => true }), undefined);
    assert.equal(
      findTool("az", { Path: "C:\\tools", PATHEXT: ".EXE;.CMD" }, { platform: "win32", exists }),
      "C:\\tools\\az.cmd",
    );
  });

  test("the tool runs from a fixed system directory, not this process's working directory", async () => {
    await tools.set("az", { stdout: "" });
    const run = await runTool("sh", ["-c", "pwd"], { env: tools.env() });
    assert.equal(run.stdout.trim(), (await import("node:fs")).realpathSync("/bin"));
  });
});

describe("the azd origin", () => {
  test("runs azd auth token with the resource as a /.default scope and reads its RFC 3339 expiry", async () => {
    const expires = now() + 3600;
    await tools.set("azd", { stdout: azdAnswer(TOKEN, expires) });
    const origin = tokenOrigin("azd", { env: tools.env(), tenant: TENANT });
    assert.deepEqual(await origin.token("https://management.azure.com/", signal()), {
      accessToken: TOKEN,
      expiresOn: expires,
    });
    assert.deepEqual(await tools.argv("azd"), [
      "auth",
      "token",
      "--scope",
      "https://management.azure.com//.default",
      "--output",
      "json",
      "--tenant-id",
      TENANT,
    ]);
  });

  test("not logged in is signed_out; other failures failed; bad output invalid_output", async () => {
    await tools.set("azd", AZD_SIGNED_OUT);
    await rejects(tokenOrigin("azd", { env: tools.env() }).token(VAULT, signal()), "signed_out", /azd auth login/);
    await tools.set("azd", { stderr: "\nERROR: fetching token: AADSTS90002: Tenant 'x' not found.\n", code: 1 });
    await rejects(tokenOrigin("azd", { env: tools.env() }).token(VAULT, signal()), "wrong_tenant");
    await tools.set("azd", { stderr: "\nERROR: something else\n", code: 1 });
    await rejects(tokenOrigin("azd", { env: tools.env() }).token(VAULT, signal()), "failed", /^azd: something else$/);
    for (
      const stdout of [
        "{",
        JSON.stringify({ token: TOKEN, expiresOn: "2024-13-45" }),
        JSON.stringify({ token: TOKEN, expiresOn: "9999-01-01T00:00:00Z" }),
      ]
    ) {
      await tools.set("azd", { stdout });
      const error = await rejects(tokenOrigin("azd", { env: tools.env() }).token(VAULT, signal()), "invalid_output");
      assert.ok(!error.message.includes(TOKEN));
    }
  });
});

describe("the service principal origin", () => {
  test("without its variables it is missing at once", () => {
    for (
      const env of [{}, { AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: "c" }, {
        AZURE_CLIENT_ID: "c",
        AZURE_CLIENT_SECRET: "s",
      }]
    ) {
      assert.throws(
        () => tokenOrigin("sp", { env }),
        (error) => error instanceof OriginError && error.reason === "missing",
      );
    }
  });

  test("a federated token file is exchanged at the emulator's Entra endpoint", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azmi-sp-"));
    const running = await serve({ sources: ["WorkloadIdentity"], federatedTokenDirectory: dir });
    try {
      const env = running.env.WorkloadIdentity!;
      const origin = tokenOrigin("sp", { env });
      const token = await origin.token(VAULT, signal());
      const claims = readClaims(token.accessToken)!;
      assert.equal(claims.aud, VAULT);
      assert.equal(claims.appid, env.AZURE_CLIENT_ID);
      assert.ok(Math.abs(Number(claims.exp) - token.expiresOn) <= 2);
      // Another tenant: Entra's invalid_tenant.
      const other = tokenOrigin("sp", { env, tenant: "fabrikam.example" });
      await rejects(other.token(VAULT, signal()), "wrong_tenant", /AADSTS90002/);
    } finally {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a client secret is sent as client_secret, and never appears in an error", async () => {
    const secret = "Xy8Q~client-secret-value_0123456789";
    const server = await loopback((_request, response, body) => {
      const form = new URLSearchParams(body);
      if (form.get("client_secret") === secret && !form.has("client_assertion")) {
        sendJson(response, 200, { token_type: "Bearer", expires_in: 3599, access_token: TOKEN });
      } else {
        sendJson(response, 401, {
          error: "invalid_client",
          error_description: `AADSTS7000215: Invalid client secret provided: ${form.get("client_secret")}`,
        });
      }
    });
    try {
      const env = {
        AZURE_TENANT_ID: TENANT,
        AZURE_CLIENT_ID: "app-id",
        AZURE_CLIENT_SECRET: secret,
        AZURE_AUTHORITY_HOST: server.url,
      };
      const token = await tokenOrigin("sp", { env }).token(VAULT, signal());
      assert.equal(token.accessToken, TOKEN);
      const form = new URLSearchParams(server.requests[0]!.body);
      assert.equal(server.requests[0]!.url, `/${TENANT}/oauth2/v2.0/token`);
      assert.deepEqual([...form.keys()].sort(), ["client_id", "client_secret", "grant_type", "scope"]);
      assert.equal(form.get("scope"), `${VAULT}/.default`);
      const wrong = "Wr0ng~secret-value_987654321";
      const error = await rejects(
        tokenOrigin("sp", { env: { ...env, AZURE_CLIENT_SECRET: wrong } }).token(VAULT, signal()),
        "failed",
        /AADSTS7000215/,
      );
      assert.ok(!error.message.includes(wrong), error.message);
    } finally {
      await server.close();
    }
  });
});
