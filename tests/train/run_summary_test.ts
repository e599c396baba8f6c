import assert from "node:assert/strict";
import { tiny } from "../../src/model/config.ts";
import { type RunOutcome, summarizeRun } from "../../src/train/run_summary.ts";
import { fixtureRecords } from "./run_fixture.ts";

const outcome: RunOutcome = {
  preset: "tiny",
  config: tiny,
  precision: "f32",
  result: {
    stopped: "budget",
    state: { step: 20, skipped: 1, tokensSeen: 6400, data: { epoch: 2, index: 8 }, epoch: 2 },
    last: fixtureRecords()[4],
  },
  usedSeconds: 40,
  budget: "20steps",
  peakMemoryBytes: 1 << 20,
  maskRate: 0.15,
  dataTokens: 2048,
};

Deno.test("a run's summary: where it ended, its epochs begun, its last loss, its throughput and its recipe", () => {
  assert.deepEqual(summarizeRun(outcome), {
    preset: "tiny",
    config: tiny,
    precision: "f32",
    stopped: "budget",
    steps: 20,
    skipped: 1,
    tokensSeen: 6400,
    epochs: 3,
    finalLoss: fixtureRecords()[4].loss,
    tokensPerSecond: 160,
    usedSeconds: 40,
    budget: "20steps",
    peakMemoryBytes: 1 << 20,
    maskRate: 0.15,
    dataTokens: 2048,
  });
});

Deno.test("a resumed run's throughput counts only this process's tokens and seconds; no record is a NaN loss", () => {
  const resumed = summarizeRun({
    ...outcome,
    result: { ...outcome.result, last: undefined },
    resumedFrom: { tokensSeen: 3200, usedSeconds: 30 },
  });
  assert.equal(resumed.tokensPerSecond, 320);
  assert.equal(resumed.tokensSeen, 6400);
  assert.ok(Number.isNaN(resumed.finalLoss));
});
