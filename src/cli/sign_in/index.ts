/**
 * The token origins of `azmi emulate --tokens-from az|azd|sp`: where a relay's real tokens come
 * from (src/emulator/origin.ts). Spawning a tool is the command line's business, so they live
 * here and not in the module (docs/sign_in.md).
 * @module
 */

import type { TokenOrigin } from "../../emulator/origin.ts";
import type { FetchLike } from "../../types.ts";
import { azOrigin } from "./az.ts";
import { azdOrigin } from "./azd.ts";
import { servicePrincipalOrigin } from "./service_principal.ts";

export { OriginError } from "../../emulator/origin.ts";
export type { OriginFailure, OriginToken, TokenOrigin } from "../../emulator/origin.ts";

/** The origins by the name `--tokens-from` gives them. */
export type OriginKind = "az" | "azd" | "sp";

/** What every origin is made from. */
export interface TokenOriginOptions {
  /** The environment: tools are found on its `PATH` and run with it; the service principal's variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The tenant the tokens must come from (`--tenant`, `--tenant-id`, or over `AZURE_TENANT_ID`). */
  readonly tenant?: string;
  /** Each tool run's timeout (10 s by default), or each request's to Entra (15 s by default). */
  readonly timeoutMs?: number;
  /** The `fetch` the service principal's requests to Entra use. */
  readonly fetch?: FetchLike;
}

/**
 * The origin of `kind`. Throws an {@linkcode OriginError} `missing` at once for `sp` without its
 * variables; a missing tool is found out on the first token.
 */
export function tokenOrigin(kind: OriginKind, options: TokenOriginOptions): TokenOrigin {
  switch (kind) {
    case "az":
      return azOrigin(options);
    case "azd":
      return azdOrigin(options);
    case "sp":
      return servicePrincipalOrigin(options);
  }
}
