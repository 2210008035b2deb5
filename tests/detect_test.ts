import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { detectSource, ManagedIdentityClient, ManagedIdentityError, type Source, TokenCache } from "../mod.ts";
import { recorder, testClient } from "./helpers/fake.ts";

const ARC_LINUX_BINARY = "/opt/azcmagent/bin/himds";

/** A file check that answers `exists(path)` and records every path it was asked about. */
function fileCheck(exists: (path: string) => boolean = () => false): {
  fileExists: (path: string) => boolean;
  asked: string[];
} {
  const asked: string[] = [];
  return {
    asked,
    fileExists: (path) => {
      asked.push(path);
      return exists(path);
    },
  };
}

/**
 * What the AKS workload identity webhook sets. The token file does not exist: detection must
 * not look at it (reading it is the first request's business).
 */
const WORKLOAD: Record<string, string> = {
  AZURE_FEDERATED_TOKEN_FILE: "/nonexistent/azmi/var/run/secrets/azure/tokens/azure-identity-token",
  AZURE_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  AZURE_CLIENT_ID: "11111111-2222-3333-4444-555555555555",
};

/** Every row of docs/detection.md, with the precedence between rows, and no Arc binary on disk. */
const ROWS: readonly { name: string; env: Record<string, string>; expected: Source }[] = [
  {
    name: "ServiceFabric when IDENTITY_ENDPOINT, IDENTITY_HEADER and IDENTITY_SERVER_THUMBPRINT are set",
    env: { IDENTITY_ENDPOINT: "https://10.0.0.4:2377/token", IDENTITY_HEADER: "h", IDENTITY_SERVER_THUMBPRINT: "ab" },
    expected: "ServiceFabric",
  },
  {
    name: "ServiceFabric over every other source when all variables are set",
    env: {
      IDENTITY_ENDPOINT: "https://10.0.0.4:2377/token",
      IDENTITY_HEADER: "h",
      IDENTITY_SERVER_THUMBPRINT: "ab",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
      MSI_ENDPOINT: "http://127.0.0.1:46808/",
      MSI_SECRET: "s",
    },
    expected: "ServiceFabric",
  },
  {
    name: "AppService when only IDENTITY_ENDPOINT and IDENTITY_HEADER are set",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
    expected: "AppService",
  },
  {
    name: "AppService over Azure ML, Cloud Shell and Azure Arc",
    env: {
      IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token",
      IDENTITY_HEADER: "h",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
      MSI_ENDPOINT: "http://127.0.0.1:46808/",
      MSI_SECRET: "s",
    },
    expected: "AppService",
  },
  {
    name: "AppService when IDENTITY_SERVER_THUMBPRINT is empty",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h", IDENTITY_SERVER_THUMBPRINT: "" },
    expected: "AppService",
  },
  {
    name: "AzureML when MSI_ENDPOINT and MSI_SECRET are set",
    env: { MSI_ENDPOINT: "http://127.0.0.1:46808/", MSI_SECRET: "s" },
    expected: "AzureML",
  },
  {
    name: "AzureML over Azure Arc",
    env: {
      MSI_ENDPOINT: "http://127.0.0.1:46808/",
      MSI_SECRET: "s",
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
    },
    expected: "AzureML",
  },
  {
    name: "CloudShell when MSI_ENDPOINT alone is set",
    env: { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" },
    expected: "CloudShell",
  },
  {
    name: "CloudShell when MSI_SECRET is empty",
    env: { MSI_ENDPOINT: "http://localhost:50342/oauth2/token", MSI_SECRET: "" },
    expected: "CloudShell",
  },
  {
    name: "CloudShell over Azure Arc",
    env: {
      MSI_ENDPOINT: "http://localhost:50342/oauth2/token",
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
    },
    expected: "CloudShell",
  },
  {
    name: "AzureArc when IDENTITY_ENDPOINT and IMDS_ENDPOINT are set",
    env: {
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
    },
    expected: "AzureArc",
  },
  {
    name: "AzureArc when IDENTITY_ENDPOINT and IMDS_ENDPOINT are set and IDENTITY_HEADER is empty",
    env: {
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
      IDENTITY_HEADER: "",
    },
    expected: "AzureArc",
  },
  { name: "DefaultToIMDS when nothing is set", env: {}, expected: "DefaultToIMDS" },
  {
    name: "DefaultToIMDS when every variable is set but empty",
    env: {
      IDENTITY_ENDPOINT: "",
      IDENTITY_HEADER: "",
      IDENTITY_SERVER_THUMBPRINT: "",
      IMDS_ENDPOINT: "",
      MSI_ENDPOINT: "",
      MSI_SECRET: "",
    },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when IDENTITY_HEADER is empty and IMDS_ENDPOINT unset",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when IDENTITY_ENDPOINT is empty",
    env: { IDENTITY_ENDPOINT: "", IDENTITY_HEADER: "h", IDENTITY_SERVER_THUMBPRINT: "ab", IMDS_ENDPOINT: "x" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when IMDS_ENDPOINT is empty",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token", IMDS_ENDPOINT: "" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when MSI_ENDPOINT is empty",
    env: { MSI_ENDPOINT: "", MSI_SECRET: "s" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when only IDENTITY_ENDPOINT is set",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when only IMDS_ENDPOINT is set",
    env: { IMDS_ENDPOINT: "http://127.0.0.1:40342" },
    expected: "DefaultToIMDS",
  },
  { name: "DefaultToIMDS when only MSI_SECRET is set", env: { MSI_SECRET: "s" }, expected: "DefaultToIMDS" },
  {
    name: "WorkloadIdentity when AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID and AZURE_CLIENT_ID are set",
    env: WORKLOAD,
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity with AZURE_AUTHORITY_HOST, as the AKS webhook sets it",
    env: { ...WORKLOAD, AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/" },
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity over every other source when all variables are set",
    env: {
      ...WORKLOAD,
      IDENTITY_ENDPOINT: "https://10.0.0.4:2377/token",
      IDENTITY_HEADER: "h",
      IDENTITY_SERVER_THUMBPRINT: "ab",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
      MSI_ENDPOINT: "http://127.0.0.1:46808/",
      MSI_SECRET: "s",
      AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://169.254.169.254",
    },
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity over App Service",
    env: { ...WORKLOAD, IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity over Cloud Shell",
    env: { ...WORKLOAD, MSI_ENDPOINT: "http://localhost:50342/oauth2/token" },
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity over Azure Arc's variables",
    env: { ...WORKLOAD, IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token", IMDS_ENDPOINT: "http://127.0.0.1:40342" },
    expected: "WorkloadIdentity",
  },
  {
    name: "WorkloadIdentity over IMDS's AZURE_POD_IDENTITY_AUTHORITY_HOST",
    env: { ...WORKLOAD, AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://169.254.169.254" },
    expected: "WorkloadIdentity",
  },
  {
    name: "DefaultToIMDS when only AZURE_TENANT_ID and AZURE_CLIENT_ID are set (no token file)",
    env: { AZURE_TENANT_ID: WORKLOAD.AZURE_TENANT_ID!, AZURE_CLIENT_ID: WORKLOAD.AZURE_CLIENT_ID! },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when AZURE_FEDERATED_TOKEN_FILE is empty",
    env: { ...WORKLOAD, AZURE_FEDERATED_TOKEN_FILE: "" },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when only AZURE_CLIENT_ID is set",
    env: { AZURE_CLIENT_ID: WORKLOAD.AZURE_CLIENT_ID! },
    expected: "DefaultToIMDS",
  },
  {
    name: "DefaultToIMDS when only AZURE_TENANT_ID and AZURE_AUTHORITY_HOST are set",
    env: { AZURE_TENANT_ID: WORKLOAD.AZURE_TENANT_ID!, AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/" },
    expected: "DefaultToIMDS",
  },
  {
    name: "AppService when AZURE_TENANT_ID and AZURE_CLIENT_ID are set beside it (no token file)",
    env: {
      IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token",
      IDENTITY_HEADER: "h",
      AZURE_TENANT_ID: WORKLOAD.AZURE_TENANT_ID!,
      AZURE_CLIENT_ID: WORKLOAD.AZURE_CLIENT_ID!,
    },
    expected: "AppService",
  },
  {
    name: "AzureML when AZURE_CLIENT_ID is set beside it (no token file)",
    env: { MSI_ENDPOINT: "http://127.0.0.1:46808/", MSI_SECRET: "s", AZURE_CLIENT_ID: WORKLOAD.AZURE_CLIENT_ID! },
    expected: "AzureML",
  },
];

describe("detectSource()", () => {
  for (const row of ROWS) {
    test(`detectSource() returns ${row.name}`, () => {
      const check = fileCheck();
      assert.equal(detectSource(row.env, { platform: "linux", fileExists: check.fileExists }), row.expected);
      // The file check is the only I/O: asked only when no variable decided, and then once.
      assert.deepEqual(check.asked, row.expected === "DefaultToIMDS" ? [ARC_LINUX_BINARY] : []);
    });
  }

  test("detectSource() returns AzureArc when the Arc agent binary exists on Linux", () => {
    const check = fileCheck((path) => path === ARC_LINUX_BINARY);
    assert.equal(detectSource({}, { platform: "linux", fileExists: check.fileExists }), "AzureArc");
    assert.deepEqual(check.asked, [ARC_LINUX_BINARY]);
  });

  test("detectSource() asks only for /opt/azcmagent/bin/himds on Linux and falls back to DefaultToIMDS", () => {
    const check = fileCheck();
    const env = { ProgramFiles: "C:\\Program Files", ProgramData: "C:\\ProgramData" };
    assert.equal(detectSource(env, { platform: "linux", fileExists: check.fileExists }), "DefaultToIMDS");
    assert.deepEqual(check.asked, [ARC_LINUX_BINARY]);
  });

  test("detectSource() asks for himds.exe under ProgramFiles and ProgramData on Windows", () => {
    const check = fileCheck();
    const env = { ProgramFiles: "C:\\Program Files", ProgramData: "C:\\ProgramData" };
    assert.equal(detectSource(env, { platform: "win32", fileExists: check.fileExists }), "DefaultToIMDS");
    assert.deepEqual(check.asked, [
      "C:\\Program Files\\AzureConnectedMachineAgent\\himds.exe",
      "C:\\ProgramData\\AzureConnectedMachineAgent\\himds.exe",
    ]);
  });

  test("detectSource() returns AzureArc when himds.exe exists under ProgramFiles on Windows", () => {
    const check = fileCheck((path) => path === "C:\\Program Files\\AzureConnectedMachineAgent\\himds.exe");
    const env = { ProgramFiles: "C:\\Program Files", ProgramData: "C:\\ProgramData" };
    assert.equal(detectSource(env, { platform: "win32", fileExists: check.fileExists }), "AzureArc");
    assert.ok(!check.asked.includes(ARC_LINUX_BINARY));
    assert.equal(check.asked[0], "C:\\Program Files\\AzureConnectedMachineAgent\\himds.exe");
  });

  test("detectSource() returns AzureArc when himds.exe exists under ProgramData on Windows", () => {
    const check = fileCheck((path) => path === "D:\\Data\\AzureConnectedMachineAgent\\himds.exe");
    const env = { ProgramFiles: "C:\\Program Files", ProgramData: "D:\\Data" };
    assert.equal(detectSource(env, { platform: "win32", fileExists: check.fileExists }), "AzureArc");
    assert.deepEqual(check.asked, [
      "C:\\Program Files\\AzureConnectedMachineAgent\\himds.exe",
      "D:\\Data\\AzureConnectedMachineAgent\\himds.exe",
    ]);
  });

  test("detectSource() does not double the separator when ProgramFiles ends in a backslash on Windows", () => {
    const check = fileCheck();
    const env = { ProgramFiles: "C:\\Program Files\\", ProgramData: "C:\\ProgramData/" };
    detectSource(env, { platform: "win32", fileExists: check.fileExists });
    assert.deepEqual(check.asked, [
      "C:\\Program Files\\AzureConnectedMachineAgent\\himds.exe",
      "C:\\ProgramData\\AzureConnectedMachineAgent\\himds.exe",
    ]);
  });

  test("detectSource() skips an unset or empty ProgramFiles on Windows", () => {
    const check = fileCheck();
    assert.equal(
      detectSource({ ProgramFiles: "", ProgramData: "C:\\ProgramData" }, {
        platform: "win32",
        fileExists: check.fileExists,
      }),
      "DefaultToIMDS",
    );
    assert.deepEqual(check.asked, ["C:\\ProgramData\\AzureConnectedMachineAgent\\himds.exe"]);
    const none = fileCheck(() => true);
    assert.equal(detectSource({}, { platform: "win32", fileExists: none.fileExists }), "DefaultToIMDS");
    assert.deepEqual(none.asked, []);
  });

  test("detectSource() checks no file on darwin", () => {
    const check = fileCheck(() => true);
    const env = { ProgramFiles: "C:\\Program Files", ProgramData: "C:\\ProgramData" };
    assert.equal(detectSource(env, { platform: "darwin", fileExists: check.fileExists }), "DefaultToIMDS");
    assert.deepEqual(check.asked, []);
  });

  test("detectSource() prefers an earlier source to the Arc agent binary", () => {
    const check = fileCheck(() => true);
    const appService = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };
    assert.equal(detectSource(appService, { platform: "linux", fileExists: check.fileExists }), "AppService");
    const cloudShell = { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" };
    assert.equal(detectSource(cloudShell, { platform: "linux", fileExists: check.fileExists }), "CloudShell");
    assert.deepEqual(check.asked, []);
  });

  test("new ManagedIdentityClient() detects without calling fetch", () => {
    const envs: readonly Record<string, string>[] = [
      {},
      {
        IDENTITY_ENDPOINT: "https://10.0.0.4:2377/token",
        IDENTITY_HEADER: "h",
        IDENTITY_SERVER_THUMBPRINT: "ab".repeat(20),
      },
      { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" },
      { MSI_ENDPOINT: "http://127.0.0.1:46808/", MSI_SECRET: "s" },
      { MSI_ENDPOINT: "http://localhost:50342/oauth2/token" },
      { IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token", IMDS_ENDPOINT: "http://127.0.0.1:40342" },
    ];
    const fake = recorder();
    const sources = envs.map((env) => testClient({ env, fetch: fake.fetch }).source);
    assert.deepEqual(sources, ["DefaultToIMDS", "ServiceFabric", "AppService", "AzureML", "CloudShell", "AzureArc"]);
    assert.equal(fake.seen.length, 0);
  });
});

describe("ManagedIdentityClient construction", () => {
  test("new ManagedIdentityClient() reports the detected source in client.source", () => {
    const fake = recorder();
    const cases: readonly [Record<string, string>, Source][] = [
      [{ IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" }, "AppService"],
      [{ MSI_ENDPOINT: "http://127.0.0.1:46808/", MSI_SECRET: "s" }, "AzureML"],
      [{ MSI_ENDPOINT: "http://localhost:50342/oauth2/token" }, "CloudShell"],
      [{ IDENTITY_ENDPOINT: "http://127.0.0.1:40342/token", IMDS_ENDPOINT: "http://127.0.0.1:40342" }, "AzureArc"],
    ];
    for (const [env, expected] of cases) {
      // These environments match before the Arc binary check, so the machine's files do not matter.
      const client = new ManagedIdentityClient({ env, fetch: fake.fetch, cache: new TokenCache() });
      assert.equal(client.source, expected);
    }
    assert.equal(fake.seen.length, 0);
  });

  test("new ManagedIdentityClient() reports DefaultToIMDS or AzureArc from the injected Arc binary check", () => {
    assert.equal(testClient({ env: {} }).source, "DefaultToIMDS");
    const asked: string[] = [];
    const arc = testClient({ env: {} }, {
      platform: "linux",
      fileExists: (path) => {
        asked.push(path);
        return path === ARC_LINUX_BINARY;
      },
    });
    assert.equal(arc.source, "AzureArc");
    assert.deepEqual(asked, [ARC_LINUX_BINARY]);
  });

  const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };
  const badIdentities: readonly [string, Record<string, string>, RegExp][] = [
    ["two IDs", { clientId: "a", objectId: "b" }, /clientId and objectId/],
    ["three IDs", { clientId: "a", objectId: "b", resourceId: "/c" }, /clientId and objectId and resourceId/],
    ["an empty client ID", { clientId: "" }, /"clientId"/],
    ["an empty object ID", { objectId: "" }, /"objectId"/],
    ["a whitespace-only resource ID", { resourceId: "  \t " }, /"resourceId"/],
    ["a whitespace-only client ID", { clientId: " " }, /"clientId"/],
  ];
  for (const [name, identity, message] of badIdentities) {
    test(`new ManagedIdentityClient() throws TypeError for ${name}`, () => {
      const fake = recorder();
      assert.throws(
        () => new ManagedIdentityClient({ env, fetch: fake.fetch, cache: new TokenCache(), ...identity }),
        (error: unknown) => {
          assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
          assert.match(error.message, message);
          return true;
        },
      );
      assert.equal(fake.seen.length, 0);
    });
  }
});

describe("detectSource() and workload identity", () => {
  const TOKEN_FILE = WORKLOAD.AZURE_FEDERATED_TOKEN_FILE!;
  const TENANT = WORKLOAD.AZURE_TENANT_ID!;
  const CLIENT = WORKLOAD.AZURE_CLIENT_ID!;
  const TENANT_MISSING = "AZURE_TENANT_ID";
  const CLIENT_MISSING = "AZURE_CLIENT_ID (or the clientId option)";
  // The other sources' variables, which must not turn a broken workload identity into IMDS or App Service.
  const OTHERS = {
    IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token",
    IDENTITY_HEADER: "h",
    MSI_ENDPOINT: "http://127.0.0.1:46808/",
    AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://169.254.169.254",
  };

  /** Asserts invalid_configuration from WorkloadIdentity whose "but ... not" part names exactly `missing`. */
  function namesMissing(missing: readonly string[]): (error: unknown) => true {
    return (error) => {
      assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
      assert.equal(error.code, "invalid_configuration");
      assert.equal(error.source, "WorkloadIdentity");
      assert.match(error.message, /^AZURE_FEDERATED_TOKEN_FILE is set, so workload identity is meant/);
      const named = /, but (.+?) (?:is|are) not:/.exec(error.message)?.[1];
      assert.equal(named, missing.join(" and "), error.message);
      assert.match(error.message, missing.length > 1 ? / are not:/ : / is not:/);
      // What to check on AKS.
      assert.match(error.message, /azure\.workload\.identity\/use/);
      assert.match(error.message, /azure\.workload\.identity\/client-id/);
      return true;
    };
  }

  const incomplete: readonly [string, Record<string, string>, string | undefined, readonly string[]][] = [
    ["no AZURE_TENANT_ID", { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_CLIENT_ID: CLIENT }, undefined, [
      TENANT_MISSING,
    ]],
    ["no client ID", { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_TENANT_ID: TENANT }, undefined, [
      CLIENT_MISSING,
    ]],
    ["neither AZURE_TENANT_ID nor a client ID", { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE }, undefined, [
      TENANT_MISSING,
      CLIENT_MISSING,
    ]],
    ["an empty AZURE_TENANT_ID", { ...WORKLOAD, AZURE_TENANT_ID: "" }, undefined, [TENANT_MISSING]],
    ["an empty AZURE_CLIENT_ID", { ...WORKLOAD, AZURE_CLIENT_ID: "" }, undefined, [CLIENT_MISSING]],
    ["both empty", { ...WORKLOAD, AZURE_TENANT_ID: "", AZURE_CLIENT_ID: "" }, undefined, [
      TENANT_MISSING,
      CLIENT_MISSING,
    ]],
    ["no AZURE_TENANT_ID, with the clientId option", { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE }, CLIENT, [
      TENANT_MISSING,
    ]],
    [
      "no AZURE_TENANT_ID, with every other source's variables",
      {
        ...OTHERS,
        AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE,
        AZURE_CLIENT_ID: CLIENT,
      },
      undefined,
      [TENANT_MISSING],
    ],
    [
      "no client ID, with every other source's variables",
      {
        ...OTHERS,
        AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE,
        AZURE_TENANT_ID: TENANT,
      },
      undefined,
      [CLIENT_MISSING],
    ],
  ];
  for (const [label, env, clientId, missing] of incomplete) {
    test(`detectSource() refuses AZURE_FEDERATED_TOKEN_FILE with ${label}, naming exactly ${missing.join(" and ")}`, () => {
      const check = fileCheck(() => true);
      assert.throws(
        () => detectSource(env, { platform: "linux", fileExists: check.fileExists, clientId }),
        namesMissing(missing),
      );
      assert.deepEqual(check.asked, []);
    });
  }

  test("detectSource() takes the clientId option as the client ID when AZURE_CLIENT_ID is unset or empty", () => {
    const check = fileCheck(() => true);
    const options = { platform: "linux", fileExists: check.fileExists, clientId: "client-from-option" };
    const withoutClient = { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_TENANT_ID: TENANT };
    assert.equal(detectSource(withoutClient, options), "WorkloadIdentity");
    assert.equal(detectSource({ ...withoutClient, AZURE_CLIENT_ID: "" }, options), "WorkloadIdentity");
    assert.equal(detectSource({ ...withoutClient, ...OTHERS }, options), "WorkloadIdentity");
    assert.deepEqual(check.asked, []);
  });

  test("detectSource() does not choose workload identity from a clientId option without the token file", () => {
    const check = fileCheck();
    const options = { platform: "linux", fileExists: check.fileExists, clientId: CLIENT };
    assert.equal(detectSource({ AZURE_TENANT_ID: TENANT }, options), "DefaultToIMDS");
    assert.equal(detectSource({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: CLIENT }, options), "DefaultToIMDS");
  });

  test("detectSource() never looks at the token file: a path that does not exist still means workload identity", () => {
    const check = fileCheck(() => false);
    for (const path of [TOKEN_FILE, "relative/token", "C:\\no\\such\\token"]) {
      const env = { ...WORKLOAD, AZURE_FEDERATED_TOKEN_FILE: path };
      assert.equal(detectSource(env, { platform: "linux", fileExists: check.fileExists }), "WorkloadIdentity");
    }
    assert.deepEqual(check.asked, []);
  });

  test("new ManagedIdentityClient() detects WorkloadIdentity without a request or a file read", () => {
    const fake = recorder();
    const opened: string[] = [];
    const tokenFileSystem = {
      open: (path: string) => {
        opened.push(path);
        return Promise.reject(new Error("detection must not read the token file"));
      },
    };
    const client = testClient({ env: { ...WORKLOAD, ...OTHERS }, fetch: fake.fetch }, { tokenFileSystem });
    assert.equal(client.source, "WorkloadIdentity");
    const withOption = testClient({
      env: { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_TENANT_ID: TENANT },
      fetch: fake.fetch,
      clientId: CLIENT,
    }, { tokenFileSystem });
    assert.equal(withOption.source, "WorkloadIdentity");
    assert.equal(fake.seen.length, 0);
    assert.deepEqual(opened, []);
  });

  test("new ManagedIdentityClient() throws the detection error for an incomplete workload identity, before any request", () => {
    const fake = recorder();
    for (
      const [env, missing] of [
        [{ AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_CLIENT_ID: CLIENT, ...OTHERS }, [TENANT_MISSING]],
        [{ AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_TENANT_ID: TENANT, ...OTHERS }, [CLIENT_MISSING]],
      ] as const
    ) {
      assert.throws(() => testClient({ env, fetch: fake.fetch }), namesMissing(missing));
    }
    assert.equal(fake.seen.length, 0);
  });

  test("new ManagedIdentityClient() does not take an objectId or resourceId for the missing client ID", () => {
    const env = { AZURE_FEDERATED_TOKEN_FILE: TOKEN_FILE, AZURE_TENANT_ID: TENANT };
    assert.throws(
      () => testClient({ env, objectId: "99999999-8888-7777-6666-555555555555" }),
      namesMissing([
        CLIENT_MISSING,
      ]),
    );
    assert.throws(() => testClient({ env, resourceId: "/subscriptions/0/rg/x" }), namesMissing([CLIENT_MISSING]));
  });
});
