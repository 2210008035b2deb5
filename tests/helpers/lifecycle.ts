/**
 * What the client lifecycle tests (tests/lifecycle_test.ts, tests/refresh_test.ts,
 * tests/cache_entries_test.ts) share: a fixed clock start and durations, resources, an App Service
 * environment, an endpoint that holds each request until the test answers it, and token and error
 * replies.
 */

import type { EnvRecord, ManagedIdentityClient, TokenResult } from "../../mod.ts";
import { type Deferred, deferred, turn } from "./checks.ts";
import { recorder } from "./fake.ts";

export const NOW = 1_700_000_000_000;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const VAULT = "https://vault.azure.net";
export const STORAGE = "https://storage.azure.com";
export const GRAPH = "https://graph.microsoft.com";
export const CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';

export const APP_SERVICE: EnvRecord = { IDENTITY_ENDPOINT: "http://127.0.0.1:41741/token", IDENTITY_HEADER: "h" };

/**
 * A fake endpoint that holds every request until the test answers it: `calls[i].answer` is the
 * gate of the i-th request, `calls[i].request` the `Request` the handler saw (with its signal).
 */
export function heldEndpoint() {
  const calls: { request: Request; answer: Deferred<Response> }[] = [];
  const fake = recorder((request) => {
    const answer = deferred<Response>();
    calls.push({ request, answer });
    return answer.promise;
  });
  return { fetch: fake.fetch, seen: fake.seen, calls };
}

/** The client's first call for VAULT, answered at the held endpoint with `token-0`, to be refreshed in 10 minutes. */
export async function firstToken(
  client: ManagedIdentityClient,
  endpoint: ReturnType<typeof heldEndpoint>,
): Promise<TokenResult> {
  const first = client.acquireToken(VAULT);
  await turn();
  endpoint.calls[0]!.answer.resolve(tokenReply("token-0", { refresh_in: 600 }));
  return await first;
}

/** A token body; `refresh_in` and other fields through `extra`. */
export function tokenReply(accessToken: string, extra: Record<string, unknown> = {}): Response {
  return Response.json({ access_token: accessToken, expires_in: 3600, ...extra });
}

export function serverError(): Response {
  return Response.json({ statusCode: 500, message: "Internal error" }, { status: 500 });
}

export function tokens(results: readonly TokenResult[]): Set<string> {
  return new Set(results.map((result) => result.accessToken));
}
