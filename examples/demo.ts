/**
 * `deno task demo`: the whole module on any machine. Starts the emulator of every managed
 * identity source on loopback (in this process), then for each source acquires a token for
 * the system-assigned identity and a user-assigned one where the source allows it (for
 * workload identity, which has no system-assigned identity: the default client ID and another
 * one), calls again to show the cache, and prints a table. Also runs with
 * `bun examples/demo.ts` and `node examples/demo.ts`.
 */

import { tmpdir } from "node:os";
import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../mod.ts";
import type { ManagedIdentityClientOptions, Source } from "../mod.ts";
import { checkWritable, type WriteCheck } from "../src/cli/writable.ts";
import { ALL_SOURCES, readClaims, serve } from "../src/emulator/mod.ts";

const ARC_TOKENS = "/var/opt/azcmagent/tokens";

// Workload identity's federated token file goes in a private directory the emulator makes in
// the temporary directory. Under `deno task demo`, which may not read TMPDIR, that is /tmp, the
// one the task's --allow-read and --allow-write name.
const TEMPORARY = (() => {
  try {
    return tmpdir();
  } catch {
    return "/tmp";
  }
})();

// A real client reads Arc keys only from the agent's directory, so Azure Arc is shown only where
// that directory exists and this process can write its key files there; the demo never creates
// it. The checks write and remove a probe file, and never throw.
const [arc, federated] = await Promise.all([checkWritable(ARC_TOKENS), checkWritable(TEMPORARY)]);
const skipped: Partial<Record<Source, WriteCheck>> = {};
if (!arc.writable) skipped.AzureArc = arc;
if (!federated.writable) skipped.WorkloadIdentity = federated;
const sources = ALL_SOURCES.filter((source) => !skipped[source]);
const running = await serve({ sources, arcKeyDirectory: ARC_TOKENS, federatedTokenDirectory: TEMPORARY });
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

/** The identities to try per source: a label, and the client options that name it (none: n/a). */
function identitiesOf(
  source: Source,
): [string, Pick<ManagedIdentityClientOptions, "clientId" | "objectId"> | undefined][] {
  // Service Fabric names a user-assigned identity by object ID only (sent as principalId).
  const userAssigned: [string, { clientId: string } | { objectId: string }] = source === "ServiceFabric"
    ? ["user-assigned (object ID)", { objectId: user.objectId }]
    : ["user-assigned (client ID)", { clientId: user.clientId }];
  return source === "WorkloadIdentity"
    ? [["system-assigned", undefined], ["default (AZURE_CLIENT_ID)", {}], userAssigned]
    : [["system-assigned", {}], userAssigned];
}

for (const source of ALL_SOURCES) {
  if (!running.env[source]) {
    const why = skipped[source];
    const reason = why && !why.writable ? why.reason : "the emulator did not serve it";
    rows.push({
      source,
      identity: "-",
      request: source === "AzureArc"
        ? `skipped: a client accepts Arc keys only from ${ARC_TOKENS}, and ${reason}`
        : `skipped: the federated token file cannot be written in ${TEMPORARY}: ${reason}`,
      expires: "",
      cache: "",
    });
    continue;
  }
  for (const [label, identity] of identitiesOf(source)) {
    if (!identity) {
      rows.push({
        source,
        identity: label,
        request: "n/a: a workload identity is always a client ID (AZURE_CLIENT_ID or clientId)",
        expires: "",
        cache: "",
      });
      continue;
    }
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
if (running.env.WorkloadIdentity) {
  console.log(
    "WorkloadIdentity exchanged a federated token file (removed now) at an emulated Microsoft Entra ID on loopback.",
  );
}
