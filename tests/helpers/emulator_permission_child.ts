/**
 * Run by tests/emulator_permissions_test.ts in a Deno process given few permissions: uses the
 * emulator as docs/permissions.md shows, and lets a refusal go uncaught, so that the test sees what a
 * user sees. Never run as a test file itself.
 *
 *   deno run --no-prompt --quiet [flags] tests/helpers/emulator_permission_child.ts '{"mode":"serve-wi","dir":"/tmp/x"}'
 *
 * Modes: `serve-wi` (workload identity's endpoint, its token file in `dir` or the temporary
 * directory; prints "served WorkloadIdentity"), `serve-app-service`, and `arc-handler` (Azure
 * Arc's handler, no sockets, key files in `dir`; prints the challenge's status and body and the
 * description of the error a client gets, as JSON).
 */

import { ManagedIdentityError } from "../../mod.ts";
import { createEmulator, serve } from "../../src/emulator/mod.ts";
import { testClient } from "./fake.ts";

const { Deno } = globalThis as unknown as { Deno: { args: string[] } };
const plan = JSON.parse(Deno.args[0]!) as { mode: string; dir?: string };

if (plan.mode === "serve-wi") {
  const running = await serve({
    sources: ["WorkloadIdentity"],
    ...(plan.dir ? { federatedTokenDirectory: plan.dir } : {}),
  });
  console.log("served WorkloadIdentity");
  await running.close();
} else if (plan.mode === "serve-app-service") {
  const running = await serve({ sources: ["AppService"] });
  await running.close();
} else if (plan.mode === "arc-handler") {
  const emulator = createEmulator({ arcKeyDirectory: plan.dir! });
  const handler = emulator.handler("AzureArc");
  const url = "http://127.0.0.1:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource=x";
  const answer = await handler(new Request(url, { headers: { metadata: "true" } }));
  const body = await answer.text();
  const client = testClient(
    {
      env: { IDENTITY_ENDPOINT: url.split("?")[0]!, IMDS_ENDPOINT: "http://127.0.0.1:40342" },
      fetch: handler,
    },
    { arcTokenDirectory: plan.dir! },
  );
  const message = await client.acquireToken("https://vault.azure.net").then(
    () => "a token",
    (error: unknown) => error instanceof ManagedIdentityError ? error.errorDescription ?? error.message : String(error),
  );
  console.log(JSON.stringify({ status: answer.status, body, client: message }));
}
