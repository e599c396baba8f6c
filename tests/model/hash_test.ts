import assert from "node:assert/strict";
import { pcg } from "../../src/model/hash.ts";

Deno.test("pcg matches the u32 formula evaluated independently", () => {
  // Values from a Python big-integer evaluation of the same formula, masked to 32 bits.
  assert.deepEqual([0, 1, 12345, 0xffffffff].map(pcg), [129708002, 2831084092, 4099845390, 3861530882]);
});
