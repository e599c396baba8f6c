import assert from "node:assert/strict";
import { attentionBackward, attentionForward } from "../../src/reference/attention.ts";
import { dot, maxGradError, randomArray } from "./gradcheck.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("attentionForward: equal scores average the values; probabilities sum to 1", () => {
  // batch 1, seq 2, 1 head of dim 1: q = k = 0 gives uniform attention, out = mean of v.
  const qkv = [0, 0, 3, 0, 0, 5];
  const { out, probs } = attentionForward(qkv, { batch: 1, seq: 2, heads: 1, headDim: 1 });
  assertClose(out, [4, 4], { atol: 1e-15, rtol: 1e-15 });
  assertClose(probs, [0.5, 0.5, 0.5, 0.5], { atol: 1e-15, rtol: 1e-15 });

  const opts = { batch: 2, seq: 4, heads: 2, headDim: 3 };
  const big = attentionForward(randomArray(2 * 4 * 18, 9, 3), opts);
  for (let row = 0; row < 2 * 2 * 4; row++) {
    const sum = big.probs.subarray(row * 4, row * 4 + 4).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-14);
  }
});

Deno.test("attentionForward uses head-major columns scaled by 1/sqrt(headDim)", () => {
  // seq 2, 2 heads of dim 2 (H = 4). Head 1 (columns 2..3 of each of q, k, v) sees scores q.k / sqrt(2).
  const opts = { batch: 1, seq: 2, heads: 2, headDim: 2 };
  const qkv = randomArray(2 * 12, 10, 2);
  const { out, probs } = attentionForward(qkv, opts);
  const q = (t: number) => [qkv[t * 12 + 2], qkv[t * 12 + 3]];
  const k = (t: number) => [qkv[t * 12 + 6], qkv[t * 12 + 7]];
  const v = (t: number) => [qkv[t * 12 + 10], qkv[t * 12 + 11]];
  const s0 = dot(q(0), k(0)) / Math.SQRT2;
  const s1 = dot(q(0), k(1)) / Math.SQRT2;
  const p0 = 1 / (1 + Math.exp(s1 - s0));
  assertClose([probs[(1 * 2 + 0) * 2]], [p0], { atol: 1e-14, rtol: 1e-14, what: "probs" });
  assertClose([out[2], out[3]], [p0 * v(0)[0] + (1 - p0) * v(1)[0], p0 * v(0)[1] + (1 - p0) * v(1)[1]], {
    atol: 1e-14,
    rtol: 1e-14,
  });
});

Deno.test("attentionForward leaves padding keys out of the softmax", () => {
  const opts = { batch: 2, seq: 3, heads: 2, headDim: 2 };
  const keyMask = [1, 1, 0, 1, 0, 1];
  const qkv = randomArray(6 * 12, 11);
  const { out, probs } = attentionForward(qkv, { ...opts, keyMask });
  // Masked keys get probability 0, and changing their k and v changes nothing.
  for (let b = 0; b < 2; b++) {
    for (let i = 0; i < 3 * 2 * 3; i += 3) {
      for (let j = 0; j < 3; j++) {
        if (keyMask[b * 3 + j] === 0) assert.equal(probs[b * 18 + i + j], 0);
      }
    }
  }
  const changed = qkv.slice();
  for (const t of [2, 4]) for (let c = 4; c < 12; c++) changed[t * 12 + c] += 10;
  assertClose(attentionForward(changed, { ...opts, keyMask }).out, out, {
    atol: 1e-14,
    rtol: 1e-14,
    what: "out",
  });
  // A query whose keys are all padding gets zeros rather than NaN.
  const none = attentionForward(qkv, { ...opts, keyMask: [0, 0, 0, 1, 1, 1] });
  assert.ok(none.out.subarray(0, 12).every((v) => v === 0));
});

Deno.test("attentionBackward matches finite differences, with and without a key mask", () => {
  const opts = { batch: 2, seq: 3, heads: 2, headDim: 2 };
  const qkv = randomArray(6 * 12, 12, 1.5);
  const r = randomArray(6 * 4, 13);
  for (const keyMask of [undefined, [1, 0, 1, 1, 1, 0]]) {
    const { probs } = attentionForward(qkv, { ...opts, keyMask });
    const dqkv = attentionBackward(r, qkv, probs, opts);
    const loss = () => dot(attentionForward(qkv, { ...opts, keyMask }).out, r);
    assert.ok(maxGradError(loss, qkv, dqkv) < 1e-8);
  }
});
