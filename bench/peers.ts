/**
 * The three clients under the same interface: `acquire(resource)` returns an access token.
 * All three read the App Service variables from the process environment, which the benchmark
 * runner sets for this child process only.
 */

import { ManagedIdentityClient, TokenCache } from "../mod.ts";
import { ManagedIdentityApplication } from "npm:@azure/msal-node@7.2";
import { ManagedIdentityCredential } from "npm:@azure/identity@4.14";

/** One client under test. */
export interface Peer {
  readonly name: string;
  /** A fresh client (its own cache), so cold calls are really cold. */
  create(): (resource: string) => Promise<string>;
}

/** azmi, msal-node and @azure/identity, in that order. */
export const PEERS: readonly Peer[] = [
  {
    name: "azmi",
    create() {
      const client = new ManagedIdentityClient({ cache: new TokenCache() });
      return async (resource) => (await client.acquireToken(resource)).accessToken;
    },
  },
  {
    name: "msal-node 7.2",
    create() {
      const app = new ManagedIdentityApplication({});
      return async (resource) => (await app.acquireToken({ resource })).accessToken;
    },
  },
  {
    name: "@azure/identity 4.14",
    create() {
      const credential = new ManagedIdentityCredential();
      return async (resource) => (await credential.getToken(`${resource}/.default`))!.token;
    },
  },
];
