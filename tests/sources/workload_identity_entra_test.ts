/**
 * Workload identity against Microsoft Entra ID (docs/sources.md): its error bodies, the "entra"
 * retry rules, single flight, the cache and the background refresh, and redaction of the
 * assertion. Every endpoint is a fake handler given as the client's `fetch`, so nothing leaves the
 * process, even for the default https://login.microsoftonline.com.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { inspect } from "node:util";
import { type ManagedIdentityClientOptions, type ManagedIdentityEvent, TokenCache } from "../../mod.ts";
import { recorder, type Seen, testClient } from "../helpers/fake.ts";
import { deferred, rejectsWith } from "../helpers/checks.ts";
import { fakeTime } from "../helpers/faults.ts";
import { assertNoLeak, encodings, renderings } from "../helpers/leaks.ts";
import {
  ASSERTION,
  assertTokenRequest,
  CLIENT_ID,
  expectedForm,
  form,
  MINUTE,
  NOW,
  OTHER_CLIENT_ID,
  ROTATED,
  SECOND,
  TENANT,
  token,
  TOKEN_URL,
  until,
  VAULT,
  wiClient,
  wiEnv,
  withTokenFile,
} from "../helpers/workload_identity.ts";

/** Entra ID's error body (docs/sources.md, error bodies). */
function entraError(error: string, description: string, code: number, correlationId: string) {
  return {
    error,
    error_description: `${description} Trace ID: 0b5a8f43-0000-4000-8000-00000000aa01 ` +
      `Correlation ID: ${correlationId} Timestamp: 2026-01-01 00:00:00Z`,
    error_codes: [code],
    timestamp: "2026-01-01 00:00:00Z",
    trace_id: "0b5a8f43-0000-4000-8000-00000000aa01",
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${code}`,
  };
}

describe("workload identity errors from Entra ID", () => {
  const cases: readonly [number, string, string, number][] = [
    [
      400,
      "invalid_request",
      "AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: " +
      "'https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/'. Assertion Subject: " +
      "'system:serviceaccount:default:workload'. Assertion Audience: 'api://AzureADTokenExchange'.",
      70021,
    ],
    [
      400,
      "unauthorized_client",
      `AADSTS700016: Application with identifier '${CLIENT_ID}' was not found in the directory 'Contoso'.`,
      700016,
    ],
    [401, "invalid_client", "AADSTS700024: Client assertion is not within its valid time range.", 700024],
    [400, "invalid_request", `AADSTS90002: Tenant '${TENANT}' not found.`, 90002],
  ];
  for (const [status, code, description, number] of cases) {
    const aadsts = `AADSTS${number}`;
    test(`acquireToken() fails with request_failed ${status} keeping ${aadsts} and the correlation ID, without retry`, async () => {
      await withTokenFile(async ({ path }) => {
        const correlationId = `c0ffee00-0000-4000-8000-0000000${String(number).padStart(5, "0")}`;
        const fake = recorder(() =>
          Response.json(entraError(code, description, number, correlationId), {
            status,
            headers: { "x-ms-request-id": "0b5a8f43-0000-4000-8000-00000000aa01", "client-request-id": "abc" },
          })
        );
        const time = fakeTime(NOW);
        const client = testClient({ env: wiEnv(path), fetch: fake.fetch }, { now: time.now, sleep: time.sleep });
        const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
        assert.equal(error.status, status);
        assert.equal(error.error, code);
        assert.ok(error.errorDescription?.startsWith(`${aadsts}: `), error.errorDescription);
        assert.equal(error.correlationId, correlationId);
        assert.equal(error.endpoint, TOKEN_URL);
        assert.match(error.message, new RegExp(`answered ${status} \\(${code}: ${aadsts}: `));
        assert.equal(fake.seen.length, 1);
        assert.deepEqual(time.sleeps, []);
        assertNoLeak(renderings(error), ASSERTION, "error");
      });
    });
  }
});

describe("workload identity retries", () => {
  /** A client whose endpoint answers `first` on the first `count` requests, then a token. */
  async function retried(
    first: () => Response,
    count: number,
    check: (outcome: { seen: Seen[]; sleeps: number[]; events: ManagedIdentityEvent[]; files: string[] }) => void,
    options: Partial<ManagedIdentityClientOptions> = {},
  ): Promise<void> {
    await withTokenFile(async ({ path }) => {
      const fake = recorder((_request, index) => index < count ? first() : token());
      const time = fakeTime(NOW);
      const events: ManagedIdentityEvent[] = [];
      const { client, files } = wiClient(path, {
        fetch: fake.fetch,
        retry: { maxRetries: 3 },
        onEvent: (event) => events.push(event),
        ...options,
      }, { now: time.now, sleep: time.sleep, random: () => 0 });
      await client.acquireToken(VAULT).catch(() => {});
      // Every attempt carries the same request; the file is read once for all of them.
      for (const seen of fake.seen) {
        assertTokenRequest(seen);
        assert.deepEqual(form(seen), expectedForm());
      }
      check({ seen: fake.seen, sleeps: time.sleeps, events, files: files.openCalls });
    });
  }

  test("acquireToken() retries a 429 after its Retry-After and gets the token", async () => {
    await retried(
      () => Response.json({ error: "temporarily_unavailable" }, { status: 429, headers: { "retry-after": "7" } }),
      1,
      ({ seen, sleeps, events, files }) => {
        assert.equal(seen.length, 2);
        assert.deepEqual(sleeps, [7000]);
        assert.deepEqual(events, [{
          type: "retry",
          source: "WorkloadIdentity",
          attempt: 1,
          delayMs: 7000,
          reason: "status 429",
        }]);
        assert.equal(files.length, 1);
      },
    );
  });

  for (const status of [500, 502, 503, 504, 599]) {
    test(`acquireToken() retries a ${status} after 1 s and gets the token`, async () => {
      await retried(() => Response.json({ error: "server_error" }, { status }), 1, ({ seen, sleeps, files }) => {
        assert.equal(seen.length, 2);
        assert.deepEqual(sleeps, [1000]);
        assert.equal(files.length, 1);
      });
    });
  }

  test("acquireToken() retries a 503 with Retry-After 3 times, then fails with request_failed 503", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() =>
        Response.json({ error: "temporarily_unavailable" }, { status: 503, headers: { "retry-after": "2" } })
      );
      const time = fakeTime(NOW);
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: { maxRetries: 3 } }, {
        now: time.now,
        sleep: time.sleep,
      });
      const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
      assert.equal(error.status, 503);
      assert.equal(fake.seen.length, 4);
      assert.deepEqual(time.sleeps, [2000, 2000, 2000]);
      assert.equal(files.openCalls.length, 1);
    });
  });

  const never: readonly [number, string][] = [
    [400, "invalid_request"],
    [401, "invalid_client"],
    [403, "access_denied"],
    [404, "not_found"],
    [408, "request_timeout"],
    [410, "gone"],
  ];
  for (const [status, code] of never) {
    test(`acquireToken() never retries a ${status} from Entra ID`, async () => {
      await retried(
        () => Response.json({ error: code, error_description: "AADSTS50000: no" }, { status }),
        4,
        ({ seen, sleeps, events }) => {
          assert.equal(seen.length, 1);
          assert.deepEqual(sleeps, []);
          assert.deepEqual(events, []);
        },
      );
    });
  }
});

describe("workload identity cache, single flight and background refresh", () => {
  test("acquireToken() makes one request and reads the file once for 50 concurrent cold calls", async () => {
    await withTokenFile(async ({ path }) => {
      const answer = deferred<Response>();
      const fake = recorder(() => answer.promise);
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: false });
      const calls = Array.from({ length: 50 }, () => client.acquireToken(VAULT));
      await until(() => fake.seen.length > 0, "the request");
      answer.resolve(token("shared-token"));
      const results = await Promise.all(calls);
      assert.deepEqual(new Set(results.map((result) => result.accessToken)), new Set(["shared-token"]));
      assert.ok(results.every((result) => !result.fromCache));
      assert.equal(fake.seen.length, 1);
      assert.deepEqual(files.openCalls, [path]);
    });
  });

  test("acquireToken() serves the second call from the cache: no request, no file read", async () => {
    await withTokenFile(async ({ path }) => {
      const fake = recorder(() => token());
      const { client, files } = wiClient(path, { fetch: fake.fetch });
      const first = await client.acquireToken(VAULT);
      const second = await client.acquireToken(VAULT);
      assert.equal(first.fromCache, false);
      assert.equal(second.fromCache, true);
      assert.equal(second.accessToken, "entra-token");
      assert.equal(fake.seen.length, 1);
      assert.equal(files.openCalls.length, 1);
    });
  });

  test("acquireToken() shares no cached token between AZURE_CLIENT_ID and another clientId option", async () => {
    await withTokenFile(async ({ path }) => {
      const cache = new TokenCache();
      const fake = recorder((_request, index) => token(`token-${index}`));
      const a = testClient({ env: wiEnv(path), fetch: fake.fetch, cache });
      const b = testClient({ env: wiEnv(path), fetch: fake.fetch, cache, clientId: OTHER_CLIENT_ID });
      await a.acquireToken(VAULT);
      await b.acquireToken(VAULT);
      assert.equal((await a.acquireToken(VAULT)).fromCache, true);
      assert.equal((await b.acquireToken(VAULT)).fromCache, true);
      assert.deepEqual(fake.seen.map((seen) => new URLSearchParams(seen.body).get("client_id")), [
        CLIENT_ID,
        OTHER_CLIENT_ID,
      ]);
    });
  });

  test("acquireToken() past refresh_in serves the cached token and refreshes once in the background, with the rotated file", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder((_request, index) => token(`token-${index}`, { refresh_in: 600 }));
      const { client, files } = wiClient(path, { fetch: fake.fetch, retry: false }, { now: () => now });
      const issued = await client.acquireToken(VAULT);
      assert.equal(issued.refreshOn?.getTime(), NOW + 10 * MINUTE);
      assert.equal(issued.expiresOn.getTime(), NOW + 3599 * SECOND);
      await fsp.writeFile(path, ROTATED);

      now = NOW + 10 * MINUTE - 1;
      assert.equal((await client.acquireToken(VAULT)).fromCache, true);
      now = NOW + 10 * MINUTE;
      const served = await Promise.all(Array.from({ length: 10 }, () => client.acquireToken(VAULT)));
      assert.ok(served.every((result) => result.fromCache && result.accessToken === "token-0"));
      await until(() => fake.seen.length === 2, "the background refresh");
      const refreshed = await (async () => {
        for (let i = 0; i < 200; i++) {
          const result = await client.acquireToken(VAULT);
          if (result.accessToken !== "token-0") return result;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        assert.fail("the background refresh never replaced the cached token");
      })();
      assert.equal(refreshed.accessToken, "token-1");
      assert.equal(refreshed.fromCache, true);
      assert.equal(fake.seen.length, 2);
      assert.equal(new URLSearchParams(fake.seen[1]!.body).get("client_assertion"), ROTATED);
      assert.equal(files.openCalls.length, 2);
    });
  });
});

/** A secret with every character an encoder treats specially, as in tests/echo_test.ts. */
const PUNCTUATED = 'Zk3+Q/"w\\e=9&p%7 Z';

/** Error bodies in Entra's shape whose every field is the echo `e` (inserted as it is into JSON text). */
function echoBodies(e: string): Record<string, string> {
  return {
    "Entra shape": `{"error":"bad_${e}","error_description":"AADSTS70021: echo ${e}","error_codes":[70021],` +
      `"timestamp":"${e}","trace_id":"${e}","correlation_id":"${e}","error_uri":"https://x/?a=${e}"}`,
    "plain text": `Bad assertion ${e}`,
    "HTML": `<html><body><p>Assertion: ${e}</p></body></html>`,
  };
}

/** Every text an outcome can be shown as: the error's renderings and each event's. */
function shown(error: unknown, events: readonly ManagedIdentityEvent[]): string[] {
  return [
    ...renderings(error),
    ...events.flatMap((event) => [JSON.stringify(event), inspect(event, { depth: Infinity })]),
    ...events.flatMap((event) => ("error" in event ? renderings(event.error) : [])),
  ];
}

describe("workload identity never shows the assertion", () => {
  for (
    const [label, secret] of [["a punctuated assertion", PUNCTUATED], ["a service account token", ASSERTION]] as const
  ) {
    for (const [encoding, echo] of Object.entries(encodings(secret))) {
      if (encoding === "inspect-quoted") continue;
      test(`acquireToken() hides ${label} echoed ${encoding} in every error field and correlation header`, async () => {
        await withTokenFile(async ({ path }) => {
          for (const [shape, body] of Object.entries(echoBodies(echo))) {
            for (const status of [400, 500]) {
              const events: ManagedIdentityEvent[] = [];
              const fake = recorder((request) => {
                return request.text().then((text) => {
                  // The assertion really went out, so it was there to leak.
                  assert.equal(new URLSearchParams(text).get("client_assertion"), secret);
                  return new Response(body, {
                    status,
                    headers: { "x-ms-correlation-id": echo, "x-ms-request-id": echo, "client-request-id": echo },
                  });
                });
              });
              const time = fakeTime(NOW);
              const client = testClient({
                env: wiEnv(path),
                fetch: fake.fetch,
                retry: { maxRetries: 1 },
                onEvent: (event) => events.push(event),
              }, { now: time.now, sleep: time.sleep });
              const error = await rejectsWith(client.acquireToken(VAULT), "request_failed", "WorkloadIdentity");
              assert.equal(error.status, status);
              assert.equal(fake.seen.length, status === 500 ? 2 : 1);
              assertNoLeak(shown(error, events), secret, `error for the ${shape} body, status ${status}`);
            }
          }
        }, `${secret}\n`);
      });
    }
  }

  test("acquireToken() hides an assertion that a 200 body echoes instead of a token", async () => {
    await withTokenFile(async ({ path }) => {
      for (const echo of Object.values(encodings(PUNCTUATED)).slice(0, 6)) {
        for (const body of [`<html>${echo}</html>`, `{"token_type":"Bearer","expires_in":"${echo}"}`]) {
          const client = testClient({ env: wiEnv(path), fetch: () => new Response(body) });
          const error = await rejectsWith(client.acquireToken(VAULT), "invalid_response", "WorkloadIdentity");
          assertNoLeak(renderings(error), PUNCTUATED, `error for ${body}`);
        }
      }
    }, PUNCTUATED);
  });

  test("onEvent payloads never carry the assertion: retries and a failed background refresh", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const events: ManagedIdentityEvent[] = [];
      const fake = recorder(async (request, index) => {
        if (index === 0) return token("first", { refresh_in: 60 });
        const sent = new URLSearchParams(await request.text()).get("client_assertion") ?? "";
        const echo = encodeURIComponent(sent);
        return Response.json(
          { error: `e_${echo}`, error_description: `AADSTS70021: ${sent}`, correlation_id: sent },
          { status: index === 1 ? 503 : 400, headers: { "x-ms-request-id": echo } },
        );
      });
      const client = testClient({
        env: wiEnv(path),
        fetch: fake.fetch,
        retry: { maxRetries: 1, delayMs: 0 },
        onEvent: (event) => events.push(event),
      }, { now: () => now, sleep: () => Promise.resolve() });
      await client.acquireToken(VAULT);
      now += 61 * SECOND;
      assert.equal((await client.acquireToken(VAULT)).fromCache, true);
      await until(() => events.some((event) => event.type === "refresh_failed"), "the refresh_failed event");
      assert.deepEqual(events.map((event) => event.type), ["retry", "refresh_failed"]);
      assert.equal(fake.seen.length, 3);
      assertNoLeak(shown(undefined, events), PUNCTUATED, "events");
    }, PUNCTUATED);
  });

  test("a token file error shows neither the old assertion nor the new file's contents", async () => {
    await withTokenFile(async ({ path }) => {
      let now = NOW;
      const fake = recorder(() => token());
      const client = testClient({ env: wiEnv(path), fetch: fake.fetch }, { now: () => now });
      await client.acquireToken(VAULT);
      await fsp.writeFile(path, PUNCTUATED.repeat(4000));
      now += 5 * MINUTE;
      const error = await rejectsWith(client.acquireToken(VAULT, { forceRefresh: true }), "invalid_configuration");
      assertNoLeak(renderings(error), ASSERTION, "error");
      assertNoLeak(renderings(error), PUNCTUATED, "error");
      assertNoLeak(
        [inspect(client, { depth: Infinity, showHidden: true }), JSON.stringify(client)],
        ASSERTION,
        "client",
      );
    });
  });
});
