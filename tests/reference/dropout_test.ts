import assert from "node:assert/strict";
import { dropout, dropoutKeep } from "../../src/reference/dropout.ts";
import { randomArray } from "./gradcheck.ts";

Deno.test("dropoutKeep matches the u32 formula evaluated independently", () => {
  const mask = [...Array(16).keys()].map((i) => dropoutKeep(7, i, 0.5) ? 1 : 0);
  // pcg(pcg(i ^ pcg(7))) >> 8 >= 2^23, computed in Python's integers.
  assert.deepEqual(mask, [1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1]);
});

Deno.test("dropout keeps about 1 - p, scales kept values by 1/(1-p), and is reproducible", () => {
  const x = randomArray(20000, 15);
  const { y, keep } = dropout(x, { p: 0.1, seed: 3 });
  const kept = keep.reduce((a, b) => a + b, 0) / x.length;
  assert.ok(Math.abs(kept - 0.9) < 0.01, `kept fraction ${kept}`);
  for (let i = 0; i < x.length; i++) assert.equal(y[i], keep[i] ? x[i] / 0.9 : 0);
  assert.deepEqual(dropout(x, { p: 0.1, seed: 3 }).keep, keep);
  assert.notDeepEqual(dropout(x, { p: 0.1, seed: 4 }).keep, keep);
  assert.ok(dropout(x, { p: 0, seed: 3 }).keep.every((k) => k === 1));
});
