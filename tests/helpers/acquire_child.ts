/**
 * A child process for tests/proxy_test.ts and tests/exit_test.ts: acquires one token from each
 * source it is given, one client each (its environment through the `env` option, so the process
 * environment holds only what the test put there, such as proxy variables), prints one JSON line
 * per source and then `done`, and returns from its top level with nothing else to do. What keeps
 * it alive after `done` is the client's.
 *
 * Usage: <runtime> acquire_child.ts '<JSON of Plan[]>'
 */

import { ManagedIdentityClient, ManagedIdentityError, TokenCache } from "../../mod.ts";
import { INTERNAL, type InternalOptions } from "../../src/internal.ts";
import { createEmulator } from "../../src/emulator/mod.ts";
import type { Source } from "../../mod.ts";

/** One token to acquire. */
export interface Plan {
  readonly source: string;
  readonly env: Record<string, string>;
  readonly resource: string;
  readonly internal?: InternalOptions;
  readonly timeoutMs?: number;
  /** Aborts the call this long after it starts. */
  readonly abortAfterMs?: number;
  /** `false` for a single attempt. */
  readonly retry?: false;
  /** Requests go to an emulator in this process (its handler as `fetch`) with this failure scenario. */
  readonly inProcess?: string;
}

/** What the child prints for each plan. */
export interface Outcome {
  readonly source: string;
  readonly detected: string;
  readonly token?: string;
  readonly code?: string;
  readonly message?: string;
}

const plans = JSON.parse((globalThis as { process: { argv: string[] } }).process.argv.at(-1)!) as Plan[];
for (const plan of plans) {
  let outcome: Outcome;
  let detected = "";
  try {
    const client = new ManagedIdentityClient(
      {
        env: plan.env,
        cache: new TokenCache(),
        ...(plan.timeoutMs ? { timeoutMs: plan.timeoutMs } : {}),
        ...(plan.retry === false ? { retry: false } : {}),
        ...(plan.inProcess === undefined
          ? {}
          : { fetch: createEmulator({ fail: plan.inProcess }).handler(plan.source as Source) }),
        [INTERNAL]: { platform: "linux", fileExists: () => false, ...plan.internal },
      } as ConstructorParameters<typeof ManagedIdentityClient>[0],
    );
    detected = client.source;
    const controller = new AbortController();
    const timer = plan.abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), plan.abortAfterMs);
    const { accessToken } = await client.acquireToken(plan.resource, { signal: controller.signal })
      .finally(() => clearTimeout(timer));
    outcome = { source: plan.source, detected, token: accessToken };
  } catch (error) {
    outcome = error instanceof ManagedIdentityError
      ? { source: plan.source, detected, code: error.code, message: error.message }
      : { source: plan.source, detected, code: "crash", message: String(error) };
  }
  console.log(JSON.stringify(outcome));
}
console.log("done");
