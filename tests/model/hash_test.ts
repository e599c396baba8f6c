import assert from "node:assert/strict";
import { hashIndex, pcg } from "../../src/model/hash.ts";

Deno.test("pcg matches the u32 formula evaluated independently", () => {
  // Values from a Python big-integer evaluation of the same formula, masked to 32 bits.
  assert.deepEqual([0, 1, 12345, 0xffffffff].map(pcg), [129708002, 2831084092, 4099845390, 3861530882]);
});

Deno.test("hashIndex is two rounds of pcg on key ^ index", () => {
  // pcg(pcg(key ^ index)) in Python's integers.
  assert.deepEqual([[0, 0], [7, 1], [0xffffffff, 12345]].map(([k, i]) => hashIndex(k, i)), [
    817759070,
    1220186068,
    4276926932,
  ]);
});
