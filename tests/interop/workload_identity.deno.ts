/**
 * Interop with `@azure/identity`'s `WorkloadIdentityCredential` (Deno only: it imports npm:
 * packages; tests/run_all.ts passes it to `deno test` by name). Both clients get the same
 * settings (the SDK's as options: tenantId, clientId, tokenFilePath, authorityHost; ours as its
 * `env` record, never the process environment), the same token file, and the same fake
 * Microsoft Entra ID; the test compares what each sends (method, URL, every form field) and
 * what each returns, and every difference is asserted and explained where it is found.
 *
 * Nothing leaves the process: the SDK's requests go through its `httpClient` option (a
 * core-rest-pipeline HttpClient answered by the fake), ours through the client's `fetch`
 * option (the same fake); each test asserts the full list of URLs each client asked for, and
 * runs with the network permission revoked, so a request that slipped past the fake would fail.
 */

import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AccessToken, WorkloadIdentityCredential } from "npm:@azure/identity@4";
import {
  createHttpHeaders,
  type HttpClient,
  type PipelineRequest,
  type PipelineResponse,
} from "npm:@azure/core-rest-pipeline@1.25";
import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../../mod.ts";

const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID = "11111111-2222-3333-4444-555555555555";
const ENTRA = "https://login.microsoftonline.com";
const SCOPE = "https://vault.azure.net/.default";
/** A projected service account token (header.payload.signature). */
const ASSERTION = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDp3b3JrbG9hZCJ9.c2lnbmF0dXJl";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}';

/** One request as the fake Entra ID saw it, from either client. */
interface Exchange {
  readonly method: string;
  readonly url: URL;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  readonly form: [string, string][];
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

/**
 * A fake Microsoft Entra ID for any origin: the token endpoint (answered by `token`), instance
 * discovery and the OpenID configuration (which msal asks for an authority it has no built-in
 * metadata for). Anything else is a 404 and stays in `seen`, so the test shows it.
 */
function fakeEntra(token: (exchange: Exchange) => Reply) {
  const seen: Exchange[] = [];
  const answer = (exchange: Exchange): Reply => {
    seen.push(exchange);
    const { url } = exchange;
    if (exchange.method === "POST" && url.pathname === `/${TENANT}/oauth2/v2.0/token`) return token(exchange);
    if (exchange.method === "GET" && url.pathname === "/common/discovery/instance") {
      const authority = new URL(url.searchParams.get("authorization_endpoint") ?? ENTRA);
      return {
        status: 200,
        body: {
          tenant_discovery_endpoint: `${authority.origin}/${TENANT}/v2.0/.well-known/openid-configuration`,
          "api-version": "1.1",
          metadata: [{ preferred_network: authority.host, preferred_cache: authority.host, aliases: [authority.host] }],
        },
      };
    }
    if (exchange.method === "GET" && url.pathname === `/${TENANT}/v2.0/.well-known/openid-configuration`) {
      const base = `${url.origin}/${TENANT}`;
      return {
        status: 200,
        body: {
          token_endpoint: `${base}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          issuer: `${base}/v2.0`,
          jwks_uri: `${url.origin}/${TENANT}/discovery/v2.0/keys`,
        },
      };
    }
    return { status: 404, body: { error: "not_found" } };
  };
  const form = (body: unknown) => [...new URLSearchParams(typeof body === "string" ? body : "")];
  /** The SDK's side: a core-rest-pipeline HttpClient. */
  const httpClient: HttpClient = {
    sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const reply = answer({
        method: request.method,
        url: new URL(request.url),
        headers: request.headers.toJSON(),
        form: form(request.body),
      });
      return Promise.resolve({
        request,
        status: reply.status,
        headers: createHttpHeaders({ "content-type": "application/json; charset=utf-8" }),
        bodyAsText: JSON.stringify(reply.body),
      });
    },
  };
  /** Our side: the client's `fetch` option. */
  const fetch = async (request: Request): Promise<Response> => {
    const reply = answer({
      method: request.method,
      url: new URL(request.url),
      headers: Object.fromEntries(request.headers),
      form: form(await request.text()),
    });
    return Response.json(reply.body, { status: reply.status });
  };
  return { seen, httpClient, fetch };
}

/** Runs `body` with a token file holding the assertion (with the whitespace both clients trim). */
async function withTokenFile(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "azmi-interop-wi-"));
  try {
    const path = join(dir, "azure-identity-token");
    await fsp.writeFile(path, `\n  ${ASSERTION}\n`);
    await body(path);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The two clients over the same settings, each with its own fake (one per client, so each list is its own). */
function clients(path: string, authorityHost: string, token: (exchange: Exchange) => Reply, discovery = false) {
  const theirs = fakeEntra(token);
  const ours = fakeEntra(token);
  const sdk = new WorkloadIdentityCredential({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    tokenFilePath: path,
    authorityHost,
    httpClient: theirs.httpClient,
    // Without it msal validates an authority it does not know through instance discovery
    // (see the last test); with it, msal trusts the host as given, as we do.
    disableInstanceDiscovery: !discovery,
  });
  const client = new ManagedIdentityClient({
    env: {
      AZURE_FEDERATED_TOKEN_FILE: path,
      AZURE_TENANT_ID: TENANT,
      AZURE_CLIENT_ID: CLIENT_ID,
      AZURE_AUTHORITY_HOST: authorityHost,
    },
    fetch: ours.fetch,
    cache: new TokenCache(),
  });
  assert.equal(client.source, "WorkloadIdentity");
  return { sdk, theirs: theirs.seen, client, ours: ours.seen };
}

const tokenReply = (extra: Record<string, unknown> = {}) => (): Reply => ({
  status: 200,
  body: { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: "entra-token", ...extra },
});

const urls = (seen: readonly Exchange[]) => seen.map((exchange) => `${exchange.method} ${exchange.url.href}`);
const fields = (exchange: Exchange) => Object.fromEntries(exchange.form);

/**
 * The form fields msal adds to every token request, which ours does not send: library and
 * platform identification (x-client-SKU, -VER, -OS, -CPU), msal's server telemetry (current and
 * last request), the capabilities it announces to Entra (x-ms-lib-capability: it honours
 * Retry-After and 429), and a per-request correlation ID (client-request-id, also in the query
 * string). None is required by the client credentials grant: Entra ID accepts the request
 * without them (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
 */
const MSAL_ONLY_FIELDS = [
  "client-request-id",
  "x-client-CPU",
  "x-client-OS",
  "x-client-SKU",
  "x-client-VER",
  "x-client-current-telemetry",
  "x-client-last-telemetry",
  "x-ms-lib-capability",
];

/** Every permission as the test runner has it, except the network, which is revoked. */
const OFFLINE: Deno.TestDefinition["permissions"] = {
  read: "inherit",
  write: "inherit",
  env: "inherit",
  sys: "inherit",
  run: "inherit",
  ffi: "inherit",
  import: "inherit",
  net: false,
};

Deno.test({
  name: "WorkloadIdentityCredential and ManagedIdentityClient send the same token exchange and return the same token",
  permissions: OFFLINE,
  fn: () =>
    withTokenFile(async (path) => {
      const { sdk, theirs, client, ours } = clients(path, ENTRA, tokenReply({ refresh_in: 1800 }));
      const before = Date.now();
      const theirToken: AccessToken = await sdk.getToken(SCOPE);
      const ourToken: AccessToken = await client.getToken(SCOPE);
      const after = Date.now();

      // Each asked for one thing: the token endpoint (msal knows login.microsoftonline.com's
      // metadata without asking). msal adds its client-request-id to the query string.
      assert.equal(theirs.length, 1, urls(theirs).join("\n"));
      assert.equal(ours.length, 1, urls(ours).join("\n"));
      const [their, our] = [theirs[0]!, ours[0]!];
      const requestId = their.url.searchParams.get("client-request-id");
      assert.match(requestId ?? "", /^[0-9a-f-]{36}$/);
      assert.deepEqual(urls(theirs), [`POST ${ENTRA}/${TENANT}/oauth2/v2.0/token?client-request-id=${requestId}`]);
      assert.deepEqual(urls(ours), [`POST ${ENTRA}/${TENANT}/oauth2/v2.0/token`]);
      assert.equal(their.method, our.method);
      assert.equal(`${their.url.origin}${their.url.pathname}`, `${our.url.origin}${our.url.pathname}`);

      // The grant: every field we send, msal sends with the same value (the assertion trimmed by
      // both, the scope as given to getToken, which is our {resource}/.default).
      assert.deepEqual(our.form, [
        ["client_id", CLIENT_ID],
        ["scope", SCOPE],
        ["grant_type", "client_credentials"],
        ["client_assertion_type", JWT_BEARER],
        ["client_assertion", ASSERTION],
      ]);
      const theirFields = fields(their);
      for (const [name, value] of our.form) assert.equal(theirFields[name], value, `msal's ${name}`);
      // The same fields in another order (msal puts the assertion before its type): a form's
      // order carries no meaning.
      assert.deepEqual(
        their.form.map(([name]) => name).filter((name) => name in fields(our)),
        ["client_id", "scope", "grant_type", "client_assertion", "client_assertion_type"],
      );
      // What msal sends beyond the grant, and no field we send is missing from it.
      assert.deepEqual(
        Object.keys(theirFields).filter((name) => !(name in fields(our))).sort(),
        [...MSAL_ONLY_FIELDS].sort(),
      );
      assert.equal(theirFields["x-client-SKU"], "msal.js.node");
      assert.equal(theirFields["x-ms-lib-capability"], "retry-after, h429");
      assert.equal(theirFields["client-request-id"], requestId);
      assert.equal(their.form.length, our.form.length + MSAL_ONLY_FIELDS.length, "no field twice");

      // Headers: ours sends the Content-Type alone; the SDK's pipeline adds a charset to it, its
      // User-Agent (azsdk-js-identity), its own request ID, and Accept-Encoding.
      assert.deepEqual(our.headers, { "content-type": "application/x-www-form-urlencoded" });
      assert.equal(their.headers["content-type"], "application/x-www-form-urlencoded;charset=utf-8");
      assert.match(their.headers["user-agent"] ?? "", /^azsdk-js-identity\/4\./);
      assert.deepEqual(
        Object.keys(their.headers).sort(),
        ["accept-encoding", "content-type", "user-agent", "x-ms-client-request-id"],
      );

      // What each returns: the same token and type; the expiry and refresh time, each computed
      // from the client's own clock when the answer arrived, msal in whole seconds (so up to a
      // second apart), and both from the answer's expires_in and refresh_in.
      assert.equal(theirToken.token, "entra-token");
      assert.equal(ourToken.token, theirToken.token);
      assert.equal(ourToken.tokenType, "Bearer");
      assert.equal(theirToken.tokenType, "Bearer");
      for (const [label, at] of [["expiresOnTimestamp", 3599], ["refreshAfterTimestamp", 1800]] as const) {
        const theirs = theirToken[label]!;
        const ours = ourToken[label]!;
        assert.ok(Math.abs(ours - theirs) <= 2000, `${label}: ours ${ours}, theirs ${theirs}`);
        assert.ok(ours >= before + at * 1000 && ours <= after + at * 1000, `${label}: ours ${ours}`);
        assert.ok(theirs >= before + at * 1000 - 1000 && theirs <= after + at * 1000 + 1000, `${label}: ${theirs}`);
      }

      // A second call: both serve their caches.
      await sdk.getToken(SCOPE);
      await client.getToken(SCOPE);
      assert.equal(theirs.length, 1);
      assert.equal(ours.length, 1);
    }),
});

Deno.test({
  name:
    "WorkloadIdentityCredential and ManagedIdentityClient both leave refreshAfterTimestamp unset without refresh_in",
  permissions: OFFLINE,
  fn: () =>
    withTokenFile(async (path) => {
      const { sdk, client } = clients(path, ENTRA, tokenReply());
      const theirToken = await sdk.getToken(SCOPE);
      const ourToken = await client.getToken(SCOPE);
      // A one-hour token: neither sets a proactive refresh time of its own (ours does for tokens
      // living over 2 hours, see tests/refresh_test.ts).
      assert.equal(theirToken.refreshAfterTimestamp, undefined);
      assert.equal(ourToken.refreshAfterTimestamp, undefined);
      assert.ok(Math.abs(ourToken.expiresOnTimestamp - theirToken.expiresOnTimestamp) <= 2000);
    }),
});

Deno.test({
  name: "WorkloadIdentityCredential and ManagedIdentityClient both send the caller's claims, msal merged with its own",
  permissions: OFFLINE,
  fn: () =>
    withTokenFile(async (path) => {
      const { sdk, theirs, client, ours } = clients(path, ENTRA, tokenReply());
      await sdk.getToken(SCOPE, { claims: CLAIMS });
      await client.getToken(SCOPE, { claims: CLAIMS });
      assert.equal(theirs.length, 1);
      assert.equal(ours.length, 1);
      // Ours passes the caller's claims through as they are, after the grant's fields.
      assert.deepEqual(ours[0]!.form.at(-1), ["claims", CLAIMS]);
      // msal (msal-common's addClaims) merges them with id_token claims it always requests
      // (signin_state, login_hint, tenant_region_sub_scope, none essential); the caller's
      // access_token claims are the same. An id_token request means nothing in a client
      // credentials grant, which returns no ID token.
      const theirClaims = JSON.parse(fields(theirs[0]!).claims ?? "{}");
      assert.deepEqual(theirClaims.access_token, JSON.parse(CLAIMS).access_token);
      assert.deepEqual(Object.keys(theirClaims).sort(), ["access_token", "id_token"]);
      assert.deepEqual(
        Object.values(theirClaims.id_token as Record<string, { essential: boolean }>).map((claim) => claim.essential),
        Object.keys(theirClaims.id_token).map(() => false),
      );
      // Apart from the claims, the requests compare as in the first test.
      const theirFields = fields(theirs[0]!);
      for (const [name, value] of ours[0]!.form.slice(0, -1)) assert.equal(theirFields[name], value, name);
    }),
});

Deno.test({
  name: "WorkloadIdentityCredential and ManagedIdentityClient both fail on Entra's AADSTS70021 after one request",
  permissions: OFFLINE,
  fn: () =>
    withTokenFile(async (path) => {
      const correlationId = "5e1f0d2c-0000-4000-8000-000000000003";
      const description = "AADSTS70021: No matching federated identity record found for presented assertion.";
      const refusal = (): Reply => ({
        status: 400,
        body: {
          error: "invalid_request",
          error_description: description,
          error_codes: [70021],
          timestamp: "2026-01-01 00:00:00Z",
          trace_id: "0b5a8f43-0000-4000-8000-00000000aa01",
          correlation_id: correlationId,
        },
      });
      const { sdk, theirs, client, ours } = clients(path, ENTRA, refusal);
      const theirError = await sdk.getToken(SCOPE).then(() => assert.fail("expected an error"), (e: unknown) => e);
      const ourError = await client.getToken(SCOPE).then(() => assert.fail("expected an error"), (e: unknown) => e);
      // Neither retries a 400.
      assert.equal(theirs.length, 1);
      assert.equal(ours.length, 1);
      // Ours: request_failed with the status, Entra's error code, its description (from the
      // AADSTS code on) and its correlation ID as properties.
      assert.ok(ourError instanceof ManagedIdentityError);
      assert.equal(ourError.code, "request_failed");
      assert.equal(ourError.status, 400);
      assert.equal(ourError.error, "invalid_request");
      assert.equal(ourError.errorDescription, description);
      assert.equal(ourError.correlationId, correlationId);
      // The SDK: msal's ServerError, which @azure/identity's handleMsalError wraps as an
      // AuthenticationRequiredError (its catch-all, though no interaction could help here); the
      // same facts are in its message text, and the HTTP status is not exposed.
      assert.ok(theirError instanceof Error);
      assert.equal(theirError.name, "AuthenticationRequiredError");
      assert.match(theirError.message, /^invalid_request: /);
      assert.ok(theirError.message.includes(description), theirError.message);
      assert.ok(theirError.message.includes(`Correlation ID: ${correlationId}`), theirError.message);
    }),
});

Deno.test({
  name:
    "for an authority host msal has no metadata for, WorkloadIdentityCredential asks instance discovery and the OpenID configuration first; ManagedIdentityClient asks only the token endpoint",
  permissions: OFFLINE,
  fn: () =>
    withTokenFile(async (path) => {
      // A host outside msal's built-in list (a reserved .test name: the fake answers it).
      const host = "https://login.contoso.test";
      const { sdk, theirs, client, ours } = clients(path, host, tokenReply(), true);
      const theirToken = await sdk.getToken(SCOPE);
      const ourToken = await client.getToken(SCOPE);
      assert.equal(ourToken.token, theirToken.token);
      const requestId = theirs.at(-1)?.url.searchParams.get("client-request-id");
      // msal validates the authority through the public cloud's instance discovery, then reads
      // the authority's OpenID configuration to find the token endpoint; only then the token.
      assert.deepEqual(urls(theirs), [
        `GET ${ENTRA}/common/discovery/instance?api-version=1.1&authorization_endpoint=${host}/${TENANT}/oauth2/v2.0/authorize`,
        `GET ${host}/${TENANT}/v2.0/.well-known/openid-configuration`,
        `POST ${host}/${TENANT}/oauth2/v2.0/token?client-request-id=${requestId}`,
      ]);
      // Ours builds the token URL from AZURE_AUTHORITY_HOST and the tenant (docs/sources.md,
      // AKS workload identity) and asks nothing else: no request leaves for a host the caller did not name.
      assert.deepEqual(urls(ours), [`POST ${host}/${TENANT}/oauth2/v2.0/token`]);
      const theirFields = fields(theirs.at(-1)!);
      for (const [name, value] of ours[0]!.form) assert.equal(theirFields[name], value, name);
    }),
});
