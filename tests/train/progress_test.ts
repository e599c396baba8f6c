import assert from "node:assert/strict";
import {
  epochMessage,
  formatBar,
  formatDuration,
  formatLine,
  formatRunEnd,
  Progress,
  type ProgressSnapshot,
} from "../../src/train/progress.ts";

const snapshot: ProgressSnapshot = {
  step: 1234,
  tokensPerSecond: 312_400,
  loss: 3.21449,
  lr: 8.1e-4,
  batch: 2048,
  usedSeconds: 605,
  fraction: 0.42,
  budget: "24m",
  remainingSeconds: 835,
};

Deno.test("durations and progress lines show every field", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(65.4), "1:05");
  assert.equal(formatDuration(3 * 3600 + 62), "3:01:02");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(
    formatLine(snapshot),
    "step 1234  312k tok/s  loss 3.214  lr 8.10e-4  batch 2048  10:05 of 24m (42%)  ETA 13:55",
  );
  assert.equal(formatLine({ ...snapshot, loss: undefined }).includes("loss -"), true);
  assert.equal(
    formatBar(snapshot, 200),
    "[########............] step 1234 | 312k tok/s | loss 3.214 | lr 8.10e-4 | batch 2048 | 10:05 of 24m (42%) | ETA 13:55",
  );
  // On an 80-column terminal the least telling fields go first: the time used and the ETA stay.
  assert.equal(
    formatBar(snapshot, 80),
    "[########............] step 1234 | loss 3.214 | 10:05 of 24m (42%) | ETA 13:55",
  );
  assert.ok(formatBar(snapshot, 80).length < 80);
  assert.equal(formatBar(snapshot, 60), "step 1234 | loss 3.214 | 10:05 of 24m (42%) | ETA 13:55");
  // Narrower still: cut, leaving the last column free so the line never wraps.
  assert.equal(formatBar(snapshot, 40).length, 39);
});

function recorder(terminal: boolean) {
  const out: string[] = [];
  let now = 0;
  const progress = new Progress({ terminal, write: (t) => out.push(t), columns: () => 200, now: () => now });
  return { progress, out, advance: (ms: number) => (now += ms) };
}

Deno.test("on a terminal: one live line redrawn at most every 250 ms, messages above it", () => {
  const { progress, out, advance } = recorder(true);
  progress.update(snapshot);
  progress.update({ ...snapshot, step: 1235 });
  assert.equal(out.length, 1, "second update within 250 ms is skipped");
  assert.ok(out[0].startsWith("\r\x1b[2K[########"));
  advance(300);
  progress.update({ ...snapshot, step: 1236 });
  assert.equal(out.length, 2);
  assert.ok(out[1].includes("step 1236"));
  progress.message("epoch 2 begins");
  assert.equal(out[2], `\r\x1b[2Kepoch 2 begins\n${out[1].slice("\r\x1b[2K".length)}`);
  progress.record({ ...snapshot, step: 1240 });
  assert.ok(out[3].includes("step 1240"), "a record redraws at once");
  progress.finish();
  assert.equal(out[4], "\n");
});

Deno.test("not on a terminal: plain lines for records and messages, nothing per step", () => {
  const { progress, out } = recorder(false);
  progress.update(snapshot);
  assert.deepEqual(out, []);
  progress.record(snapshot);
  progress.message("checkpoint saved: runs/x/checkpoints/step-000001234");
  progress.finish();
  assert.deepEqual(out, [
    formatLine(snapshot) + "\n",
    "checkpoint saved: runs/x/checkpoints/step-000001234\n",
  ]);
});

Deno.test("the end of a run in words: why, how far (passes and rate of the whole run), where its files are", () => {
  const end = {
    stopped: "budget" as const,
    steps: 4714,
    tokensSeen: 194_300_000,
    usedSeconds: 600,
    budget: "10m",
    finalLoss: 2.7612,
    dataTokens: 32_500_000,
  };
  assert.equal(
    formatRunEnd(end, "runs/k10"),
    "the budget is used: 4714 steps, 194M tokens (6.0 passes over the data) in 10:00 of 10m (324k tok/s), " +
      "final loss 2.761; runs/k10/: checkpoints/, metrics.jsonl, loss.svg, summary.json",
  );
  // A resumed run's rate is its tokens over its time, both of the whole run, not its last process's.
  assert.match(
    formatRunEnd({ ...end, tokensSeen: 446_169_088, usedSeconds: 601.7, dataTokens: 66_776_448 }, "r"),
    /446M tokens \(6\.7 passes over the data\) in 10:02 of 10m \(742k tok\/s\)/,
  );
  assert.match(
    formatRunEnd({ ...end, stopped: "non-finite", finalLoss: NaN }, "r"),
    /^stopped: gradients not finite: .* final loss not finite;/,
  );
});

Deno.test("the epoch line gives the passes the whole budget makes: known for steps, else projected from the pace", () => {
  // A 10-minute run through 66.8M tokens at 740k tokens/s began its second epoch 90 s in: 6.7 passes.
  assert.equal(
    epochMessage(1, 0.15),
    "epoch 2 begins: every sequence of the dataset has been used once more " +
      "(15% of the budget used; at this pace the budget makes 6.7 passes over it)",
  );
  assert.match(epochMessage(6, 0.25), /at this pace the budget makes 24 passes over it\)$/);
  // A budget of steps knows its total: no projection, which the batch ramp would skew.
  assert.match(
    epochMessage(1, 0.3, 8.66),
    /\(30% of the budget used; the budget makes 8\.7 passes over it\)$/,
  );
  // The share used is rounded down: not 100% before the end.
  assert.match(epochMessage(2, 0.996), /\(99% of the budget used/);
  // No pace to project from (a time budget before its first second) or nothing left to project.
  for (const fraction of [0, 1, NaN]) {
    assert.equal(
      epochMessage(3, fraction),
      "epoch 4 begins: every sequence of the dataset has been used once more",
    );
  }
});
