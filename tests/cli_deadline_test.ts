/**
 * The deadline of `azmi token` and `azmi doctor`, with real loopback sockets: IMDS behind a
 * firewall (accepts, never answers) is reported as no managed identity here (exit 3) whatever
 * `--timeout`; any other hung endpoint is a timeout (exit 4), at `--timeout` or at the default
 * 20 s; and `azmi token --help` documents it.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EXIT_CODES } from "../src/cli.ts";
import { run, SECRET } from "./helpers/cli.ts";
import { silentServer } from "./helpers/sockets.ts";

describe("azmi token and doctor: the deadline, with real loopback sockets", () => {
  test("IMDS behind a firewall (accepts, never answers) is no managed identity here, exit 3, whatever --timeout", async () => {
    const silent = await silentServer(30_000);
    try {
      const env = { AZURE_POD_IDENTITY_AUTHORITY_HOST: silent.origin };
      const runs = ["1", "50", "200", "500", "1000", undefined].map(async (ms) => {
        const started = performance.now();
        const result = await run(["token", "https://vault.azure.net", ...(ms ? ["--timeout", ms] : [])], { env });
        return { ms, ...result, elapsed: performance.now() - started };
      });
      for (const { ms, code, out, err, elapsed } of await Promise.all(runs)) {
        const what = `--timeout ${ms ?? "(default)"}`;
        assert.equal(code, EXIT_CODES.unavailable, `${what}: ${err}`);
        assert.equal(out, "");
        assert.match(err, /^azmi token: no managed identity here: [^\n]+\(unavailable\)\n$/, what);
        // Within the deadline (or the 1 s first-contact probe, with the default), plus slack.
        assert.ok(elapsed < Math.min(Number(ms ?? 1000), 1000) + 1500, `${what}: ${elapsed.toFixed(0)} ms`);
      }
    } finally {
      await silent.close();
    }
  });

  test("doctor --timeout 1000 against IMDS behind a firewall ends with no managed identity here, exit 3", async () => {
    const silent = await silentServer(30_000);
    try {
      const started = performance.now();
      const { code, out } = await run(["doctor", "--timeout", "1000"], {
        env: { AZURE_POD_IDENTITY_AUTHORITY_HOST: silent.origin },
      });
      const elapsed = performance.now() - started;
      assert.equal(code, EXIT_CODES.unavailable, out);
      assert.match(out, /Failed \(unavailable\)/);
      assert.match(out, /Result: no managed identity is reachable here \(exit code 3\)\n$/);
      assert.ok(elapsed < 2500, `${elapsed.toFixed(0)} ms`);
    } finally {
      await silent.close();
    }
  });

  test("a hung App Service endpoint is still a timeout, exit 4: the IMDS rule is for IMDS only", async () => {
    const silent = await silentServer(30_000);
    try {
      const started = performance.now();
      const { code, out, err } = await run(["token", "https://vault.azure.net", "--timeout", "500"], {
        env: { IDENTITY_ENDPOINT: `${silent.origin}/msi/token`, IDENTITY_HEADER: SECRET },
      });
      const elapsed = performance.now() - started;
      assert.equal(code, EXIT_CODES.timeout, err);
      assert.equal(out, "");
      assert.equal(err, "azmi token: no token within the 500 ms deadline (--timeout)\n");
      assert.ok(elapsed < 2000, `${elapsed.toFixed(0)} ms`);
    } finally {
      await silent.close();
    }
  });

  test("without --timeout, a hung endpoint ends at the default 20 s deadline, exit 4, not after a minute", {
    timeout: 60_000,
  }, async () => {
    const silent = await silentServer(40_000);
    try {
      const started = performance.now();
      const { code, out, err } = await run(["token", "https://vault.azure.net"], {
        env: { IDENTITY_ENDPOINT: `${silent.origin}/msi/token`, IDENTITY_HEADER: SECRET },
      });
      const elapsed = performance.now() - started;
      assert.equal(code, EXIT_CODES.timeout, err);
      assert.equal(out, "");
      assert.equal(err, "azmi token: no token within the 20000 ms deadline (the default; --timeout MS sets another)\n");
      assert.ok(elapsed >= 19_500 && elapsed < 23_000, `${elapsed.toFixed(0)} ms`);
      assert.ok(silent.connections() >= 1);
    } finally {
      await silent.close();
    }
  });

  test("azmi token --help documents the default deadline, the az flags and formats, and the empty subscription", async () => {
    const { code, out } = await run(["token", "--help"]);
    assert.equal(code, EXIT_CODES.ok);
    for (
      const word of [
        "--resource-type",
        "--subscription",
        "--tenant",
        "--query",
        "json, jsonc, tsv, yaml, yamlc, table, none",
        "default 20000",
        "subscription",
        "oss-rdbms",
        "--only-show-errors",
      ]
    ) {
      assert.ok(out.includes(word), word);
    }
    const usage = await run(["--help"]);
    assert.match(usage.out, /az account get-access-token/);
  });
});
