import assert from "node:assert/strict";
import { Budget, formatBudget, parseBudget } from "../../src/train/budget.ts";

Deno.test("parseBudget reads durations and step counts", () => {
  assert.deepEqual(parseBudget("90s"), { seconds: 90 });
  assert.deepEqual(parseBudget("10m"), { seconds: 600 });
  assert.deepEqual(parseBudget("24h"), { seconds: 86400 });
  assert.deepEqual(parseBudget("1h30m"), { seconds: 5400 });
  assert.deepEqual(parseBudget("1.5h"), { seconds: 5400 });
  assert.deepEqual(parseBudget("1d2h3m4s"), { seconds: 86400 + 7200 + 180 + 4 });
  assert.deepEqual(parseBudget(" 2H "), { seconds: 7200 });
  assert.deepEqual(parseBudget("500steps"), { steps: 500 });
  assert.deepEqual(parseBudget("1 step"), { steps: 1 });
  for (const bad of ["", "90", "h", "1h30", "30m1h", "-5m", "1.5steps", "ten minutes"]) {
    assert.equal(parseBudget(bad), undefined, bad);
  }
});

Deno.test("formatBudget writes what parseBudget reads", () => {
  for (const text of ["90s", "1m30s", "1h30m", "24h", "1d2h3m4s", "500steps", "0.5s"]) {
    const spec = parseBudget(text)!;
    assert.deepEqual(parseBudget(formatBudget(spec)), spec, text);
  }
  assert.equal(formatBudget({ seconds: 5400 }), "1h30m");
  assert.equal(formatBudget({ seconds: 90 }), "1m30s");
});

Deno.test("a time budget counts from start(), plus the time of earlier processes", () => {
  let now = 1000;
  const budget = new Budget({ seconds: 100 }, { usedSeconds: 20, clock: () => now });
  now += 50; // setup before the first step: not counted
  assert.equal(budget.usedSeconds, 20);
  assert.equal(budget.fraction, 0.2);
  budget.start();
  now += 30;
  assert.equal(budget.usedSeconds, 50);
  assert.equal(budget.fraction, 0.5);
  assert.equal(budget.remainingSeconds, 50);
  assert.equal(budget.done, false);
  budget.start(); // a second call does not restart the clock
  now += 60;
  assert.equal(budget.fraction, 1);
  assert.equal(budget.remainingSeconds, 0);
  assert.equal(budget.done, true);
});

Deno.test("a step budget counts optimizer steps and extrapolates the time left", () => {
  let now = 0;
  const budget = new Budget({ steps: 10 }, { steps: 2, usedSeconds: 4, clock: () => now });
  assert.equal(budget.fraction, 0.2);
  budget.start();
  now += 4;
  budget.step();
  budget.step();
  assert.equal(budget.steps, 4);
  assert.equal(budget.fraction, 0.4);
  // 8 s for 40%: 12 s for the remaining 60%.
  assert.ok(Math.abs(budget.remainingSeconds - 12) < 1e-9);
  for (let i = 0; i < 6; i++) budget.step();
  assert.equal(budget.done, true);
  assert.equal(new Budget({ steps: 10 }).remainingSeconds, Infinity);
});
