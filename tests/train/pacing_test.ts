import assert from "node:assert/strict";
import {
  drained,
  emptyQueue,
  finished,
  LATE_WAIT_MS,
  PACING_MARGIN,
  settleTime,
  submitted,
} from "../../src/train/pacing.ts";

const margin = (stepMs: number) => PACING_MARGIN.share * stepMs + PACING_MARGIN.ms;

Deno.test("queued steps end one GPU step apart, a step submitted to an idle GPU from its submit", () => {
  const q = emptyQueue();
  q.stepMs = 100;
  submitted(q, 0);
  submitted(q, 5);
  submitted(q, 10);
  assert.deepEqual(q.ends, [100, 200, 300]);
  assert.equal(settleTime(q, "oldest"), 100 + margin(100));
  assert.equal(settleTime(q, "all"), 300 + margin(100));
  finished(q, { now: 100 + margin(100), waitedMs: 0.1 });
  finished(q, { now: 200 + margin(100), waitedMs: 0.1 });
  finished(q, { now: 300 + margin(100), waitedMs: 0.1 });
  submitted(q, 1000); // the GPU went idle: the next step starts at its submit
  assert.deepEqual(q.ends, [1100]);
});

Deno.test("waits that find their step done leave the model as it was: no drift by the margin", () => {
  const q = emptyQueue();
  q.stepMs = 100;
  for (let i = 0; i < 3; i++) submitted(q, i);
  for (let step = 0; step < 50; step++) {
    const wake = settleTime(q, "oldest");
    finished(q, { now: wake + 0.05, waitedMs: 0.05, gpuMs: 100 });
    submitted(q, wake + 0.1);
  }
  // 53 steps of 100 ms from time 0: the newest ends at 5300, not margin x 50 later.
  assert.equal(q.ends.at(-1), 5300);
});

Deno.test("a late wait moves the steps after it; GPU timestamps set the step time", () => {
  const q = emptyQueue();
  for (let i = 0; i < 3; i++) submitted(q, 0); // nothing measured yet: modeled to end at once
  assert.deepEqual(q.ends, [0, 0, 0]);
  finished(q, { now: 130, waitedMs: 129, gpuMs: 120 });
  assert.equal(q.stepMs, 120);
  assert.deepEqual(q.ends, [250, 370]);
  // A wait that took no longer than LATE_WAIT_MS found its step done: the model stands.
  finished(q, { now: 250 + margin(120), waitedMs: LATE_WAIT_MS, gpuMs: 120 });
  assert.deepEqual(q.ends, [370]);
});

Deno.test("without timestamps the step time is the spacing of completions seen with steps queued", () => {
  const q = emptyQueue();
  for (let i = 0; i < 3; i++) submitted(q, 0);
  finished(q, { now: 100, waitedMs: 100 });
  assert.equal(q.stepMs, 0); // one completion gives no spacing
  finished(q, { now: 200, waitedMs: 90 });
  assert.equal(q.stepMs, 100);
  finished(q, { now: 350, waitedMs: 140 }); // the queue is empty now: not a step's spacing
  assert.equal(q.stepMs, 100);
  assert.throws(() => finished(q, { now: 400, waitedMs: 0 }), /no step in flight/);
  assert.throws(() => settleTime(q, "all"), /no step in flight/);
});

Deno.test("after the queue drains, the idle time before the next completion is not taken for a step's", () => {
  const q = emptyQueue();
  for (let i = 0; i < 2; i++) submitted(q, 0);
  finished(q, { now: 100, waitedMs: 100 });
  finished(q, { now: 200, waitedMs: 90 });
  drained(q);
  // The host sits idle for a second, then queues three more steps.
  for (let i = 0; i < 3; i++) submitted(q, 1200);
  finished(q, { now: 1300, waitedMs: 100 });
  assert.equal(q.stepMs, 0, "the first completion after the gap gives no spacing");
  finished(q, { now: 1400, waitedMs: 90 });
  assert.equal(q.stepMs, 100);
  submitted(q, 1400);
  assert.throws(() => drained(q), /2 step\(s\) still in flight/);
});
