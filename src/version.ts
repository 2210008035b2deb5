/** The package version, sent to IMDS as `x-client-Ver`. Kept equal to `deno.json` by a test. */
export const VERSION = "0.1.0";

/** The SKU name sent to IMDS as `x-client-SKU`. */
export const SKU = "azmi.js";
