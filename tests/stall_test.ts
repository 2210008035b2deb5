/**
 * The never-answering fakes other tests rely on (tests/helpers/stall.ts): a stall holds the event
 * loop as a real pending request does; one a signal ends lets go of its hold and rejects with the
 * signal's reason, as `fetch` does; one without a signal holds on until releaseStalls().
 */

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { state } from "./helpers/checks.ts";
import { neverAnswers, releaseStalls, stall, stallsHeld } from "./helpers/stall.ts";

after(releaseStalls);

const URL_TOKEN = "http://127.0.0.1:9/msi/token";

describe("stall() and neverAnswers", () => {
  test("neverAnswers holds the loop while pending; aborted, it lets go and rejects with the signal's reason", async () => {
    const before = stallsHeld();
    const controller = new AbortController();
    const answer = neverAnswers(new Request(URL_TOKEN, { signal: controller.signal }));
    assert.equal(stallsHeld(), before + 1, "a pending request holds the event loop");
    assert.equal(await state(answer), "pending");
    const reason = new Error("the caller gave up");
    controller.abort(reason);
    await assert.rejects(answer, (error) => error === reason);
    assert.equal(stallsHeld(), before, "the aborted request let go of its hold");
  });

  test("neverAnswers on a request already aborted rejects with the signal's reason and holds nothing", async () => {
    const before = stallsHeld();
    const reason = new Error("aborted before it was sent");
    const answer = neverAnswers(new Request(URL_TOKEN, { signal: AbortSignal.abort(reason) }));
    assert.equal(stallsHeld(), before);
    await assert.rejects(answer, (error) => error === reason);
    assert.equal(stallsHeld(), before);
  });

  test("releaseStalls() lets go of a stall no signal can end, which stays pending", async () => {
    const pending = stall();
    assert.ok(stallsHeld() >= 1, "the signal-less stall holds the event loop");
    releaseStalls();
    assert.equal(stallsHeld(), 0);
    assert.equal(await state(pending), "pending");
  });
});
