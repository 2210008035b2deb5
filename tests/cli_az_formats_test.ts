/**
 * `azmi token -o` prints what az prints: JSON, JSONC, YAML, TSV, table and none, with and without
 * `--query`, as knack's output layer does (tests/helpers/az.ts); and hostile values from an
 * endpoint (control characters, YAML's look-alike scalars, bodies near the 1 MiB cap, tokens that
 * are not JWTs) are printed escaped or refused, in linear time, in every format.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { FetchLike } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { APP_SERVICE, run } from "./helpers/cli.ts";
import { appService, azJson, fieldsOf } from "./helpers/az.ts";

describe("azmi token -o: az's output formats", () => {
  /** Runs `azmi token <args>` against a fresh App Service emulator; returns the output and the fields. */
  async function format(args: string[]) {
    const endpoint = appService();
    const result = await run(["token", "--resource", "https://vault.azure.net", ...args], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(result.code, EXIT_CODES.ok, result.err);
    assert.equal(result.err, "");
    return { out: result.out, f: fieldsOf(endpoint.tokens[0]!) };
  }

  test("-o yaml and yamlc: yaml.safe_dump's block style, keys sorted, the local time quoted as PyYAML quotes it", async () => {
    for (const name of ["yaml", "yamlc", "YAML"]) {
      const { out, f } = await format(["-o", name]);
      assert.equal(
        out,
        `accessToken: ${f.accessToken}\nexpiresOn: '${f.expiresOn}'\nexpires_on: ${f.expires_on}\n` +
          `subscription: ''\ntenant: ${f.tenant}\ntokenType: ${f.tokenType}\n`,
        name,
      );
    }
  });

  test("-o yaml with --query: a plain scalar ends its document with ..., a quoted one does not; lists as - items", async () => {
    let { out, f } = await format(["-o", "yaml", "--query", "accessToken"]);
    assert.equal(out, `${f.accessToken}\n...\n`);
    ({ out, f } = await format(["-o", "yaml", "--query", "expires_on"]));
    assert.equal(out, `${f.expires_on}\n...\n`);
    ({ out, f } = await format(["-o", "yaml", "--query", "expiresOn"]));
    assert.equal(out, `'${f.expiresOn}'\n`);
    ({ out } = await format(["-o", "yaml", "--query", "subscription"]));
    assert.equal(out, "''\n");
    ({ out, f } = await format(["-o", "yaml", "--query", "[accessToken, expiresOn]"]));
    assert.equal(out, `- ${f.accessToken}\n- '${f.expiresOn}'\n`);
    ({ out, f } = await format(["-o", "yaml", "--query", "{token:accessToken, exp:expires_on}"]));
    assert.equal(out, `exp: ${f.expires_on}\ntoken: ${f.accessToken}\n`);
  });

  test("-o jsonc is JSON (az colours it only on a terminal) and -o json of a field is a JSON value", async () => {
    let { out, f } = await format(["-o", "jsonc"]);
    assert.equal(out, azJson(f));
    ({ out, f } = await format(["--query", "expires_on"]));
    assert.equal(out, `${f.expires_on}\n`);
    ({ out, f } = await format(["--query", "[tenant, tokenType]"]));
    assert.equal(out, `[\n  "${f.tenant}",\n  "Bearer"\n]\n`);
  });

  test("-o table: tabulate's simple format, columns as knack names them, widths of the widest cell or name + 2", async () => {
    let { out, f } = await format(["-o", "table"]);
    const columns: [string, string][] = [
      ["AccessToken", f.accessToken],
      ["ExpiresOn", f.expiresOn],
      ["Expires_on", String(f.expires_on)],
      ["Subscription", ""],
      ["Tenant", f.tenant],
      ["TokenType", f.tokenType],
    ];
    const widths = columns.map(([name, value]) => Math.max(name.length + 2, value.length));
    const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
    assert.equal(
      out,
      `${line(columns.map(([name]) => name))}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n` +
        `${line(columns.map(([, value]) => value))}\n`,
    );
    // With --query, a hash keeps its order; a list or a field is one "Result" column.
    ({ out, f } = await format(["-o", "table", "--query", "{token:accessToken, exp:expires_on}"]));
    const tw = f.accessToken.length;
    assert.equal(
      out,
      `${"Token".padEnd(tw)}  Exp\n${"-".repeat(tw)}  ${"-".repeat(10)}\n${f.accessToken}  ${f.expires_on}\n`,
    );
    ({ out, f } = await format(["-o", "table", "--query", "[tenant, tokenType]"]));
    assert.equal(out, `Result\n${"-".repeat(36)}\n${f.tenant}\nBearer\n`);
    // knack leaves out the columns named id, type and etag.
    ({ out } = await format(["-o", "table", "--query", "{type:tokenType}"]));
    assert.equal(out, "\n");
  });

  test("-o none prints nothing; --query is applied first, so a bad --query is still a usage error", async () => {
    const { out } = await format(["-o", "none", "--query", "accessToken"]);
    assert.equal(out, "");
    const bad = await run(["token", "-o", "none", "--query", "nope"], { env: APP_SERVICE, fetch: appService().fetch });
    assert.equal(bad.code, EXIT_CODES.usage);
  });

  test("--query takes quoted identifiers and blanks, as JMESPath does", async () => {
    const { out, f } = await format(["-o", "tsv", "--query", ' { "a b" : "accessToken" , t:tenant } ']);
    assert.equal(out, `${f.accessToken}\t${f.tenant}\n`);
    const json = await format(["--query", '{"a b": accessToken}']);
    assert.deepEqual(JSON.parse(json.out), { "a b": json.f.accessToken });
  });
});

describe("azmi token: hostile values in az's formats", () => {
  const jwt = (claims: Record<string, unknown>) =>
    `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.c2lnbmF0dXJl`;
  const tid = "4b0e3bd4-1c33-4e29-9a29-8e1f0c1d7a55";
  const answering = (body: Record<string, unknown>): FetchLike => () => Response.json(body);
  /** C0 controls but the line break, DEL and C1 controls. */
  // What visible() escapes (control, format and separator characters), but the line feeds that end lines.
  // deno-lint-ignore no-control-regex
  const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\p{Cf}\u2028\u2029]/u;

  test("a token type with ESC, CSI (\\x9b), DEL or a line break is printed visibly escaped in every format", async () => {
    const cases = [
      ["Bearer\x1b[31m", "Bearer\\x1b[31m"],
      ["Bearer\x9b31m", "Bearer\\x9b31m"],
      ["Bearer\x7f", "Bearer\\x7f"],
      ["Bearer\nEvil", "Bearer\\x0aEvil"],
      ["Bearer\tEvil", "Bearer\\x09Evil"],
    ] as const;
    for (const [token_type, shown] of cases) {
      const fetch = answering({ access_token: jwt({ tid }), expires_in: 3600, token_type });
      const json = await run(["token", "--resource", "https://vault.azure.net"], { env: APP_SERVICE, fetch });
      assert.equal(json.code, EXIT_CODES.ok, json.err);
      assert.doesNotMatch(json.out, RAW_CONTROL, "no raw control character");
      assert.equal(JSON.parse(json.out).tokenType, shown, "escaped visibly, as every printed value");
      const yaml = await run(["token", "--resource", "https://vault.azure.net", "-o", "yaml"], {
        env: APP_SERVICE,
        fetch,
      });
      assert.equal(yaml.code, EXIT_CODES.ok, yaml.err);
      assert.doesNotMatch(yaml.out, RAW_CONTROL);
      const line = yaml.out.split("\n").find((each) => each.startsWith("tokenType: "))!;
      assert.ok(line.includes(shown.replaceAll("\\", "\\\\")) || line.includes(shown), line);
      for (const format of ["tsv", "table"]) {
        const printed = await run(["token", "--resource", "https://vault.azure.net", "-o", format], {
          env: APP_SERVICE,
          fetch,
        });
        assert.equal(printed.code, EXIT_CODES.ok, `${format}: ${printed.err}`);
        assert.doesNotMatch(printed.out.replaceAll("\t", " "), RAW_CONTROL, `${format}: only TSV's own tabs`);
        assert.ok(printed.out.includes(shown), `${format}: ${printed.out}`);
        if (format === "tsv") assert.equal(printed.out.split("\t").length, 6, "no column shifted");
      }
    }
  });

  test("an access token with a control character is escaped in JSON and YAML, refused in TSV and table", async () => {
    // Beside C0 and C1: a bidirectional override (Trojan Source), a line separator, a byte order mark.
    for (
      const access_token of [
        "eyJ\x1b[31m",
        "eyJ\x9b31m",
        "eyJ\tEvil",
        "eyJ\nEvil",
        "eyJ\u202eEvil",
        "eyJ\u2028Evil",
        "eyJ\ufeffEvil",
      ]
    ) {
      const fetch = answering({ access_token, expires_in: 3600 });
      const json = await run(["token", "--resource", "https://vault.azure.net"], { env: APP_SERVICE, fetch });
      assert.equal(json.code, EXIT_CODES.ok, json.err);
      assert.doesNotMatch(json.out, RAW_CONTROL, "no raw control character");
      assert.equal(JSON.parse(json.out).accessToken, access_token, "the same value, escaped");
      const yaml = await run(["token", "--resource", "https://vault.azure.net", "-o", "yaml"], {
        env: APP_SERVICE,
        fetch,
      });
      assert.equal(yaml.code, EXIT_CODES.ok, yaml.err);
      assert.doesNotMatch(yaml.out, RAW_CONTROL);
      const line = yaml.out.split("\n").find((each) => each.startsWith("accessToken: "))!;
      assert.equal(JSON.parse(line.slice("accessToken: ".length)), access_token, "a double-quoted YAML scalar");
      for (const format of ["tsv", "table"]) {
        const refused = await run(["token", "--resource", "https://vault.azure.net", "-o", format], {
          env: APP_SERVICE,
          fetch,
        });
        assert.equal(refused.code, EXIT_CODES.failed, format);
        assert.equal(refused.out, "");
        assert.match(
          refused.err,
          new RegExp(`^azmi token: -o ${format} cannot print accessToken: it holds a control or format character`),
        );
      }
      // A --query that leaves the field out prints the rest.
      const type = await run(["token", "--resource", "https://vault.azure.net", "--query", "tokenType", "-o", "tsv"], {
        env: APP_SERVICE,
        fetch,
      });
      assert.equal(type.out, "Bearer\n");
    }
  });

  test("a format character beyond the BMP (a tag character) is escaped as one code point in JSON and YAML", async () => {
    const fetch = answering({ access_token: "eyJ\u{e0041}Evil", expires_in: 3600 });
    const json = await run(["token", "--resource", "https://vault.azure.net"], { env: APP_SERVICE, fetch });
    assert.match(json.out, /"accessToken": "eyJ\\udb40\\udc41Evil"/);
    assert.equal(JSON.parse(json.out).accessToken, "eyJ\u{e0041}Evil");
    const yaml = await run(["token", "--resource", "https://vault.azure.net", "-o", "yaml"], {
      env: APP_SERVICE,
      fetch,
    });
    // YAML's \U escape: a surrogate pair of \u escapes is not one character in YAML.
    assert.match(yaml.out, /^accessToken: "eyJ\\U000e0041Evil"$/m);
  });

  test("hostile token text near the 1 MiB body cap goes through every format in linear time", async () => {
    for (const shape of ["1:".repeat(200_000), "'".repeat(400_000), "\x9b".repeat(200_000), " #".repeat(200_000)]) {
      const fetch = answering({ access_token: shape, expires_in: 3600 });
      for (const format of ["json", "yaml", "tsv", "table"]) {
        const started = performance.now();
        const { code, err } = await run(["token", "--resource", "https://vault.azure.net", "-o", format], {
          env: APP_SERVICE,
          fetch,
        });
        const ms = performance.now() - started;
        const refused = /[\x7f-\x9f]/.test(shape) && (format === "tsv" || format === "table");
        assert.equal(code, refused ? EXIT_CODES.failed : EXIT_CODES.ok, `${format}: ${err}`);
        assert.ok(ms < 2000, `${format}: ${ms.toFixed(0)} ms`);
      }
    }
  });

  test("YAML quotes what PyYAML would read as another type, and leaves plain what it leaves plain", async () => {
    const cases: [string, string][] = [
      ["yes", "'yes'"],
      ["Off", "'Off'"],
      ["null", "'null'"],
      ["~", "'~'"],
      ["0x1f", "'0x1f'"],
      ["-1", "'-1'"],
      ["1_000", "'1_000'"],
      ["12:30", "'12:30'"],
      ["1.", "'1.'"],
      [".inf", "'.inf'"],
      ["2026-11-30", "'2026-11-30'"],
      ["=", "'='"],
      ["it's", "'it''s'"],
      ["1e3", "1e3"],
      ["PoP", "PoP"],
      ["-abc", "-abc"],
      ["y", "y"],
    ];
    for (const [token_type, yaml] of cases) {
      const fetch = answering({ access_token: jwt({ tid }), expires_in: 3600, token_type });
      const { out } = await run([
        "token",
        "--resource",
        "https://vault.azure.net",
        "-o",
        "yaml",
        "--query",
        "tokenType",
      ], {
        env: APP_SERVICE,
        fetch,
      });
      const plain = yaml[0] !== "'";
      assert.equal(out, `${yaml}\n${plain ? "...\n" : ""}`, token_type);
    }
  });

  test("tenant is empty when the token is not a JWT or its tid is not a tenant ID", async () => {
    for (const access_token of ["opaque-token-value", jwt({ tid: "contoso.onmicrosoft.com" }), jwt({ oid: "x" })]) {
      const fetch = answering({ access_token, expires_in: 3600 });
      const { out } = await run(["token", "--resource", "https://vault.azure.net", "-o", "tsv"], {
        env: APP_SERVICE,
        fetch,
      });
      const columns = out.slice(0, -1).split("\t");
      assert.equal(columns.length, 6);
      assert.equal(columns[0], access_token);
      assert.equal(columns[4], "");
    }
  });
});
