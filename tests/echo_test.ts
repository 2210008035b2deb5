/**
 * Echoing endpoints: for every source whose request carries a secret (App Service's
 * X-IDENTITY-HEADER, Azure ML's secret, Service Fabric's Secret, Azure Arc's key, workload
 * identity's client assertion in the form body) and for the access token itself, an endpoint reflects the secret raw, JSON-escaped, \u-escaped,
 * \u002B-escaped (System.Text.Json), percent- and form-encoded, in every body field and in the
 * correlation headers. No rendering of the error (message, properties, cause at any depth,
 * JSON, util.inspect), no onEvent payload and no CLI output may show it in any notation.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { type EnvRecord, ManagedIdentityError, type ManagedIdentityEvent } from "../mod.ts";
import { run } from "./helpers/cli.ts";
import type { InternalOptions } from "../src/internal.ts";
import { recorder, testClient } from "./helpers/fake.ts";
import { assertNotShown } from "./helpers/checks.ts";
import { assertNotSpelled, fill, interleavings, READ_CAP, utf16le, worstCases } from "./helpers/hostile.ts";
import { assertNoLeak, encodings, renderings } from "./helpers/leaks.ts";

const VAULT = "https://vault.azure.net";
// Every character an encoder treats specially: "+" (System.Text.Json writes \u002B), a quote and
// a backslash (JSON escapes them), "/", "&", "=", "%" and a space (URL encoding).
const SECRET = 'Zk3+Q/"w\\e=9&p%7 Z';
// Short enough (and punctuated) that no token pattern catches it: only the secret rule can.
const TOKEN = "tok.9f3+e/Q";
const THUMBPRINT = "AB".repeat(20);

interface SecretSource {
  readonly name: string;
  readonly env: EnvRecord;
  /** Where the request carries the secret: a header, or (workload identity) a field of the form body. */
  readonly carrier: { readonly header: string } | { readonly formField: string };
  readonly secret: string;
  /** Azure Arc: the secret is a key file in a token directory. */
  readonly arc?: boolean;
  /** Workload identity: the secret is the federated token file that AZURE_FEDERATED_TOKEN_FILE names. */
  readonly tokenFile?: boolean;
}

const SOURCES: readonly SecretSource[] = [
  {
    name: "AppService",
    env: { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: SECRET },
    carrier: { header: "x-identity-header" },
    secret: SECRET,
  },
  {
    name: "AzureML",
    env: { MSI_ENDPOINT: "http://127.0.0.1:41742/msi/auth", MSI_SECRET: SECRET },
    carrier: { header: "secret" },
    secret: SECRET,
  },
  {
    name: "ServiceFabric",
    env: {
      IDENTITY_ENDPOINT: "https://127.0.0.1:2377/metadata/identity/oauth2/token",
      IDENTITY_HEADER: SECRET,
      IDENTITY_SERVER_THUMBPRINT: THUMBPRINT,
    },
    carrier: { header: "secret" },
    secret: SECRET,
  },
  {
    name: "AzureArc",
    env: {
      IDENTITY_ENDPOINT: "http://127.0.0.1:40342/metadata/identity/oauth2/token",
      IMDS_ENDPOINT: "http://127.0.0.1:40342",
    },
    carrier: { header: "authorization" },
    secret: SECRET,
    arc: true,
  },
  {
    name: "WorkloadIdentity",
    // AZURE_FEDERATED_TOKEN_FILE is added by withSecretFile(); the fake handler answers in place of Entra ID.
    env: {
      AZURE_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
      AZURE_CLIENT_ID: "11111111-2222-3333-4444-555555555555",
      AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/",
    },
    carrier: { formField: "client_assertion" },
    secret: SECRET,
    tokenFile: true,
  },
];

/** The secret as `source`'s request carried it: a header's value, or the form body's field. */
async function carried(source: SecretSource, request: Request): Promise<string | null> {
  if ("header" in source.carrier) return request.headers.get(source.carrier.header);
  return new URLSearchParams(await request.text()).get(source.carrier.formField);
}

/** Error bodies of every source's shape, each field an echo `e` (inserted as it is into JSON text). */
function bodies(e: string): Record<string, string> {
  return {
    "IMDS and Arc shape": `{"error":"bad_${e}","error_description":"echo ${e}","correlation_id":"${e}"}`,
    "App Service shape": `{"statusCode":400,"message":"echo ${e}","correlationId":"${e}"}`,
    ".NET Message": `{"Message":"echo ${e}"}`,
    "Service Fabric and Cloud Shell shape": `{"error":{"code":"${e}","message":"echo ${e}"}}`,
    "Service Fabric shape with its correlation ID": `{"error":{"correlationId":"${e}","code":"x","message":"x"}}`,
    "plain text": `Bad request, header was ${e}`,
    "HTML": `<html><body><p>Header: ${e}</p></body></html>`,
  };
}

/**
 * Runs `body` with the file that holds `secret`, when `source` reads one: Arc's key file in a
 * token directory (given in the internal options), or workload identity's federated token file
 * (named in the environment). Other sources get their environment as it is.
 */
async function withSecretFile(
  source: SecretSource,
  secret: string,
  body: (setup: { internal: InternalOptions; env: EnvRecord }) => Promise<void>,
) {
  if (!source.arc && !source.tokenFile) return await body({ internal: {}, env: source.env });
  const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-echo-"));
  try {
    if (source.arc) {
      await fsp.writeFile(join(dir, "echo.key"), secret);
      await body({ internal: { arcTokenDirectory: dir }, env: source.env });
    } else {
      // The kubelet writes the token without a newline; one more shows that the trimmed value is hidden.
      const file = join(dir, "azure-identity-token");
      await fsp.writeFile(file, `${secret}\n`);
      await body({ internal: {}, env: { ...source.env, AZURE_FEDERATED_TOKEN_FILE: file } });
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * An endpoint that answers every secret-bearing request with `answer(secret it received)`; as
 * an Arc agent, it first challenges with the key file in `internal`'s token directory.
 */
function echoing(source: SecretSource, internal: InternalOptions, answer: (received: string) => Response) {
  return recorder(async (request) => {
    if (source.arc && !request.headers.has("authorization")) {
      const realm = join(internal.arcTokenDirectory!, "echo.key");
      return new Response(null, { status: 401, headers: { "www-authenticate": `Basic realm=${realm}` } });
    }
    const value = await carried(source, request) ?? "";
    return answer(source.arc ? value.replace(/^Basic /, "") : value);
  });
}

/** Every text an outcome can be shown as: the error's renderings and each event's. */
function shown(error: unknown, events: readonly ManagedIdentityEvent[]): string[] {
  return [
    ...renderings(error),
    ...events.flatMap((event) => [JSON.stringify(event), inspect(event, { depth: Infinity })]),
    ...events.flatMap((event) => ("error" in event ? renderings(event.error) : [])),
  ];
}

async function failure(promise: Promise<unknown>): Promise<ManagedIdentityError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  assert.ok(error instanceof ManagedIdentityError, `expected a ManagedIdentityError, got ${String(error)}`);
  return error;
}

describe("echoing endpoints never get a secret into an error", () => {
  for (const source of SOURCES) {
    for (const [encoding, form] of Object.entries(encodings(source.secret))) {
      if (encoding === "inspect-quoted") continue;
      test(`acquireToken() on ${source.name} hides the secret echoed ${encoding} in every body field and header`, async () => {
        await withSecretFile(source, source.secret, async ({ internal, env }) => {
          // Each body with each correlation header: Azure's, and App Service's X-CORRELATION-ID.
          const headerSets: Record<string, string>[] = [
            { "x-ms-correlation-id": form, "x-ms-request-id": form },
            { "x-correlation-id": form },
          ];
          for (
            const [shape, body, headers] of Object.entries(bodies(form)).flatMap(([shape, body]) =>
              headerSets.map((headers) => [shape, body, headers] as const)
            )
          ) {
            const events: ManagedIdentityEvent[] = [];
            const fake = echoing(source, internal, (received) => {
              // The secret really went out, so it was there to leak.
              assert.equal(received, source.secret);
              return new Response(body, { status: 400, headers });
            });
            const client = testClient({
              env,
              fetch: fake.fetch,
              retry: false,
              onEvent: (event) => events.push(event),
            }, internal);
            const error = await failure(client.acquireToken(VAULT));
            assert.equal(error.code, "request_failed", `${shape}: ${error.message}`);
            assert.equal(error.status, 400);
            assertNoLeak(shown(error, events), source.secret, `error for the ${shape} body`);
          }
        });
      });
    }
  }

  // A secret read from a file may be long: Arc's key, or a service account token (1 to 2 KB).
  for (const source of SOURCES.filter((s) => s.arc || s.tokenFile)) {
    const what = source.arc ? "key" : "assertion";
    test(`acquireToken() on ${source.name} hides a long ${what}, echoed whole, in every notation, and any 16-character run of it`, async () => {
      const key = Array.from({ length: 30 }, (_, i) => `k${i}-${(i * 7919).toString(36)}+/`).join("").padEnd(600, "q");
      await withSecretFile(source, key, async ({ internal, env }) => {
        for (const form of Object.values(encodings(key)).slice(0, 6)) {
          let received: string | undefined;
          const fake = echoing(source, internal, (value) => {
            received = value;
            return new Response(`{"error_description":"${what} ${form}"}`, { status: 400 });
          });
          const client = testClient({ env, fetch: fake.fetch, retry: false }, internal);
          const error = await failure(client.acquireToken(VAULT));
          assert.equal(received, key);
          if (source.arc) assert.equal(fake.seen.at(-1)?.headers.get("authorization"), `Basic ${key}`);
          assertNoLeak(renderings(error), key);
        }
      });
    });
  }

  test("acquireToken() hides the access token that a success body repeats in an unusable expiry", async () => {
    for (const form of Object.values(encodings(TOKEN)).slice(0, 6)) {
      const answers = [
        `{"access_token":"${TOKEN}","expires_on":"at ${form}"}`,
        `{"access_token":"${TOKEN}","expires_in":"${form}"}`,
        `{"access_token":"${TOKEN}","expires_on":"9${form}","expires_in":"x"}`,
      ];
      for (const body of answers) {
        const events: ManagedIdentityEvent[] = [];
        const client = testClient({
          env: SOURCES[0]!.env,
          fetch: () => new Response(body, { status: 200 }),
          retry: false,
          onEvent: (event) => events.push(event),
        });
        const error = await failure(client.acquireToken(VAULT));
        assert.equal(error.code, "invalid_response", error.message);
        assertNoLeak(shown(error, events), TOKEN, `error for ${body}`);
      }
    }
  });

  test("the expires_on_fallback event hides the access token that expires_on repeats", async () => {
    const events: ManagedIdentityEvent[] = [];
    const client = testClient({
      env: SOURCES[0]!.env,
      fetch: () =>
        new Response(`{"access_token":"${TOKEN}","expires_on":"${encodeURIComponent(TOKEN)}","expires_in":3600}`),
      onEvent: (event) => events.push(event),
    });
    const result = await client.acquireToken(VAULT);
    assert.equal(result.accessToken, TOKEN);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, "expires_on_fallback");
    assertNoLeak(shown(undefined, events), TOKEN, "event");
  });

  test("a refresh_failed event hides the secret an echoing refresh answer carries", async () => {
    let now = 1_700_000_000_000;
    const events: ManagedIdentityEvent[] = [];
    let calls = 0;
    const client = testClient({
      env: SOURCES[0]!.env,
      fetch: (request) => {
        calls++;
        if (calls === 1) return Response.json({ access_token: "first", expires_in: 3600, refresh_in: 60 });
        const echo = encodeURIComponent(request.headers.get("x-identity-header") ?? "");
        return Response.json({ error: "refused", error_description: `header ${echo}` }, { status: 400 });
      },
      retry: false,
      onEvent: (event) => events.push(event),
    }, { now: () => now });
    await client.acquireToken(VAULT);
    now += 61_000;
    assert.equal((await client.acquireToken(VAULT)).fromCache, true);
    for (let i = 0; i < 50 && events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal(events[0]?.type, "refresh_failed");
    assertNoLeak(shown(undefined, events), SECRET, "event");
  });
});

describe("the CLI never prints an echoed secret", () => {
  // Arc's key file is named by the agent's challenge in a directory the CLI has no seam for here.
  for (const source of SOURCES.filter((s) => !s.arc)) {
    for (const command of ["token", "doctor"]) {
      test(`azmi ${command} on ${source.name} prints no echoed secret`, async () => {
        await withSecretFile(source, source.secret, async ({ env }) => {
          for (const form of Object.values(encodings(source.secret)).slice(0, 6)) {
            const sent: (string | null)[] = [];
            const fake = recorder(async (request) => {
              const value = await carried(source, request);
              sent.push(value);
              const echo = value ? form : "none";
              return new Response(
                `{"error":"e_${echo}","error_description":"echo ${echo}","correlationId":"${echo}"}`,
                { status: 400, headers: { "x-ms-correlation-id": echo, "x-correlation-id": echo } },
              );
            });
            const { code, out, err } = await run([command, VAULT], { env, fetch: fake.fetch });
            assert.equal(code, 1, out + err);
            assert.ok(sent.includes(source.secret), "the secret went out, so it was there to leak");
            assertNoLeak([out, err], source.secret, `azmi ${command} output`);
          }
        });
      });
    }
  }
});

/** A raw TCP server on loopback that answers each request with `reply(request bytes)` and closes. */
async function rawServer(reply: (received: string) => string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let received = "";
    socket.on("data", (chunk: Uint8Array) => {
      received += new TextDecoder().decode(chunk);
      if (received.includes("\r\n\r\n")) socket.end(reply(received));
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("a runtime's error about the endpoint's bytes is summarised, not kept", () => {
  const cases: [string, (received: string) => string][] = [
    ["a non-HTTP answer that echoes the request", (received) => `NOT HTTP AT ALL\r\n${received}`],
    [
      "a header whose invalid value echoes the secret",
      (received) => {
        const secret = /x-identity-header: ([^\r\n]*)/i.exec(received)?.[1] ?? "";
        return `HTTP/1.1 200 OK\r\nX-Echo: ${secret}\u0000\u0001\r\nContent-Length: 2\r\n\r\n{}`;
      },
    ],
    [
      "a status line that echoes the secret",
      (received) => {
        const secret = /x-identity-header: ([^\r\n]*)/i.exec(received)?.[1] ?? "";
        return `HTTP/1.1 2${secret} OK\r\nContent-Length: 2\r\n\r\n{}`;
      },
    ],
  ];
  for (const [name, reply] of cases) {
    test(`acquireToken() on AppService with ${name} shows no secret in the error or its cause`, async () => {
      const server = await rawServer(reply);
      try {
        const client = testClient({
          env: { IDENTITY_ENDPOINT: `${server.url}/msi/token`, IDENTITY_HEADER: SECRET },
          retry: false,
          timeoutMs: 5000,
        });
        const error = await failure(client.acquireToken(VAULT));
        assert.ok(["unavailable", "request_failed", "invalid_response"].includes(error.code), error.message);
        assertNoLeak(renderings(error), SECRET);
      } finally {
        await server.close();
      }
    });
  }
});

// Generous: a call that reads a hostile body at the read cap takes tens of milliseconds in linear
// time; the redaction gate's quadratic tag pattern took seconds on an eighth of these bodies.
const BOUND_MS = 1000;

/** The call's error and how long it took to come, from the call. */
async function timedFailure(promise: () => Promise<unknown>): Promise<{ error: ManagedIdentityError; ms: number }> {
  const started = performance.now();
  const error = await failure(promise());
  return { error, ms: performance.now() - started };
}

/**
 * A JSON object of `fields` and, last, `name`: `echo` followed by `unit` repeated, so that the
 * body is as close to `READ_CAP` bytes as a whole number of JSON-escaped units allows.
 */
function jsonAtCap(fields: Record<string, unknown>, name: string, echo: string, unit: string): string {
  const frame = JSON.stringify({ ...fields, [name]: echo });
  const escaped = JSON.stringify(unit).slice(1, -1);
  const room = READ_CAP - frame.length;
  const body = `${frame.slice(0, -2)}${fill(escaped, room - (room % escaped.length))}"}`;
  assert.ok(body.length <= READ_CAP && body.length > READ_CAP - 64 && JSON.parse(body));
  return body;
}

describe("hostile bodies at the read cap fail in linear time, and show no secret", () => {
  const env = SOURCES[0]!.env;
  const echo = `header was ${SECRET}; `;
  const cases = Object.entries(worstCases(READ_CAP - echo.length));
  // The repeating unit of each worst case, for bodies where it fills a JSON string.
  const HOSTILE_UNITS: Record<string, string> = {
    "<": "<",
    "<a": "<a",
    "\\u003c": "\\u003c",
    "&#": "&#",
    "%25": "%25",
    "backslashes": "\\",
    "token=": "token=",
    "39-character words": `${"a".repeat(39)} `,
    "eyJ.": "eyJ.",
    "NULs": "\0",
    "whitespace": " \r\n\t",
  };
  /** The secrets must go out (so they are there to leak), and the body comes back. */
  const answering = (status: number, body: string | Uint8Array<ArrayBuffer>) =>
    recorder((request) => {
      assert.equal(request.headers.get("x-identity-header"), SECRET);
      return new Response(body, { status });
    });

  test("acquireToken() fails request_failed on a 500 whose 1 MiB body is hostile, within the bound", async () => {
    for (const [name, filler] of cases) {
      const events: ManagedIdentityEvent[] = [];
      const fake = answering(500, `${echo}${filler}`);
      const client = testClient({ env, fetch: fake.fetch, retry: false, onEvent: (event) => events.push(event) });
      const { error, ms } = await timedFailure(() => client.acquireToken(VAULT));
      assert.equal(error.code, "request_failed", `${name}: ${error.message}`);
      assert.equal(error.status, 500);
      assert.ok(ms < BOUND_MS, `${name}: ${ms.toFixed(0)} ms`);
      assertNoLeak(shown(error, events), SECRET, `error for ${name}`);
    }
  });

  test("acquireToken() fails request_failed on a JSON 500 whose 1 MiB description is hostile, within the bound", async () => {
    for (const [name, unit] of Object.entries(HOSTILE_UNITS)) {
      const fake = answering(500, jsonAtCap({ error: "bad" }, "error_description", echo, unit));
      const client = testClient({ env, fetch: fake.fetch, retry: false });
      const { error, ms } = await timedFailure(() => client.acquireToken(VAULT));
      assert.equal(error.code, "request_failed", `${name}: ${error.message}`);
      assert.ok(ms < BOUND_MS, `${name}: ${ms.toFixed(0)} ms`);
      assertNoLeak(renderings(error), SECRET, `error for ${name}`);
    }
  });

  test("acquireToken() fails invalid_response on a 200 whose 1 MiB body is hostile and not JSON, within the bound", async () => {
    for (const [name, filler] of cases) {
      const fake = answering(200, `${echo}${filler}`);
      const client = testClient({ env, fetch: fake.fetch, retry: false });
      const { error, ms } = await timedFailure(() => client.acquireToken(VAULT));
      assert.equal(error.code, "invalid_response", `${name}: ${error.message}`);
      assert.ok(ms < BOUND_MS, `${name}: ${ms.toFixed(0)} ms`);
      assertNoLeak(renderings(error), SECRET, `error for ${name}`);
    }
  });

  test("acquireToken() fails invalid_response on a 200 whose 1 MiB expires_on is hostile, within the bound", async () => {
    for (const unit of Object.values(HOSTILE_UNITS)) {
      // The access token echoed too: from the moment the body yields it, it is a secret.
      const fake = answering(200, jsonAtCap({ access_token: TOKEN }, "expires_on", `at ${SECRET} ${TOKEN} `, unit));
      const client = testClient({ env, fetch: fake.fetch, retry: false });
      const { error, ms } = await timedFailure(() => client.acquireToken(VAULT));
      assert.equal(error.code, "invalid_response", `${JSON.stringify(unit)}: ${error.message}`);
      assert.match(error.message, /expires_on/);
      assert.ok(ms < BOUND_MS, `${JSON.stringify(unit)}: ${ms.toFixed(0)} ms`);
      assertNoLeak(renderings(error), SECRET, `error for ${JSON.stringify(unit)}`);
      assertNoLeak(renderings(error), TOKEN, `error for ${JSON.stringify(unit)}`);
    }
  });

  test("acquireToken() fails invalid_response on a 200 whose expires_on is nested 500,000 arrays deep", async () => {
    // JSON.parse reads it; showing it must not overflow the stack (a RangeError, not our error).
    const depth = (READ_CAP - 64) / 2;
    const body = `{"access_token":"${TOKEN}","expires_on":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const client = testClient({ env, fetch: answering(200, body).fetch, retry: false });
    const { error, ms } = await timedFailure(() => client.acquireToken(VAULT));
    assert.equal(error.code, "invalid_response", error.message);
    assert.match(error.message, /expires_on/);
    assert.ok(ms < BOUND_MS, `${ms.toFixed(0)} ms`);
  });

  test("acquireToken() returns the token when a hostile 1 MiB expires_on falls back to expires_in, within the bound", async () => {
    for (const unit of ["<", "\\u003c", "%25"]) {
      const events: ManagedIdentityEvent[] = [];
      const fake = answering(
        200,
        jsonAtCap({ access_token: TOKEN, expires_in: 3600 }, "expires_on", `at ${SECRET} ${TOKEN} `, unit),
      );
      const client = testClient({ env, fetch: fake.fetch, onEvent: (event) => events.push(event) });
      const started = performance.now();
      const result = await client.acquireToken(VAULT);
      const ms = performance.now() - started;
      assert.equal(result.accessToken, TOKEN);
      assert.ok(ms < BOUND_MS, `${JSON.stringify(unit)}: ${ms.toFixed(0)} ms`);
      assert.equal(events[0]?.type, "expires_on_fallback");
      assertNoLeak(shown(undefined, events), SECRET, "event");
      assertNoLeak(shown(undefined, events), TOKEN, "event");
    }
  });
});

describe("a secret echoed with invisible characters between its characters is cut", () => {
  // Letters and digits only, so that the plain check below is exact.
  const KEY = "Sup3rS3cretHeaderValue9Xq";
  const env = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/msi/token", IDENTITY_HEADER: KEY };
  const bodies = (form: string): Record<string, string> => ({
    "plain text": `Bad request, header was ${form}`,
    "JSON": JSON.stringify({ error: "bad", error_description: `header was ${form}`, correlationId: form }),
    "HTML": `<html><body><p>Header: ${form}</p></body></html>`,
  });

  for (const [name, form] of Object.entries(interleavings(KEY))) {
    test(`acquireToken() on AppService hides the secret echoed with ${name} between its characters`, async () => {
      for (const [shape, body] of Object.entries(bodies(form))) {
        const events: ManagedIdentityEvent[] = [];
        const fake = recorder((request) => {
          assert.equal(request.headers.get("x-identity-header"), KEY);
          return new Response(body, { status: 400 });
        });
        const client = testClient({ env, fetch: fake.fetch, retry: false, onEvent: (event) => events.push(event) });
        const error = await failure(client.acquireToken(VAULT));
        assert.equal(error.code, "request_failed", `${shape}: ${error.message}`);
        assertNotShown(error, KEY);
        assertNotSpelled(shown(error, events), KEY, `error for the ${shape} body`);
      }
    });
  }

  test("acquireToken() on AppService hides the secret of a UTF-16LE answer", async () => {
    const fake = recorder((request) =>
      new Response(utf16le(`\ufeffBad request, header was ${request.headers.get("x-identity-header")}`), {
        status: 400,
        headers: { "content-type": "text/plain; charset=utf-16le" },
      })
    );
    const client = testClient({ env, fetch: fake.fetch, retry: false });
    const error = await failure(client.acquireToken(VAULT));
    assert.equal(error.code, "request_failed", error.message);
    assertNotShown(error, KEY);
    assertNotSpelled(renderings(error), KEY);
  });
});
