/**
 * `deno task demo`: the whole module on any machine. Starts the emulator of every managed
 * identity source on loopback (in this process), then for each source acquires a token for
 * the system-assigned identity and a user-assigned one where the source allows it, calls again
 * to show the cache, and prints a table. Also runs with `bun examples/demo.ts` and
 * `node examples/demo.ts`.
 */

import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../mod.ts";
import { checkWritable } from "../src/cli/writable.ts";
import { ALL_SOURCES, readClaims, serve } from "../src/emulator/mod.ts";

const ARC_TOKENS = "/var/opt/azcmagent/tokens";

// A real client reads Arc keys only from the agent's directory, so Azure Arc is shown only where
// that directory exists and this process can write its key files there; the demo never creates
// it. The check writes and removes a probe file, and never throws.
const arc = await checkWritable(ARC_TOKENS);
const sources = ALL_SOURCES.filter((source) => source !== "AzureArc" || arc.writable);
const running = await serve({ sources, arcKeyDirectory: ARC_TOKENS });
const user = running.emulator.identities[0]!;

interface Row {
  source: string;
  identity: string;
  request: string;
  expires: string;
  cache: string;
}
const rows: Row[] = [];
const ms = (start: number) => `${(performance.now() - start).toFixed(2)} ms`;

for (const source of ALL_SOURCES) {
  if (!running.env[source]) {
    rows.push({
      source,
      identity: "-",
      request: `skipped: a client accepts Arc keys only from ${ARC_TOKENS}, and ${
        arc.writable ? "the emulator did not serve it" : arc.reason
      }`,
      expires: "",
      cache: "",
    });
    continue;
  }
  for (
    const [label, identity] of [["system-assigned", {}], ["user-assigned (client ID)", {
      clientId: user.clientId,
    }]] as const
  ) {
    const started = performance.now();
    try {
      const client = new ManagedIdentityClient({ env: running.env[source], cache: new TokenCache(), ...identity });
      const first = await client.acquireToken("https://vault.azure.net");
      const request = ms(started);
      const again = performance.now();
      const second = await client.acquireToken("https://vault.azure.net");
      const claims = readClaims(first.accessToken);
      rows.push({
        source,
        identity: `${label}${claims?.appid ? ` appid ${String(claims.appid).slice(0, 8)}` : ""}`,
        request,
        expires: first.expiresOn.toISOString().replace("T", " ").slice(0, 19),
        cache: second.fromCache ? `hit in ${ms(again)}` : "miss",
      });
    } catch (error) {
      // A refusal names its reason after the source: "Cannot use ... with "X": <reason>".
      const reason = error instanceof ManagedIdentityError
        ? `${error.code}, ${error.message.split(`"${source}": `).pop()}`
        : String(error);
      rows.push({ source, identity: label, request: `refused: ${reason}`, expires: "", cache: "" });
    }
  }
}
const requests = running.emulator.requests.length;
await running.close();

const columns: (keyof Row)[] = ["source", "identity", "request", "expires", "cache"];
const width = (key: keyof Row) => Math.max(key.length, ...rows.filter((r) => r.expires).map((r) => r[key].length));
const line = (row: Row) =>
  row.expires
    ? columns.map((key) => row[key].padEnd(width(key))).join("  ")
    : `${row.source.padEnd(width("source"))}  ${row.identity.padEnd(width("identity"))}  ${row.request}`;
console.log("azmi demo: the client against a local emulator of every managed identity source\n");
console.log(columns.map((key) => key.padEnd(width(key))).join("  "));
for (const row of rows) console.log(line(row));
console.log(`\n${requests} endpoint requests in all: each second call came from the cache.`);
console.log(`Sources served: ${sources.join(", ")} (Service Fabric over HTTPS, pinned to ${running.thumbprint}).`);
