import assert from "node:assert/strict";
import {
  accuracy,
  averageRanks,
  computeScores,
  f1,
  glueAverage,
  matthewsCorrelation,
  median,
  pearson,
  predictionsFromLogits,
  spearman,
} from "../../src/eval/metrics.ts";
import { GLUE_TASKS } from "../../src/eval/glue.ts";

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual}, expected ${expected}`);

Deno.test("accuracy counts exact matches", () => {
  assert.equal(accuracy([1, 0, 1, 1], [1, 1, 1, 0]), 0.5);
});

Deno.test("f1 of the positive class: tp 2, fp 1, fn 1 gives 2/3", () => {
  close(f1([1, 1, 0, 1, 0], [1, 0, 1, 1, 0]), 2 / 3, "f1");
  assert.equal(f1([0, 0], [1, 0]), 0, "no true positive");
});

Deno.test("matthews correlation: binary, degenerate and three-class cases", () => {
  // TP 2, TN 2, FP 1, FN 1: (4 - 1) / sqrt(3^4) = 1/3.
  close(matthewsCorrelation([1, 1, 0, 1, 0, 0], [1, 0, 1, 1, 0, 0]), 1 / 3, "binary");
  assert.equal(matthewsCorrelation([1, 1, 1], [1, 0, 1]), 0, "a single predicted class");
  close(matthewsCorrelation([1, 0, 1, 0], [0, 1, 0, 1]), -1, "all wrong");
  // n 4, correct 3, sum p_k t_k = 2*2 + 2*1 = 6: (3*4 - 6) / sqrt((16 - 8)(16 - 6)) = 6 / sqrt(80).
  close(matthewsCorrelation([0, 2, 2, 0], [0, 1, 2, 0]), 6 / Math.sqrt(80), "three classes");
});

Deno.test("pearson of hand-checked pairs", () => {
  close(pearson([1, 2, 3, 4], [2, 4, 6, 8]), 1, "linear");
  close(pearson([1, 2, 3], [1, 3, 2]), 0.5, "sxy 1, sxx 2, syy 2");
  assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])), "constant side");
});

Deno.test("spearman averages the ranks of ties", () => {
  assert.deepEqual([...averageRanks([10, 20, 10, 30, 20])], [1.5, 3.5, 1.5, 5, 3.5]);
  // ranks x [1, 2.5, 2.5, 4], y [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5).
  close(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 4.5 / Math.sqrt(22.5), "with ties");
  close(spearman([1, 2, 3, 4], [1, 4, 9, 16]), 1, "monotone");
});

Deno.test("computeScores returns each requested metric", () => {
  assert.deepEqual(computeScores(["f1", "accuracy"], [1, 0, 1, 1], [1, 1, 1, 0]), {
    f1: 2 / 3,
    accuracy: 0.5,
  });
  assert.throws(() => computeScores(["accuracy"], [1], [1, 0]), /1 predictions for 2 labels/);
});

Deno.test("predictionsFromLogits: argmax per row, values for one output", () => {
  assert.deepEqual([...predictionsFromLogits([0.1, 0.9, 2, -1, 3, 3], 2)], [1, 0, 0]);
  assert.deepEqual([...predictionsFromLogits([0.5, 4.25], 1)], [0.5, 4.25]);
  assert.throws(() => predictionsFromLogits([1, 2, 3], 2), /do not split into rows of 2/);
});

Deno.test("median of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /no values/);
});

Deno.test("glueAverage of the paper's figures gives the paper's GLUE column, WNLI left out", () => {
  const crammed: Record<string, number> = { WNLI: 10 };
  const bertBase: Record<string, number> = {};
  for (const task of GLUE_TASKS) {
    for (const dev of task.devSets) {
      if (!dev.paper) continue;
      crammed[dev.name] = dev.paper.crammedBert;
      bertBase[dev.name] = dev.paper.bertBase;
    }
  }
  const a = glueAverage(crammed);
  assert.equal(a.average.toFixed(1), "78.6");
  assert.deepEqual(a.covered, ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE"]);
  assert.equal(glueAverage(bertBase).average.toFixed(1), "80.9");
  assert.deepEqual(glueAverage({ RTE: 50, "SST-2": 80 }), { average: 65, covered: ["RTE", "SST-2"] });
});
