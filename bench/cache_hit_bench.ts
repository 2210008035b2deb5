/**
 * `deno bench` view of the cache hit, side by side (run by bench/report.ts, which points the
 * environment at its local endpoint): the time of an `acquireToken` that the cache answers.
 */

import { PEERS } from "./peers.ts";

if (Deno.env.get("IDENTITY_ENDPOINT")) {
  for (const [index, peer] of PEERS.entries()) {
    const acquire = peer.create();
    const resource = `https://bench-${index}.example`;
    Deno.bench({
      name: peer.name,
      group: "cache hit",
      baseline: index === 0,
      async fn(b) {
        await acquire(resource);
        b.start();
        for (let i = 0; i < 100; i++) await acquire(resource);
        b.end();
      },
    });
  }
}
