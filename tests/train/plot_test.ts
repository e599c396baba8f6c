import assert from "node:assert/strict";
import { XMLValidator } from "fast-xml-parser";
import { formatCount, lossCurveSvg, niceTicks } from "../../src/train/plot.ts";
import type { MetricRecord } from "../../src/train/metrics.ts";

const record = (step: number, seconds: number, loss: number, lr: number): MetricRecord => ({
  step,
  seconds,
  tokens: seconds * 1000,
  loss,
  lr,
  batch: 32,
  tokensPerSecond: 1000,
  epoch: 0,
  skipped: 0,
});

function points(svg: string, cls: string): [number, number][] {
  const match = new RegExp(`class="${cls}"[^>]* points="([^"]*)"`).exec(svg);
  assert.ok(match, `no ${cls} line`);
  return match[1].split(" ").map((p) => p.split(",").map(Number) as [number, number]);
}

Deno.test("niceTicks picks round steps covering the range", () => {
  assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 1e-3, 4), [0, 2.5e-4, 5e-4, 7.5e-4, 1e-3]);
  assert.deepEqual(niceTicks(1.7, 10.6), [2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(0, 24), [0, 5, 10, 15, 20]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  assert.equal(formatCount(950), "950");
  assert.equal(formatCount(12_500), "12.5k");
  assert.equal(formatCount(3_210_000), "3.21M");
  assert.equal(formatCount(1_050_000_000), "1.05B");
});

Deno.test("the loss curve is a valid SVG whose lines map the records onto the axes", () => {
  const records = [record(10, 60, 10.4, 2.5e-4), record(20, 300, 6, 1e-3), record(30, 600, 2.5, 0)];
  const svg = lossCurveSvg(records, { title: "runs/a<b> & c" });
  assert.equal(XMLValidator.validate(svg), true);
  assert.ok(svg.includes("runs/a&lt;b&gt; &amp; c"), "title escaped");
  assert.ok(svg.includes("budget used (minutes)"));
  assert.ok(svg.includes("final loss 2.500 after 600k tokens, step 30"));
  const loss = points(svg, "loss");
  const lr = points(svg, "lr");
  assert.equal(loss.length, 3);
  assert.equal(lr.length, 3);
  // x: minutes 1, 5, 10 on an axis from 0 to 10 between pixels 64 and 728.
  assert.deepEqual(loss.map(([x]) => x), [64 + 66.4, 64 + 332, 728]);
  // y: higher loss is higher up; the lowest loss sits 5% of the range above the bottom.
  assert.ok(loss[0][1] < loss[1][1] && loss[1][1] < loss[2][1]);
  const [top, bottom] = [84, 424];
  const span = (10.4 - 2.5) * 1.1;
  assert.ok(Math.abs(loss[2][1] - (bottom - (0.05 * (10.4 - 2.5) / span) * (bottom - top))) < 0.1);
  // The learning rate's peak touches the top, zero the bottom.
  assert.equal(lr[1][1], top);
  assert.equal(lr[2][1], bottom);
  // Tokens on the top axis at 2 minutes: interpolated between 1 and 5 minutes.
  assert.ok(svg.includes(">120k</text>"));
});

Deno.test("a diverged record (NaN loss) is left out of the loss line and named in the title", () => {
  const svg = lossCurveSvg([record(10, 60, 10.4, 2.5e-4), record(20, 300, 6, 1e-3), record(30, 600, NaN, 0)]);
  assert.equal(XMLValidator.validate(svg), true);
  assert.ok(!svg.includes("NaN"), "no NaN coordinates");
  assert.equal(points(svg, "loss").length, 2);
  assert.equal(points(svg, "lr").length, 3);
  assert.ok(svg.includes("final loss not finite after 600k tokens, step 30"));
});

Deno.test("short runs are drawn in seconds, long ones in hours; no records is a blank plot", () => {
  assert.ok(lossCurveSvg([record(1, 5, 3, 1e-3), record(2, 90, 2, 0)]).includes("budget used (seconds)"));
  assert.ok(lossCurveSvg([record(1, 600, 3, 1e-3), record(2, 86400, 2, 0)]).includes("budget used (hours)"));
  const single = lossCurveSvg([record(1, 30, 3, 1e-3)]);
  assert.equal(XMLValidator.validate(single), true);
  assert.equal(points(single, "loss").length, 1);
  const empty = lossCurveSvg([]);
  assert.equal(XMLValidator.validate(empty), true);
  assert.ok(empty.includes("no metrics recorded"));
});
