/**
 * `deno task interop`: the emulator and ManagedIdentityClient against the real Azure SDK and
 * Azurite, on Node 24, Bun 1 and Deno 2, on loopback only (127.0.0.1). Not part of
 * `deno task test`: it installs npm packages and starts about fifty processes.
 *
 * 1. Reference clients against the emulator. For every source `serve()` emulates,
 *    `@azure/identity`'s `ManagedIdentityCredential` and msal-node's `ManagedIdentityApplication`
 *    each get a token in a child process (peer.ts) whose environment is that source's variables
 *    (`env[source]`), on each runtime; the token must be the emulator's: its RS256 signature
 *    verifies with the emulator's keys, its issuer is the emulator's, its `aud` the resource, its
 *    `appid` the identity of that emulator instance, and the emulator's log shows the request
 *    (for Azure Arc, the 401 challenge and then the token). Plus one negative control per
 *    runtime: without the development CA, Service Fabric's TLS is refused (so TLS is verified).
 * 2. `@azure/storage-blob` with our client as its credential against Azurite (`--oauth basic`,
 *    HTTPS): a container, a blob uploaded, downloaded and compared; a token for another audience
 *    refused (storage.ts).
 * 3. `@azure/keyvault-secrets` with our client against a local vault: the bearer challenge, then
 *    a CAE claims challenge, after which the client must come back with a new token obtained
 *    with those claims, which the emulator's Entra endpoint must have received (key_vault.ts,
 *    local_servers.ts).
 *
 * Prints a line per case, a table of the reference clients per source and runtime, and
 * "N passed, M failed"; exits 1 on any failure (or when no case ran). `deno task interop
 * <word>...` runs only the cases whose name has words beginning with each (`deno task interop
 * bun msal`, `deno task interop deno storage`).
 *
 * What it needs and what it leaves:
 * - npm packages (packages.ts) installed with npm into `.runtimes/interop/` (gitignored; or
 *   `AZMI_INTEROP_DIR`), once; Deno's cache filled with the same versions before any child runs.
 *   Node 24 and Bun 1 from PATH, else installed into `.runtimes/` as `deno task test` does.
 * - Children get a fresh environment (PATH, HOME, DENO_DIR and what the case gives), never this
 *   process's, and `AZURE_POD_IDENTITY_AUTHORITY_HOST` pointing at a closed loopback port, so a
 *   client that falls back to IMDS reaches nothing rather than 169.254.169.254 (msal-node
 *   does, given only workload identity's variables). Deno children run with
 *   `--allow-net=127.0.0.1 --cached-only`. Azurite runs with `--disableTelemetry`.
 * - Azure Arc: both reference clients accept a challenge's key file only at
 *   `/var/opt/azcmagent/tokens/<name>.key` on Linux (msal-node's AzureArc.ts, which
 *   `@azure/identity` 4.14 delegates every source but AKS workload identity to; see
 *   ARC_KEY_DIRECTORY in setup.ts). The runner creates that directory only when it does not exist
 *   (needs root, as CI has) and removes what it created at the end, also on Ctrl+C; where it
 *   cannot, the Azure Arc cases are skipped, saying why.
 * - Every child, server and Azurite has a deadline; the whole run stops after 15 minutes.
 *
 * This file builds the list of cases, picks them by the words given, runs them and reports.
 * The rest: setup.ts (cleanup and deadline, commands, npm packages, Arc's key directory),
 * certificates.ts, children.ts (a child process on a runtime) and cases.ts (what each case does).
 */

import type { Source } from "../../src/emulator/mod.ts";
import { locate } from "../helpers/runtimes.ts";
import { closedPort } from "../helpers/sockets.ts";
import {
  type Case,
  gatherFacts,
  keyVaultCase,
  type Peer,
  peerCase,
  peerDiagnosis,
  relayCase,
  relayFailureCase,
  startAzurite,
  storageCase,
  trustInChecks,
  untrustedCase,
} from "./cases.ts";
import { certificates } from "./certificates.ts";
import { prepareChildren, type Runtime } from "./children.ts";
import { PACKAGES } from "./packages.ts";
import {
  arcKeyDirectory,
  cleanup,
  cleanups,
  guardRun,
  here,
  installPackages,
  run,
  seconds,
  versionOf,
} from "./setup.ts";
import { markdownTable } from "../helpers/table.ts";

const RUNTIMES: readonly Runtime[] = ["node", "bun", "deno"];
const PEERS: Readonly<Record<Peer, string>> = {
  identity: `@azure/identity ${PACKAGES["@azure/identity"]}`,
  msal: `msal-node ${PACKAGES["@azure/msal-node"]}`,
};
/** The sources of the reference-client matrix, in the order of its printed table. */
const PEER_SOURCES: readonly Source[] = [
  "DefaultToIMDS",
  "AppService",
  "AzureML",
  "CloudShell",
  "AzureArc",
  "ServiceFabric",
  "WorkloadIdentity",
];
/** What a reference client does not do, and so is not asked. */
const NOT_APPLICABLE: Partial<Record<`${Peer} ${Source}`, string>> = {
  "msal WorkloadIdentity": "msal-node's ManagedIdentityApplication has no workload identity source (given only its " +
    "variables, it falls back to IMDS); @azure/identity's ManagedIdentityCredential does it with WorkloadIdentityCredential",
};

// ---------------------------------------------------------------------------------------------
// The cases.

/** Every case, in the order they start: per runtime, the reference-client matrix, the relay, TLS, storage, key vault. */
function cases(arc: { path?: string; skip?: string }, azurite: () => Promise<string>): Case[] {
  const list: Case[] = [];
  for (const runtime of RUNTIMES) {
    for (const source of PEER_SOURCES) {
      for (const peer of ["identity", "msal"] as const) {
        if (NOT_APPLICABLE[`${peer} ${source}`]) continue;
        list.push({
          name: `${runtime} ${PEERS[peer]} ${source}: a token from the emulator`,
          cell: { source, column: `${runtime} ${peer}` },
          ...(source === "AzureArc" ? { skip: () => arc.skip } : {}),
          run: () => peerCase(runtime, peer, source, arc.path),
          diagnose: peerDiagnosis(runtime, peer, source),
        });
      }
    }
    for (const peer of ["identity", "msal"] as const) {
      for (const source of ["AppService", "DefaultToIMDS"] as const) {
        list.push({
          name: `${runtime} ${PEERS[peer]} relay ${source}: the origin's token`,
          run: () => relayCase(runtime, peer, source),
        });
        list.push({
          name: `${runtime} ${PEERS[peer]} relay ${source} signed out: the message, not retried`,
          run: () => relayFailureCase(runtime, peer, source, "signed_out"),
        });
      }
      list.push({
        name: `${runtime} ${PEERS[peer]} relay AppService failed: the message, retried 3 times`,
        run: () => relayFailureCase(runtime, peer, "AppService", "failed"),
      });
    }
    list.push({
      name: `${runtime} ${PEERS.msal} ServiceFabric: without the development CA, the certificate is refused`,
      run: () => untrustedCase(runtime),
    });
    list.push({
      name: `${runtime} @azure/storage-blob ${
        PACKAGES["@azure/storage-blob"]
      } + azmi against Azurite ${PACKAGES.azurite} (OAuth, HTTPS): container, upload, download; another audience refused`,
      run: async () => storageCase(runtime, await azurite()),
    });
    list.push({
      name: `${runtime} @azure/keyvault-secrets ${
        PACKAGES["@azure/keyvault-secrets"]
      } + azmi against a local vault: bearer challenge, CAE claims challenge`,
      run: () => keyVaultCase(runtime),
    });
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Main.

interface Outcome {
  readonly test: Case;
  readonly status: "ok" | "FAIL" | "skip";
  readonly ms: number;
  readonly note: string;
}

async function main(filters: string[]): Promise<number> {
  const started = performance.now();
  const workspace = await Deno.makeTempDir({ prefix: "azmi-interop-" });
  cleanups.push(() => Deno.remove(workspace, { recursive: true }));

  const setup = performance.now();
  const [node, bun] = [await locate("node", 24), await locate("bun", 1)];
  const versions = await installPackages();
  // Deno's cache, filled now so that Deno children can run with --cached-only.
  await run(Deno.execPath(), ["cache", "--quiet", "peer.ts", "storage.ts", "key_vault.ts"], 600_000, here);
  const certs = await certificates(workspace);
  prepareChildren({ tools: { node, bun, deno: Deno.execPath() }, certs, guardPort: await closedPort() });
  trustInChecks(certs.caPems);
  console.log(
    `# node ${(await versionOf(node))?.replace(/^v/, "")}, bun ${await versionOf(bun)}, deno ${Deno.version.deno}; ${
      Object.entries(versions).map(([name, version]) => `${name} ${version}`).join(", ")
    }`,
  );
  console.log(`# TLS (Service Fabric's emulator, Azurite, the local vault): ${certs.description}`);

  // Each word must begin a word of the name: "node" picks Node's cases, not msal-node's.
  const wanted = (test: Case) => {
    const words = test.name.toLowerCase().split(/[\s:/@+(),;]+/);
    return filters.every((filter) => words.some((word) => word.startsWith(filter.toLowerCase())));
  };
  const arc: { path?: string; skip?: string } = {};
  let azuriteStart: Promise<string> | undefined;
  let azuriteMs = 0;
  const azurite = () =>
    azuriteStart ??= (async () => {
      const at = performance.now();
      const url = await startAzurite(workspace);
      azuriteMs = performance.now() - at;
      return url;
    })();
  const selected = cases(arc, azurite).filter(wanted);
  if (selected.some((test) => test.cell?.source === "AzureArc")) Object.assign(arc, await arcKeyDirectory());
  await gatherFacts(arc.path);
  const setupMs = performance.now() - setup;
  console.log(`# setup ${seconds(setupMs)}; ${selected.length} cases\n`);

  // The cases, a few at a time (each is one child process and its own emulator).
  const outcomes: Outcome[] = [];
  const queue = [...selected];
  const width = Math.max(2, Math.min(6, navigator.hardwareConcurrency * 2));
  const casesStarted = performance.now();
  await Promise.all(Array.from({ length: width }, async () => {
    for (let test = queue.shift(); test; test = queue.shift()) {
      const at = performance.now();
      let outcome: Outcome;
      const skip = test.skip?.();
      if (skip) {
        outcome = { test, status: "skip", ms: 0, note: skip };
      } else {
        try {
          outcome = { test, status: "ok", ms: 0, note: await test.run() };
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          const hint = test.diagnose?.(failure);
          outcome = {
            test,
            status: "FAIL",
            ms: 0,
            note: `${failure.message}${hint ? `\n  known cause: ${hint}` : ""}`,
          };
        }
      }
      outcome = { ...outcome, ms: performance.now() - at };
      outcomes.push(outcome);
      console.log(
        `${outcome.status.padEnd(4)} ${test.name} (${seconds(outcome.ms)})\n  ${outcome.note.replace(/\n/g, "\n  ")}`,
      );
    }
  }));
  const casesMs = performance.now() - casesStarted;

  // The reference clients per source and runtime.
  const matrix = outcomes.filter((o) => o.test.cell);
  if (matrix.length > 0) {
    const columns = RUNTIMES.flatMap((runtime) => (["identity", "msal"] as const).map((peer) => `${runtime} ${peer}`));
    const rows = [["source", ...columns]];
    for (const source of PEER_SOURCES.filter((s) => matrix.some((o) => o.test.cell!.source === s))) {
      rows.push([
        source,
        ...columns.map((column) => {
          const found = matrix.find((o) => o.test.cell!.source === source && o.test.cell!.column === column);
          if (found) return found.status.toLowerCase();
          return NOT_APPLICABLE[`${column.split(" ")[1] as Peer} ${source}`] ? "n/a" : "";
        }),
      ]);
    }
    console.log(`\n${PEERS.identity} (identity) and ${PEERS.msal} (msal) against the emulator:`);
    console.log(markdownTable(rows));
    for (const [key, why] of Object.entries(NOT_APPLICABLE)) {
      if (rows.some((row) => row[0] === key.split(" ")[1])) console.log(`n/a (${key}): ${why}`);
    }
  }

  const failed = outcomes.filter((o) => o.status === "FAIL");
  const skipped = outcomes.filter((o) => o.status === "skip");
  if (failed.length > 0) {
    console.log(`\nFailed:`);
    for (const o of failed) console.log(`- ${o.test.name}\n  ${o.note.replace(/\n/g, "\n  ")}`);
  }
  console.log(
    `\n# setup ${seconds(setupMs)} (Azurite start ${seconds(azuriteMs)}), cases ${seconds(casesMs)}, total ${
      seconds(performance.now() - started)
    }`,
  );
  const passed = outcomes.filter((o) => o.status === "ok").length;
  await cleanup(); // before the last line, which is the summary
  console.log(
    `${passed} passed, ${failed.length} failed${
      skipped.length ? ` (${skipped.length} skipped: ${[...new Set(skipped.map((o) => o.note))].join("; ")})` : ""
    }`,
  );
  return failed.length === 0 && passed > 0 ? 0 : 1;
}

guardRun();
let code = 1;
try {
  code = await main(Deno.args);
} catch (error) {
  console.error(`interop: ${error instanceof Error ? error.stack ?? error.message : error}`);
} finally {
  await cleanup();
}
Deno.exit(code);
