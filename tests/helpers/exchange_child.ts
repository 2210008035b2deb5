/**
 * A child process for tests/emulator_robust_test.ts: listens on a loopback port that drops each
 * connection 200 ms after it opens, runs one exchange() whose pause step is far longer against
 * it, closes the server and prints the outcome as JSON. Once that line is out, nothing of
 * exchange() may keep the process alive.
 *
 * Usage: exchange_child.ts PAUSE_MS
 */

import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import process from "node:process";
import { exchange } from "./assault.ts";

const pauseMs = Number(process.argv.at(-1));
const server = createServer((socket) => void setTimeout(() => socket.destroy(), 200));
await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
const { port } = server.address() as AddressInfo;
const outcome = await exchange(port, [{ text: "POST /msi/token HTTP/1.1\r\n" }, { pauseMs }], pauseMs);
await new Promise((closed) => server.close(closed));
console.log(JSON.stringify(outcome));
