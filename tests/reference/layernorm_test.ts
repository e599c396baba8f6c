import assert from "node:assert/strict";
import { layerNormBackward, layerNormForward } from "../../src/reference/layernorm.ts";
import { dot, maxGradError, randomArray } from "./gradcheck.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("layerNormForward matches hand-computed rows", () => {
  // Row [1,2,3,4]: mean 2.5, biased variance 1.25. Row [5,5,5,5]: variance 0, so y = bias.
  const x = [1, 2, 3, 4, 5, 5, 5, 5];
  const weight = [1, 2, 1, 1];
  const bias = [0, 0, 0.5, -1];
  const { y, mean, rstd } = layerNormForward(x, weight, bias, { rows: 2, cols: 4, eps: 1e-5 });
  const rs = 1 / Math.sqrt(1.25 + 1e-5);
  assertClose(mean, [2.5, 5], { atol: 1e-15, rtol: 1e-15, what: "mean" });
  assertClose(rstd, [rs, 1 / Math.sqrt(1e-5)], { atol: 1e-15, rtol: 1e-15, what: "rstd" });
  assertClose(y, [-1.5 * rs, -0.5 * rs * 2, 0.5 * rs + 0.5, 1.5 * rs - 1, 0, 0, 0.5, -1], {
    atol: 1e-15,
    rtol: 1e-15,
    what: "y",
  });
});

Deno.test("layerNormBackward matches finite differences for dx, dweight and dbias", () => {
  const rows = 3, cols = 5, eps = 1e-5;
  const x = randomArray(rows * cols, 1, 2);
  const weight = randomArray(cols, 2);
  const bias = randomArray(cols, 3);
  const r = randomArray(rows * cols, 4);
  const loss = () => dot(layerNormForward(x, weight, bias, { rows, cols, eps }).y, r);
  const { mean, rstd } = layerNormForward(x, weight, bias, { rows, cols, eps });
  const { dx, dweight, dbias } = layerNormBackward(r, x, weight, mean, rstd, { rows, cols });
  assert.ok(maxGradError(loss, x, dx) < 1e-8);
  assert.ok(maxGradError(loss, weight, dweight) < 1e-8);
  assert.ok(maxGradError(loss, bias, dbias) < 1e-8);
});
