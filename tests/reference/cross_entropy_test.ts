import assert from "node:assert/strict";
import { crossEntropy } from "../../src/reference/cross_entropy.ts";
import { maxGradError, randomArray } from "./gradcheck.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("crossEntropy: ln(vocab) on uniform logits, stable with huge logits", () => {
  assertClose([crossEntropy([0, 0, 0, 0], [1], { rows: 1, vocab: 4 }).loss], [Math.log(4)], {
    atol: 1e-15,
    rtol: 1e-15,
  });
  const huge = crossEntropy([1000, 0, -1000, 1000, 0, -1000], [0, 1], { rows: 2, vocab: 3 });
  // Row 0: -log(1 / (1 + e^-1000 + e^-2000)) ~ 0; row 1: 1000 - log-sum-exp ~ 1000.
  assertClose([huge.loss], [500], { atol: 1e-12, rtol: 1e-12 });
  assertClose(huge.dlogits, [0, 0, 0, 0.5, -0.5, 0], { atol: 1e-15, rtol: 1e-15 });
});

Deno.test("crossEntropy's dlogits match finite differences", () => {
  const rows = 3, vocab = 5;
  const logits = randomArray(rows * vocab, 14, 3);
  const labels = [4, 0, 2];
  const { dlogits } = crossEntropy(logits, labels, { rows, vocab });
  assert.ok(maxGradError(() => crossEntropy(logits, labels, { rows, vocab }).loss, logits, dlogits) < 1e-8);
});
