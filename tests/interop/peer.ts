/**
 * Child process of `deno task interop` (tests/interop/run.ts): one reference client gets one
 * token, the way an application would, and prints it for the runner to check.
 *
 *   <node|bun|deno run ...> tests/interop/peer.ts <identity|msal> <resource>
 *
 * `identity` is `@azure/identity`'s `ManagedIdentityCredential`, `msal` is msal-node's
 * `ManagedIdentityApplication`, both system-assigned with default options. Both read their
 * endpoint from the process environment, which is why each runs in a child of its own: the
 * runner gives it one emulated source's variables (and the development CA through
 * `NODE_EXTRA_CA_CERTS` or `DENO_CERT`), never its own environment.
 */

import type * as Identity from "npm:@azure/identity@4.14";
import type * as Msal from "npm:@azure/msal-node@7.2";
import process from "node:process";
import { describeError, loadPackage, report } from "./packages.ts";

const [peer, resource] = process.argv.slice(2);
if ((peer !== "identity" && peer !== "msal") || !resource) {
  console.error("Usage: peer.ts <identity|msal> <resource>");
  process.exit(2);
}

try {
  let token: string;
  let expiresOn: number;
  if (peer === "identity") {
    const { ManagedIdentityCredential } = await loadPackage<typeof Identity>("@azure/identity");
    const result = await new ManagedIdentityCredential().getToken(`${resource}/.default`);
    token = result.token;
    expiresOn = result.expiresOnTimestamp;
  } else {
    const { ManagedIdentityApplication } = await loadPackage<typeof Msal>("@azure/msal-node");
    const result = await new ManagedIdentityApplication({}).acquireToken({ resource });
    token = result.accessToken;
    expiresOn = result.expiresOn?.getTime() ?? Number.NaN;
  }
  await report({ ok: true, token, expiresOn });
} catch (error) {
  await report({ ok: false, error: describeError(error) });
}
