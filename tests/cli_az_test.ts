/**
 * `azmi token` as a drop-in for `az account get-access-token`: a table of az command lines taken
 * from public scripts and Microsoft's documentation, each run through `main()` against the
 * emulator and its output checked field by field; az's flags, `--query` forms, output formats,
 * `--subscription` and `--tenant`; every bad argument form exiting 2; and the command's default
 * deadline, with IMDS behind a firewall (real loopback sockets) reported as no managed identity.
 *
 * The expected outputs follow az's output layer, knack's `output.py` (microsoft/knack): JSON with
 * `sort_keys=True` and an indent of 2; TSV a dict's values sorted by key (an `OrderedDict`, what a
 * `--query` multi-select hash makes, in its own order), a list one row per element; YAML
 * `yaml.safe_dump(default_flow_style=False)`; table tabulate's "simple" format.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { EnvRecord, FetchLike } from "../mod.ts";
import { EXIT_CODES } from "../src/cli.ts";
import { createEmulator, EMULATOR_TENANT, readClaims } from "../src/emulator/mod.ts";
import { run } from "./helpers/cli.ts";
import { silentServer } from "./helpers/sockets.ts";

const SECRET = "s3cret-identity-header-value";
const APP_SERVICE: EnvRecord = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: SECRET };
const ARM = "https://management.core.windows.net/";
const SUBSCRIPTION = "2d1c3c2a-4f4e-4e5b-9d1f-0c6c1b0f5a11";

/** A fresh emulator's App Service endpoint, recording the resource of each request and each token issued. */
function appService() {
  const handler = createEmulator({ secret: SECRET }).handler("AppService");
  const resources: string[] = [];
  const tokens: string[] = [];
  const fetch: FetchLike = async (request) => {
    resources.push(new URL(request.url).searchParams.get("resource") ?? "");
    const response = await handler(request);
    const body = await response.clone().json().catch(() => ({}));
    if (typeof body.access_token === "string") tokens.push(body.access_token);
    return response;
  };
  return { fetch, resources, tokens };
}

/** Python's `datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M:%S.%f")` in this process's time zone. */
function pythonLocal(seconds: number): string {
  const d = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.000000`;
}

/** The six fields az prints, from the token the endpoint issued, in az's (sorted) order. */
interface Fields {
  readonly accessToken: string;
  readonly expiresOn: string;
  readonly expires_on: number;
  readonly subscription: string;
  readonly tenant: string;
  readonly tokenType: string;
}

function fieldsOf(token: string, subscription = ""): Fields {
  const exp = readClaims(token)?.exp;
  assert.equal(typeof exp, "number", "the emulator's token has an exp claim");
  return {
    accessToken: token,
    expiresOn: pythonLocal(exp as number),
    expires_on: exp as number,
    subscription,
    tenant: EMULATOR_TENANT,
    tokenType: "Bearer",
  };
}

/** What az's `-o json` prints for the whole object: sorted keys, two spaces of indent. */
const azJson = (f: Fields) =>
  `{\n  "accessToken": "${f.accessToken}",\n  "expiresOn": "${f.expiresOn}",\n  "expires_on": ${f.expires_on},\n` +
  `  "subscription": "${f.subscription}",\n  "tenant": "${f.tenant}",\n  "tokenType": "${f.tokenType}"\n}\n`;

/** What az's `-o tsv` prints for the whole object: the values sorted by key, on one line. */
const azTsv = (f: Fields) =>
  `${f.accessToken}\t${f.expiresOn}\t${f.expires_on}\t${f.subscription}\t${f.tenant}\t${f.tokenType}\n`;

/**
 * Splits a shell command line as a POSIX shell would for these simple lines: single and double
 * quotes, and `$name` replaced from `vars`.
 */
function shellWords(line: string, vars: Readonly<Record<string, string>> = {}): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === " ") {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      assert.ok(end > i, `unterminated quote in ${line}`);
      let quoted = line.slice(i + 1, end);
      if (c === '"') quoted = quoted.replace(/\$([A-Za-z_]\w*)/g, (_, name: string) => vars[name] ?? "");
      word = (word ?? "") + quoted;
      i = end;
    } else if (c === "$") {
      const name = /^[A-Za-z_]\w*/.exec(line.slice(i + 1))![0];
      word = (word ?? "") + (vars[name] ?? "");
      i += name.length;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

describe("az account get-access-token command lines from public scripts and docs, run as azmi token", () => {
  /**
   * Each row: the command line as its source prints it, where it comes from, the resource az
   * would ask for, and what az prints, from the fields of the token the emulator issued.
   */
  const rows: {
    readonly az: string;
    readonly from: string;
    readonly resource: string;
    readonly subscription?: string;
    readonly expect: (f: Fields) => string;
  }[] = [
    {
      az: "az account get-access-token",
      from: "Azure/azure-cli, profile/_help.py: 'Get an access token for the current account'; " +
        "MicrosoftDocs/azure-docs-cli, docs-ref-conceptual/includes/refresh-token.md",
      resource: ARM,
      expect: azJson,
    },
    {
      az: `az account get-access-token --subscription ${SUBSCRIPTION}`,
      from: "Azure/azure-cli, profile/_help.py: 'Get an access token for a specific subscription'",
      resource: ARM,
      subscription: SUBSCRIPTION,
      expect: azJson,
    },
    {
      az: "az account get-access-token --resource-type ms-graph",
      from: "Azure/azure-cli, profile/_help.py: 'Get an access token to use with MS Graph API'",
      resource: "https://graph.microsoft.com/",
      expect: azJson,
    },
    {
      az: "az account get-access-token --query accessToken --output tsv",
      from: "Hacks4Snacks/commandlinefu, azure-cli.md",
      resource: ARM,
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: "az account get-access-token -o json",
      from: "adrianlzt/cerebro, nube/azure/api.md (then | jq .accessToken -r)",
      resource: ARM,
      expect: azJson,
    },
    {
      az: 'az account get-access-token --resource "499b84ac-1321-427f-aa17-267ca6975798" --query "accessToken" ' +
        "--output tsv",
      from: "gist ppanyukov/6aafc2031404a45bdbc815022a446eb8 (Azure DevOps)",
      resource: "499b84ac-1321-427f-aa17-267ca6975798",
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: "az account get-access-token --resource 499b84ac-1321-427f-aa17-267ca6975798 --query 'accessToken'",
      from: "gist pbrocks/f46d476fd3fb95bac9f3dad8f83b3f31 (then | xargs)",
      resource: "499b84ac-1321-427f-aa17-267ca6975798",
      expect: (f) => `"${f.accessToken}"\n`,
    },
    {
      az: "az account get-access-token -o tsv --subscription $subscriptionId --query 'accessToken' " +
        "--resource https://loadtest.azure-dev.com",
      from: "Azure/Mission-Critical-Online, src/testing/loadtest-azure/scripts/common.ps1",
      resource: "https://loadtest.azure-dev.com",
      subscription: SUBSCRIPTION,
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: "az account get-access-token --resource-type oss-rdbms --output tsv --query accessToken",
      from: "MicrosoftDocs/azure-dev-docs, articles/java/spring-framework/includes/" +
        "create-postgresql-flexible-server-non-admin-user.md",
      resource: "https://ossrdbms-aad.database.windows.net",
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: 'az account get-access-token --resource-type oss-rdbms --query "[accessToken]" -o tsv',
      from: "MicrosoftDocs/azure-databases-docs, articles/postgresql/security/security-entra-configure.md",
      resource: "https://ossrdbms-aad.database.windows.net",
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: "az account get-access-token --resource https://ossrdbms-aad.database.windows.net",
      from: "MicrosoftDocs/azure-databases-docs, articles/postgresql/security/security-entra-configure.md",
      resource: "https://ossrdbms-aad.database.windows.net",
      expect: azJson,
    },
    {
      az: "az account get-access-token --resource-type oss-rdbms",
      from: "0xdbe-terraform/terraform-azure-database-postgresql, example/postgresql_setup.sh " +
        "(then | jq .accessToken | tr -d '\"')",
      resource: "https://ossrdbms-aad.database.windows.net",
      expect: azJson,
    },
    {
      az: 'az account get-access-token --resource-type ms-graph --query "accessToken" -o tsv',
      from: "petitess/powershell, MicrosoftGraph/README.md",
      resource: "https://graph.microsoft.com/",
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: "az account get-access-token --resource https://vault.azure.net --query accessToken -o tsv",
      from: "issue 17 (the most common idiom)",
      resource: "https://vault.azure.net",
      expect: (f) => `${f.accessToken}\n`,
    },
    {
      az: 'az account get-access-token --query "{token:accessToken, exp:expires_on}"',
      from: "issue 17 (a multi-select hash: JSON keys sorted, as knack's format_json sorts them)",
      resource: ARM,
      expect: (f) => `{\n  "exp": ${f.expires_on},\n  "token": "${f.accessToken}"\n}\n`,
    },
    {
      az: 'az account get-access-token --query "{token:accessToken, exp:expires_on}" -o tsv',
      from: "issue 17 (a multi-select hash in TSV: the hash's own order, an OrderedDict in knack)",
      resource: ARM,
      expect: (f) => `${f.accessToken}\t${f.expires_on}\n`,
    },
    {
      az: 'az account get-access-token --query "[accessToken, expiresOn]" -o tsv',
      from: "issue 17 (a multi-select list in TSV: one line per element)",
      resource: ARM,
      expect: (f) => `${f.accessToken}\n${f.expiresOn}\n`,
    },
    {
      az: "az account get-access-token --resource 'https://graph.microsoft.com' --query '{accessToken: accessToken}' " +
        "--output json",
      from: "a Terraform `external` data source in a public repository (program = bash -c ...)",
      resource: "https://graph.microsoft.com",
      expect: (f) => `{\n  "accessToken": "${f.accessToken}"\n}\n`,
    },
    {
      az: "az account get-access-token --resource-type arm --query expiresOn -o tsv",
      from: "PostgreSQL scripts printing the expiry (`--query expiresOn -o tsv`), with az's arm type",
      resource: ARM,
      expect: (f) => `${f.expiresOn}\n`,
    },
    {
      az: "az account get-access-token --query expires_on -o tsv",
      from: "MicrosoftDocs/azure-docs-cli, includes/refresh-token.md (recommends expires_on, POSIX time)",
      resource: ARM,
      expect: (f) => `${f.expires_on}\n`,
    },
    {
      az: "az account get-access-token -o tsv",
      from: "a TSV read by position: IFS=$'\\t' read -r token expiresOn expires_on subscription tenant type",
      resource: ARM,
      expect: azTsv,
    },
  ];

  for (const row of rows) {
    test(`${row.az}  (${row.from})`, async () => {
      assert.match(row.az, /^az account get-access-token( |$)/);
      const args = shellWords(row.az, { subscriptionId: SUBSCRIPTION }).slice(3);
      const endpoint = appService();
      const { code, out, err } = await run(["token", ...args], { env: APP_SERVICE, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.ok, err);
      assert.equal(err, "");
      assert.deepEqual(endpoint.resources, [row.resource], "the resource az would ask for");
      assert.equal(endpoint.tokens.length, 1);
      const f = fieldsOf(endpoint.tokens[0]!, row.subscription);
      // Field by field: the JSON parsed, the TSV split, and the exact text.
      const expected = row.expect(f);
      if (expected.startsWith("{")) {
        const json = JSON.parse(out);
        const want = JSON.parse(expected);
        assert.deepEqual(Object.keys(json), Object.keys(want), "az's keys in az's order");
        for (const key of Object.keys(want)) assert.equal(json[key], want[key], key);
      } else {
        const lines = out.split("\n");
        const want = expected.split("\n");
        assert.equal(lines.length, want.length, "lines");
        lines.forEach((line, i) => assert.deepEqual(line.split("\t"), want[i]!.split("\t"), `line ${i + 1}`));
      }
      assert.equal(out, expected);
    });
  }

  test(
    "az account get-access-token --tenant 00000000-0000-0000-0000-000000000000 (azure-cli's _help.py) " +
      "is refused, as az refuses it for a managed identity account",
    async () => {
      const endpoint = appService();
      for (const flag of ["--tenant", "-t", "--tenant="]) {
        const args = flag.endsWith("=")
          ? [`${flag}00000000-0000-0000-0000-000000000000`]
          : [flag, "00000000-0000-0000-0000-000000000000"];
        const { code, out, err } = await run(["token", ...args], { env: APP_SERVICE, fetch: endpoint.fetch });
        assert.equal(code, EXIT_CODES.usage, err);
        assert.equal(out, "");
        // azure-cli core _profile.py, get_raw_token: "Tenant shouldn't be specified for managed identity account".
        assert.match(err, /^azmi token: Tenant shouldn't be specified for managed identity account/);
        assert.match(err, /Run "azmi token --help" for usage\.\n$/);
      }
      assert.deepEqual(endpoint.resources, [], "no request is made");
    },
  );
});

describe("azmi token: az's flags", () => {
  // azure-cli profile/custom.py cloud_resource_type_mappings, to the values of AZURE_PUBLIC_CLOUD in
  // azure-cli-core cloud.py.
  const types: Record<string, string> = {
    "oss-rdbms": "https://ossrdbms-aad.database.windows.net",
    "arm": "https://management.core.windows.net/",
    "aad-graph": "https://graph.windows.net/",
    "ms-graph": "https://graph.microsoft.com/",
    "batch": "https://batch.core.windows.net/",
    "media": "https://rest.media.azure.net",
    "data-lake": "https://datalake.azure.net/",
  };
  for (const [type, resource] of Object.entries(types)) {
    test(`--resource-type ${type} asks for ${resource}, as az does in the public cloud`, async () => {
      for (const spelling of [type, type.toUpperCase()]) {
        const endpoint = appService();
        const { code, out, err } = await run([
          "token",
          "--resource-type",
          spelling,
          "--query",
          "accessToken",
          "-o",
          "tsv",
        ], {
          env: APP_SERVICE,
          fetch: endpoint.fetch,
        });
        assert.equal(code, EXIT_CODES.ok, err);
        assert.deepEqual(endpoint.resources, [resource]);
        assert.equal(out, `${endpoint.tokens[0]}\n`);
        assert.equal(readClaims(endpoint.tokens[0]!)?.aud, resource);
      }
    });
  }

  test("az's precedence: --scope over --resource over --resource-type (get_raw_token and get_access_token)", async () => {
    const cases: [string[], string][] = [
      [
        ["--resource-type", "aad-graph", "--scope", "https://proxy.example/registerapp/user_impersonation"],
        "https://proxy.example/registerapp",
      ],
      [
        ["--resource", "https://vault.azure.net", "--scope", "https://storage.azure.com/.default"],
        "https://storage.azure.com",
      ],
      [["--resource-type", "ms-graph", "--resource", "https://vault.azure.net"], "https://vault.azure.net"],
      [["--scope", "https://management.azure.com//.default"], "https://management.azure.com/"],
    ];
    for (const [args, resource] of cases) {
      const endpoint = appService();
      const { code, err } = await run(["token", ...args, "-o", "none"], { env: APP_SERVICE, fetch: endpoint.fetch });
      assert.equal(code, EXIT_CODES.ok, `${args.join(" ")}: ${err}`);
      assert.deepEqual(endpoint.resources, [resource], args.join(" "));
    }
  });

  test("--subscription, -s, --name and -n take a subscription ID and print it as subscription", async () => {
    for (const flag of ["--subscription", "-s", "--name", "-n"]) {
      const endpoint = appService();
      const { code, out, err } = await run(["token", flag, SUBSCRIPTION, "--query", "subscription", "-o", "tsv"], {
        env: APP_SERVICE,
        fetch: endpoint.fetch,
      });
      assert.equal(code, EXIT_CODES.ok, err);
      assert.equal(out, `${SUBSCRIPTION}\n`, flag);
    }
    const upper = await run(["token", "-s", SUBSCRIPTION.toUpperCase(), "--query", "subscription"], {
      env: APP_SERVICE,
      fetch: appService().fetch,
    });
    assert.equal(upper.out, `"${SUBSCRIPTION.toUpperCase()}"\n`, "as given");
  });

  test("without --subscription, subscription is empty and the TSV keeps its six columns", async () => {
    const endpoint = appService();
    const { out } = await run(["token", "-o", "tsv"], { env: APP_SERVICE, fetch: endpoint.fetch });
    const columns = out.slice(0, -1).split("\t");
    assert.equal(columns.length, 6);
    assert.equal(columns[3], "");
    assert.equal(columns[4], EMULATOR_TENANT);
  });

  test("--only-show-errors, --debug and --verbose are accepted and change nothing", async () => {
    for (const flag of ["--only-show-errors", "--debug", "--verbose"]) {
      const endpoint = appService();
      const { code, out, err } = await run(["token", "--resource", "https://vault.azure.net", flag, "-o", "tsv"], {
        env: APP_SERVICE,
        fetch: endpoint.fetch,
      });
      assert.equal(code, EXIT_CODES.ok, err);
      assert.equal(err, "");
      assert.equal(out, azTsv(fieldsOf(endpoint.tokens[0]!)));
    }
  });

  test("--json is -o json: one expiresOn format wherever it appears", async () => {
    const endpoint = appService();
    const json = await run(["token", "https://vault.azure.net", "--json"], { env: APP_SERVICE, fetch: endpoint.fetch });
    const o = await run(["token", "https://vault.azure.net", "-o", "json"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(json.code, EXIT_CODES.ok, json.err);
    assert.equal(json.out, azJson(fieldsOf(endpoint.tokens[0]!)));
    assert.equal(o.out, azJson(fieldsOf(endpoint.tokens[1]!)));
    assert.match(JSON.parse(json.out).expiresOn, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000000$/);
    const both = await run(["token", "https://vault.azure.net", "--json", "-o", "json"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(both.code, EXIT_CODES.ok, both.err);
  });

  test("the argument alone still prints the bare token; az's forms print az's default, JSON", async () => {
    const endpoint = appService();
    const bare = await run(["token", "https://vault.azure.net"], { env: APP_SERVICE, fetch: endpoint.fetch });
    assert.equal(bare.out, `${endpoint.tokens[0]}\n`);
    const resource = await run(["token", "--resource", "https://vault.azure.net"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(resource.out, azJson(fieldsOf(endpoint.tokens[1]!)));
    const query = await run(["token", "https://vault.azure.net", "--query", "tokenType"], {
      env: APP_SERVICE,
      fetch: endpoint.fetch,
    });
    assert.equal(query.out, '"Bearer"\n');
  });
});

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
  // deno-lint-ignore no-control-regex
  const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

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
    for (const access_token of ["eyJ\x1b[31m", "eyJ\x9b31m", "eyJ\tEvil", "eyJ\nEvil"]) {
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
        assert.match(refused.err, new RegExp(`^azmi token: -o ${format} cannot print accessToken: it holds a control`));
      }
      // A --query that leaves the field out prints the rest.
      const type = await run(["token", "--resource", "https://vault.azure.net", "--query", "tokenType", "-o", "tsv"], {
        env: APP_SERVICE,
        fetch,
      });
      assert.equal(type.out, "Bearer\n");
    }
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

describe("azmi: every argument error is exit 2", () => {
  const cases: { args: string[]; message: RegExp }[] = [
    { args: ["token", "/.default"], message: /The resource is empty: got "\/\.default"/ },
    { args: ["token", " /.default "], message: /The resource is empty/ },
    { args: ["token", "--scope", " /.default "], message: /The resource is empty/ },
    { args: ["token", "--scope", "/user_impersonation"], message: /The resource is empty/ },
    { args: ["token", "--resource", " "], message: /The resource is empty/ },
    { args: ["token", "--resource", "/.default"], message: /The resource is empty/ },
    {
      args: ["token", "https://vault.azure.net", "--resource", "https://vault.azure.net"],
      message: /Give one resource/,
    },
    { args: ["token", "--scope", "https://a.example/.default", "https://b.example/.default"], message: /one scope/ },
    { args: ["token", "--resource-type", "keyvault"], message: /"--resource-type" expects one of oss-rdbms, arm,/ },
    { args: ["token", "--resource-type", "arm", "https://vault.azure.net"], message: /Give one resource/ },
    { args: ["token", "-o", "xml"], message: /"--output" expects one of json, jsonc, tsv, yaml, yamlc, table, none/ },
    { args: ["token", "-o=yml"], message: /got "yml"/ },
    { args: ["token", "--json", "-o", "tsv"], message: /--json is -o json/ },
    { args: ["token", "--query", "accessToken.foo"], message: /--query takes a field name .*got "accessToken\.foo"/ },
    { args: ["token", "--query", "[0]"], message: /--query takes a field name/ },
    { args: ["token", "--query", "{a:b.c}"], message: /--query takes a field name/ },
    { args: ["token", "--query", "{a:accessToken"], message: /--query takes a field name/ },
    { args: ["token", "--query", "[accessToken,]"], message: /--query takes a field name/ },
    { args: ["token", "--query", "length(accessToken)"], message: /--query takes a field name/ },
    { args: ["token", "--query", "accessToken | tenant"], message: /--query takes a field name/ },
    { args: ["token", "--query", "'accessToken'"], message: /--query takes a field name/ },
    { args: ["token", "--query", "token"], message: /--query: no field "token".*accessToken, expiresOn, expires_on/ },
    { args: ["token", "--query", "{t: token}"], message: /no field "token"/ },
    { args: ["token", "--query", ""], message: /needs a value/ },
    { args: ["token", "--tenant", "contoso.onmicrosoft.com"], message: /Tenant shouldn't be specified/ },
    {
      args: ["token", "--tenant", SUBSCRIPTION, "--subscription", SUBSCRIPTION],
      message: /Please specify only one of subscription and tenant, not both/,
    },
    { args: ["token", "--subscription", "My Subscription"], message: /--subscription takes a subscription ID/ },
    { args: ["token", "-s", SUBSCRIPTION, "--name", SUBSCRIPTION], message: /given more than once/ },
    { args: ["token", "--debug=yes"], message: /takes no value/ },
    { args: ["token", "--timeout", "0"], message: /"--timeout" expects a whole number/ },
    { args: ["doctor", "/.default"], message: /The resource is empty: got "\/\.default"/ },
    { args: ["doctor", " /.default "], message: /The resource is empty/ },
    { args: ["doctor", " "], message: /The resource is empty/ },
  ];
  for (const each of cases) {
    test(`main() exits 2 for ${JSON.stringify(each.args)}, before any request`, async () => {
      let requests = 0;
      const { code, out, err } = await run(each.args, {
        env: APP_SERVICE,
        fetch: () => {
          requests++;
          return Response.json({ access_token: "t", expires_in: 3600 });
        },
      });
      assert.equal(code, EXIT_CODES.usage, err);
      assert.equal(out, "", "nothing on stdout, not even doctor's steps");
      assert.match(err, each.message);
      assert.match(err, /\nRun "azmi (token|doctor) --help" for usage\.\n$/);
      assert.equal(requests, 0);
    });
  }
});

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
