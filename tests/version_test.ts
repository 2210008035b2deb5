import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { VERSION } from "../src/version.ts";

test("VERSION equals the version in deno.json", async () => {
  const text = await readFile(fileURLToPath(new URL("../deno.json", import.meta.url)), "utf8");
  const { version } = JSON.parse(text) as { version?: unknown };
  assert.equal(typeof version, "string");
  assert.equal(VERSION, version);
});

test("VERSION is a semantic version", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
});

test("CHANGELOG.md's newest version heading is the version in deno.json", async () => {
  const read = (name: string) => readFile(fileURLToPath(new URL(`../${name}`, import.meta.url)), "utf8");
  const { version } = JSON.parse(await read("deno.json")) as { version: string };
  const newest = /^## (\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\b/m.exec(await read("CHANGELOG.md"))?.[1];
  assert.equal(newest, version);
});
