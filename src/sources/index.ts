/**
 * The source table: one definition per detected source.
 * @module
 */

import { ManagedIdentityError } from "../errors.ts";
import type { Source } from "../types.ts";
import { appService } from "./app_service.ts";
import { azureMl } from "./azure_ml.ts";
import { cloudShell } from "./cloud_shell.ts";
import { imds } from "./imds.ts";
import type { SourceDefinition } from "./source.ts";

function notYet(name: Source): SourceDefinition {
  return {
    name,
    retry: "standard",
    identities: { parameters: { clientId: "client_id", objectId: "object_id", resourceId: "msi_res_id" } },
    buildRequest() {
      throw new ManagedIdentityError(
        "invalid_configuration",
        `Cannot acquire tokens from "${name}" yet: this version does not support it`,
        {
          source: name,
        },
      );
    },
  };
}

/** Every source's definition, by name. */
export const SOURCES: Readonly<Record<Source, SourceDefinition>> = {
  DefaultToIMDS: imds,
  AppService: appService,
  CloudShell: cloudShell,
  AzureML: azureMl,
  AzureArc: notYet("AzureArc"),
  ServiceFabric: notYet("ServiceFabric"),
};
