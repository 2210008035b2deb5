/**
 * `azmi emulate --tokens-from`: the relay of the developer's own sign-in as the command line runs
 * it, over a fake `az` and `azd` first on the env's PATH (never the real tools), with this
 * module's client as the app.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { networkInterfaces } from "node:os";
import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { AZ_SIGNED_OUT, azAnswer, azdAnswer, type FakeTools, fakeTools } from "./helpers/fake_tools.ts";
import { run } from "./helpers/cli.ts";
import { parseExports, startEmulate } from "./helpers/emulate.ts";

const VAULT = "https://vault.azure.net";
const TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCJ9.c2lnbmF0dXJl";

describe("azmi emulate --tokens-from", { timeout: 60_000 }, () => {
  let tools: FakeTools;
  const expires = () => Math.floor(Date.now() / 1000) + 3600;
  before(async () => {
    tools = await fakeTools({
      az: { stdout: azAnswer(TOKEN, expires()) },
      azd: { stdout: azdAnswer(TOKEN, expires()) },
    });
  });
  after(() => tools.remove());

  test("az: App Service's variables, a real token for the app, one az run for many clients", async () => {
    await tools.set("az", { stdout: azAnswer(TOKEN, expires()) });
    const before = await tools.runs("az");
    const relay = await startEmulate(["--tokens-from", "az"], tools.env());
    try {
      const env = parseExports(relay.out());
      assert.deepEqual(Object.keys(env), ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]);
      assert.match(env.IDENTITY_ENDPOINT!, /^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
      assert.match(env.IDENTITY_HEADER!, /^[0-9a-f]{32}$/);
      const clients = Array.from({ length: 20 }, () => new ManagedIdentityClient({ env, cache: new TokenCache() }));
      const tokens = await Promise.all(clients.map((client) => client.acquireToken(VAULT)));
      for (const token of tokens) {
        assert.equal(token.accessToken, TOKEN);
        assert.equal(token.source, "AppService");
      }
      assert.equal(await tools.runs("az") - before, 1, "one az run for 20 concurrent clients");
      assert.deepEqual(
        (await tools.argv("az")).slice(0, 5),
        ["account", "get-access-token", "--resource", VAULT, "--output"],
      );
      // The recipes for a container, with the secret, and never the token.
      assert.match(
        relay.out(),
        /^# docker run -e IDENTITY_ENDPOINT='http:\/\/HOST_IP:\d+\/msi\/token' -e IDENTITY_HEADER='/m,
      );
      assert.match(relay.out(), /^# {3}IDENTITY_HEADER: '[0-9a-f]{32}'$/m);
      assert.ok(!relay.out().includes(TOKEN) && !relay.err().includes(TOKEN), "no token printed");
      // Without the secret, nothing.
      const response = await fetch(`${env.IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=${VAULT}`);
      assert.equal(response.status, 400);
      assert.ok(!(await response.text()).includes(TOKEN));
    } finally {
      relay.stop.abort();
    }
    assert.equal(await relay.running, EXIT_CODES.ok);
  });

  test("a user-assigned ID gets the developer's token, and stderr says so once per ID", async () => {
    await tools.set("az", { stdout: azAnswer(TOKEN, expires()) });
    const relay = await startEmulate(["--tokens-from", "az"], tools.env());
    try {
      const env = parseExports(relay.out());
      const clientId = "11111111-2222-3333-4444-555555555555";
      for (let round = 0; round < 3; round++) {
        const client = new ManagedIdentityClient({ env, clientId, cache: new TokenCache() });
        assert.equal((await client.acquireToken(VAULT)).accessToken, TOKEN);
      }
      const notices = relay.err().split("\n").filter((line) => line.includes(clientId));
      assert.equal(notices.length, 1, relay.err());
      assert.match(notices[0]!, /client_id=11111111-2222-3333-4444-555555555555; it gets az's token, your own/);
    } finally {
      relay.stop.abort();
    }
    await relay.running;
  });

  test("signed out of az: the app gets App Service's error with az's words, not retried", async () => {
    await tools.set("az", AZ_SIGNED_OUT);
    const before = await tools.runs("az");
    const relay = await startEmulate(["--tokens-from", "az"], tools.env());
    try {
      const client = new ManagedIdentityClient({ env: parseExports(relay.out()), cache: new TokenCache() });
      await assert.rejects(client.acquireToken(VAULT), (error: unknown) => {
        assert.ok(error instanceof ManagedIdentityError);
        assert.equal(error.code, "request_failed");
        assert.match(error.message, /az login/);
        return true;
      });
      assert.equal(await tools.runs("az") - before, 1, "a 400 is not retried");
    } finally {
      relay.stop.abort();
    }
    await relay.running;
  });

  test("azd, over IMDS's protocol on loopback, with a warning that IMDS has no secret", async () => {
    await tools.set("azd", { stdout: azdAnswer(TOKEN, expires()) });
    const relay = await startEmulate(
      ["--tokens-from", "azd", "--source", "imds", "--tenant", "contoso.com"],
      tools.env(),
    );
    try {
      const env = parseExports(relay.out());
      assert.deepEqual(Object.keys(env), ["AZURE_POD_IDENTITY_AUTHORITY_HOST"]);
      assert.match(relay.err(), /IMDS's protocol has no secret/);
      assert.ok(!relay.out().includes("docker run"), "no container recipe for a loopback-only protocol");
      const token = await new ManagedIdentityClient({ env, cache: new TokenCache() }).acquireToken(VAULT);
      assert.equal(token.accessToken, TOKEN);
      assert.equal(token.source, "DefaultToIMDS");
      const argv = await tools.argv("azd");
      assert.deepEqual(argv.slice(0, 4), ["auth", "token", "--scope", `${VAULT}/.default`]);
      assert.ok(argv.includes("--tenant-id") && argv.includes("contoso.com"), argv.join(" "));
    } finally {
      relay.stop.abort();
    }
    await relay.running;
  });

  test("--listen on a private address of this machine (or loopback when it has none) warns and serves there", async () => {
    // A private IPv4 address, else a unique local IPv6 one (fc00::/7), else a loopback address.
    const addresses = Object.values(networkInterfaces()).flat().filter((each) => each && !each.internal);
    const own = addresses.find((each) =>
      each!.family === "IPv4" && /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(each!.address)
    )?.address ?? addresses.find((each) =>
      each!.family === "IPv6" && /^f[cd]/i.test(each!.address)
    )?.address;
    const address = own ?? "127.0.0.2";
    await tools.set("az", { stdout: azAnswer(TOKEN, expires()) });
    const relay = await startEmulate(["--tokens-from", "az", "--listen", address], tools.env());
    try {
      const env = parseExports(relay.out());
      const host = address.includes(":") ? `[${address}]` : address;
      assert.ok(env.IDENTITY_ENDPOINT!.startsWith(`http://${host}:`), env.IDENTITY_ENDPOINT);
      if (own) {
        assert.match(relay.err(), /warning: listening on .*, not loopback: anyone who can reach/);
        // The container recipe names the address itself.
        assert.ok(relay.out().includes(`# docker run -e IDENTITY_ENDPOINT='${env.IDENTITY_ENDPOINT}'`), relay.out());
      } else {
        assert.equal(relay.err(), "", "no warning on loopback");
        assert.match(relay.out(), /# docker run -e IDENTITY_ENDPOINT='http:\/\/HOST_IP:/);
      }
      const token = await new ManagedIdentityClient({ env, cache: new TokenCache() }).acquireToken(VAULT);
      assert.equal(token.accessToken, TOKEN);
    } finally {
      relay.stop.abort();
    }
    await relay.running;
  });

  test("refusals are usage errors (exit 2) before anything runs or listens", async () => {
    const before = await tools.runs("az");
    const cases: [string[], RegExp][] = [
      [["--tokens-from", "gcloud"], /--tokens-from" expects one of az, azd, sp/],
      [["--tokens-from", "az", "--listen", "0.0.0.0"], /--listen" expects an IP address of this machine/],
      [["--tokens-from", "az", "--listen", "8.8.8.8"], /--listen" expects/],
      [["--tokens-from", "az", "--listen", "localhost"], /--listen" expects/],
      [["--tokens-from", "az", "--listen", "10.0.0.1\x1b[31m"], /--listen" expects.*\\x1b/],
      [["--tokens-from", "az", "--source", "imds", "--listen", "10.1.2.3"], /IMDS's protocol has no secret/],
      [["--tokens-from", "az", "--source", "arc"], /--source" with --tokens-from expects appservice/],
      [["--tokens-from", "az", "--lifetime", "60"], /--lifetime" is the emulator's own/],
      [["--tokens-from", "az", "--fail", "throttled"], /--fail" is the emulator's own/],
      [["--tokens-from", "az", "--tenant", "-x; rm -rf /"], /--tenant" expects a tenant ID or domain/],
      [["--tenant", "contoso.com"], /--tenant" goes with --tokens-from/],
      [["--listen", "10.0.0.1"], /--listen" goes with --tokens-from/],
    ];
    for (const [args, message] of cases) {
      const { code, out, err } = await run(["emulate", ...args], { env: tools.env() });
      assert.equal(code, EXIT_CODES.usage, `${args.join(" ")}: ${err}`);
      assert.equal(out, "");
      assert.match(err, message, args.join(" "));
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(err, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, "no raw control character");
    }
    assert.equal(await tools.runs("az"), before, "no tool ran");
  });

  test("sp without its variables is a configuration error (exit 5) naming them", async () => {
    const { code, out, err } = await run(["emulate", "--tokens-from", "sp"], { env: tools.env() });
    assert.equal(code, EXIT_CODES.configuration, err);
    assert.equal(out, "");
    assert.match(err, /^azmi emulate: no tokens from the service principal .*AZURE_TENANT_ID/);
  });
});
