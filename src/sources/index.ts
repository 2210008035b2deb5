/**
 * The source table: one definition per detected source.
 * @module
 */

import type { Source } from "../types.ts";
import { appService } from "./app_service.ts";
import { azureArc } from "./azure_arc.ts";
import { azureMl } from "./azure_ml.ts";
import { cloudShell } from "./cloud_shell.ts";
import { imds } from "./imds.ts";
import { serviceFabric } from "./service_fabric.ts";
import type { SourceDefinition } from "./source.ts";
import { workloadIdentity } from "./workload_identity.ts";

/** Every source's definition, by name. */
export const SOURCES: Readonly<Record<Source, SourceDefinition>> = {
  WorkloadIdentity: workloadIdentity,
  DefaultToIMDS: imds,
  AppService: appService,
  CloudShell: cloudShell,
  AzureML: azureMl,
  AzureArc: azureArc,
  ServiceFabric: serviceFabric,
};
