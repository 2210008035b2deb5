/**
 * Prints how long one `import()` of a client module takes in this (fresh) Deno process, in ms:
 * azmi's TypeScript source, the peers through Deno's npm layer. bench/import_times.ts runs it,
 * and times Node and Bun with a script of its own.
 *
 *   deno run -A bench/import_time.ts azmi|msal|identity
 */

const SPECIFIERS: Record<string, string> = {
  azmi: "../mod.ts",
  msal: "npm:@azure/msal-node@7.2",
  identity: "npm:@azure/identity@4.14",
};
const specifier = SPECIFIERS[Deno.args[0] ?? ""];
if (!specifier) throw new Error(`Usage: import_time.ts ${Object.keys(SPECIFIERS).join("|")}`);
const start = performance.now();
await import(specifier);
console.log((performance.now() - start).toFixed(2));
