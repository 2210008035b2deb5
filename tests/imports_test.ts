/**
 * Dependencies point one way: no import cycle among the module's files (`mod.ts` and `src/`),
 * static or lazy, type-only imports included. Shared types live in the lowest file that needs
 * them, and an entry file (`mod.ts`, `src/cli.ts`, `src/emulator/mod.ts`) only imports.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every .ts file under `dir`, relative to the repository's root. */
function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? tsFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
      ? [normalize(join(dir, entry.name))]
      : []
  );
}

// `import ... from "x"`, `export ... from "x"`, `import "x"`, `import("x")`, across lines.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)"(\.{1,2}\/[^"]+\.ts)"/g;

/** The module's import graph: each file to the files it imports, relative to the root. */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of ["mod.ts", ...tsFiles("src")]) {
    // Comments hold examples that import the published package, not the files: drop them.
    const code = readFileSync(join(ROOT, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    const targets = [...code.matchAll(SPECIFIER)].map((match) => relative(ROOT, join(ROOT, dirname(file), match[1]!)));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** The cycles of `graph`: its strongly connected components of more than one file, or a file importing itself. */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string) => {
    index.set(file, next);
    low.set(file, next);
    next++;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || graph.get(file)!.includes(file)) found.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return found;
}

describe("the module's imports", () => {
  test("the graph is read: mod.ts reaches the client, the CLI its commands, every import resolves to a file", () => {
    const graph = importGraph();
    assert.ok(graph.get("mod.ts")!.includes(normalize("src/client.ts")));
    assert.ok(graph.get(normalize("src/cli.ts"))!.includes(normalize("src/cli/token.ts")));
    for (const [file, targets] of graph) {
      for (const target of targets) assert.ok(graph.has(target), `${file} imports ${target}, which is not a file`);
    }
  });

  test("finds a cycle when there is one (the check can fail)", () => {
    const graph = new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]], ["d.ts", ["a.ts"]]]);
    assert.deepEqual(cycles(graph), [["a.ts", "b.ts", "c.ts"]]);
    assert.deepEqual(cycles(new Map([["a.ts", ["a.ts"]]])), [["a.ts"]]);
  });

  test("has no import cycle", () => {
    assert.deepEqual(cycles(importGraph()), []);
  });
});
