/**
 * `deno task demo`: runs the client against a local stand-in of the App Service endpoint and
 * shows the request, the token and the cache. (The full emulator of every source replaces this.)
 */

import { ManagedIdentityClient, TokenCache } from "../mod.ts";

let requests = 0;
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
  requests++;
  const url = new URL(request.url);
  if (request.headers.get("x-identity-header") !== "demo-secret") {
    return Response.json({ statusCode: 400, message: "Missing X-IDENTITY-HEADER" }, { status: 400 });
  }
  return Response.json({
    access_token: `demo-token-for-${url.searchParams.get("resource")}`,
    expires_on: String(Math.floor(Date.now() / 1000) + 3600),
    resource: url.searchParams.get("resource"),
    token_type: "Bearer",
  });
});

const env = { IDENTITY_ENDPOINT: `http://127.0.0.1:${server.addr.port}/msi/token`, IDENTITY_HEADER: "demo-secret" };
const client = new ManagedIdentityClient({ env, cache: new TokenCache() });
console.log(`source: ${client.source}`);
for (const round of [1, 2]) {
  const started = performance.now();
  const token = await client.acquireToken("https://vault.azure.net/.default");
  const ms = (performance.now() - started).toFixed(2);
  console.log(
    `call ${round}: ${token.fromCache ? "cache" : "endpoint"} in ${ms} ms, expires ${token.expiresOn.toISOString()}`,
  );
}
console.log(`endpoint requests: ${requests}`);
await server.shutdown();
