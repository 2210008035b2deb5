/**
 * The few things only the host runtime can answer, kept at the edge: the platform name and
 * `node:` built-ins, loaded lazily on the one path that needs each. Deno, Bun and Node all
 * provide `process.getBuiltinModule`, which loads a built-in synchronously without a static
 * import, so the module graph stays Web-only.
 * @module
 */

interface ProcessView {
  platform?: string;
  getBuiltinModule?: (name: string) => unknown;
}

function processView(): ProcessView | undefined {
  return (globalThis as { process?: ProcessView }).process;
}

/** The platform name in Node's spelling (`linux`, `win32`, `darwin`, ...), or `unknown`. */
export function currentPlatform(): string {
  const fromProcess = processView()?.platform;
  if (fromProcess) return fromProcess;
  const os = (globalThis as { Deno?: { build?: { os?: string } } }).Deno?.build?.os;
  return os === "windows" ? "win32" : os ?? "unknown";
}

/** Loads a `node:` built-in synchronously, or throws when the runtime has none. */
export function loadBuiltin<T>(name: string): T {
  const load = processView()?.getBuiltinModule;
  const module = load ? load(name) : undefined;
  if (!module) throw new Error(`This runtime cannot load the built-in module "${name}"`);
  return module as T;
}

interface FsView {
  statSync(path: string, options: { throwIfNoEntry: false }): { isFile(): boolean } | undefined;
}

/** `true` when `path` names an existing regular file; any failure (permission included) is `false`. */
export function fileExists(path: string): boolean {
  try {
    return loadBuiltin<FsView>("node:fs").statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}
