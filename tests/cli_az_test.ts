/**
 * `azmi token` as a drop-in for `az account get-access-token`: a table of az command lines taken
 * from public scripts and Microsoft's documentation, each run through `main()` against the
 * emulator and its output checked field by field; az's flags, `--query` forms, `--subscription`
 * and `--tenant`; and every bad argument form exiting 2. Output formats are in
 * tests/cli_az_formats_test.ts, the command's deadline in tests/cli_deadline_test.ts; what az
 * prints, after knack's output layer, in tests/helpers/az.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EXIT_CODES } from "../src/cli.ts";
import { EMULATOR_TENANT, readClaims } from "../src/emulator/mod.ts";
import { APP_SERVICE, run } from "./helpers/cli.ts";
import { appService, ARM, azJson, azTsv, type Fields, fieldsOf, SUBSCRIPTION } from "./helpers/az.ts";

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
