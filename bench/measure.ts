/**
 * Runs in a child process whose environment points at the benchmark endpoint (set by
 * bench/report.ts): measures, for each client, endpoint requests for N concurrent cold calls
 * and cache-hit latency. Prints one JSON line.
 */

import { PEERS } from "./peers.ts";

const origin = new URL(Deno.env.get("IDENTITY_ENDPOINT")!).origin;
const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();

async function requestsFor(resource: string): Promise<number> {
  return await (await fetch(`${origin}/__count?resource=${encodeURIComponent(resource)}`)).json();
}

/** Mean microseconds per call over about `ms` milliseconds; the median of 5 rounds. */
async function cacheHitMicros(acquire: (resource: string) => Promise<string>, resource: string, ms = 200) {
  await acquire(resource);
  for (let i = 0; i < 1000; i++) await acquire(resource);
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    let calls = 0;
    const start = performance.now();
    while (performance.now() - start < ms) {
      for (let i = 0; i < 100; i++) await acquire(resource);
      calls += 100;
    }
    rounds.push(((performance.now() - start) * 1000) / calls);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

export const COLD_COUNTS = [1, 10, 100, 1000] as const;

const results: Record<string, { cold: Record<number, number>; hitMicros: number; hitRequests: number }> = {};
for (const peer of PEERS) {
  const cold: Record<number, number> = {};
  for (const n of COLD_COUNTS) {
    const acquire = peer.create();
    const resource = `https://cold-${slug(peer.name)}-${n}.example`;
    const tokens = await Promise.all(Array.from({ length: n }, () => acquire(resource)));
    if (tokens.some((token) => typeof token !== "string" || token === "")) throw new Error(`${peer.name}: no token`);
    cold[n] = await requestsFor(resource);
  }
  const hitResource = `https://hit-${slug(peer.name)}.example`;
  const hitMicros = await cacheHitMicros(peer.create(), hitResource);
  results[peer.name] = { cold, hitMicros, hitRequests: await requestsFor(hitResource) };
}
console.log(JSON.stringify(results));
