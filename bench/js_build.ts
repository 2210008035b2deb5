/**
 * The JavaScript that JSR's npm compatibility layer serves for this package, for timing an
 * import on Node and Bun without timing their TypeScript stripping: every local module that an
 * entry reaches, transpiled on its own to a `.js` file at the same path (not bundled: one file
 * per module, as JSR's npm tarballs hold them), relative `.ts` specifiers rewritten to `.js`, and
 * a package.json of `"type": "module"`, as JSR writes it.
 *
 * The transpiler is `deno bundle --inline-imports=false` (esbuild, one output file per input,
 * types removed). JSR transpiles with its own (swc-based) emitter: the output differs in
 * whitespace and helper names, not in what a runtime has to load.
 *
 *   deno run -A bench/js_build.ts OUT_DIR [ENTRY]   (ENTRY defaults to mod.ts)
 */

const root = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** The local modules (absolute paths) that `entry` reaches, statically or through `import()`. */
async function localModules(entry: string): Promise<string[]> {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!info.success) throw new Error(`deno info ${entry} failed: ${new TextDecoder().decode(info.stderr)}`);
  const { modules } = JSON.parse(new TextDecoder().decode(info.stdout)) as { modules: { specifier: string }[] };
  return modules
    .map(({ specifier }) => specifier)
    .filter((specifier) => specifier.startsWith(`file://${root}`))
    .map((specifier) => decodeURIComponent(new URL(specifier).pathname));
}

/** `import ... from "./x.ts"`, `export ... from "../y.ts"`, `import("./z.ts")`: the `.ts` of a relative specifier. */
const RELATIVE_TS = /(\b(?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']+)\.ts\2/g;

/**
 * Writes the JavaScript build of `entry` (a path in this repository, `mod.ts` by default) to
 * `outDir`, replacing what was there, and returns the path of the entry's `.js` file.
 */
export async function buildJs(outDir: string, entry = `${root}mod.ts`): Promise<string> {
  const modules = await localModules(entry);
  // The repository's root is a module's folder (mod.ts is always among them), so each file
  // keeps its path relative to the root.
  if (!modules.includes(`${root}mod.ts`)) modules.push(`${root}mod.ts`);
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  const transpile = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "--inline-imports=false", "--platform", "deno", "--outdir", outDir, ...modules],
    cwd: root,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!transpile.success) throw new Error(`deno bundle failed: ${new TextDecoder().decode(transpile.stderr)}`);
  for (const module of modules) {
    const file = `${outDir}/${module.slice(root.length).replace(/\.ts$/, ".js")}`;
    const text = await Deno.readTextFile(file);
    await Deno.writeTextFile(file, text.replace(RELATIVE_TS, "$1$2$3.js$2"));
  }
  await Deno.writeTextFile(`${outDir}/package.json`, `${JSON.stringify({ type: "module" })}\n`);
  const built = `${outDir}/${entry.slice(root.length).replace(/\.ts$/, ".js")}`;
  await Deno.stat(built);
  return built;
}

if (import.meta.main) {
  const [outDir, entry] = Deno.args;
  if (!outDir) throw new Error("Usage: deno run -A bench/js_build.ts OUT_DIR [ENTRY]");
  const absolute = (path: string) => path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  console.log(await buildJs(absolute(outDir), entry ? absolute(entry) : undefined));
}
