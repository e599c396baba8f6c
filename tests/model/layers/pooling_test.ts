import assert from "node:assert/strict";
import { readF32, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { meanPoolBackward, meanPoolForward } from "../../../src/model/layers/pooling.ts";
import * as ref from "../../../src/reference/pooling.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const k = new Kernels(gpu);

// Three examples of 5 tokens: 5 real, 2 real, none (a padding row); hidden 12 (3 vec4s).
const [batch, seq, hidden] = [3, 5, 12];
const mask = Uint32Array.from({ length: batch * seq }, (_, i) => (i < 5 || (i >= 5 && i < 7) ? 1 : 0));
const real = [5, 2, 0];

for (const type of ["f32", "f16"] as const) {
  Deno.test({
    name: `meanPoolForward and meanPoolBackward average and spread over the real tokens (${type} states)`,
    ignore: type === "f16" && !gpu.hasF16,
  }, async () => {
    const values = seededUniform(batch * seq * hidden, 4, -2, 2);
    // The states as stored: rounded to f16 first when they are f16, so both sides see the same values.
    const stored = type === "f16" ? Float64Array.from(Float16Array.from(values)) : Float64Array.from(values);
    const states = uploadBuffer(gpu, "states", type === "f16" ? Float16Array.from(values) : values);
    const keyMask = uploadBuffer(gpu, "key mask", mask);
    const pooled = storageBuffer(gpu, "pooled", batch * hidden * 4);
    const dpooledValues = seededUniform(batch * hidden, 5, -1, 1);
    const dstates = storageBuffer(gpu, "dstates", batch * seq * hidden * 4);
    const inverseCounts = storageBuffer(gpu, "inverse counts", batch * 4);
    const shape = { batch, seq, hidden, keyMask, inverseCounts };
    submitDispatches(gpu, [
      ...await meanPoolForward(k, { ...shape, states, pooled }),
      ...await meanPoolBackward(k, {
        ...shape,
        dpooled: uploadBuffer(gpu, "dpooled", dpooledValues),
        dstates,
      }),
    ]);
    const pool = { batch, seq, hidden, keyMask: mask };
    const expectedPooled = ref.meanPool(stored, pool);
    const expectedD = ref.meanPoolBackward(dpooledValues, pool);
    assert.deepEqual(real, [0, 1, 2].map((b) => ref.realTokens(pool, b).length));
    // Sums of at most 5 f32 values: a few ulps.
    assertClose(await readF32(gpu, pooled), expectedPooled, { rtol: 1e-6, atol: 1e-6, what: "pooled" });
    assertClose(await readF32(gpu, dstates), expectedD, { rtol: 1e-6, atol: 0, what: "dstates" });
    // The backward took its counts from the forward: 1/5, 1/2, and 0 for the row without real tokens.
    assert.deepEqual(await readF32(gpu, inverseCounts), Float32Array.of(1 / 5, 1 / 2, 0));
  });
}

Deno.test("the pooling wrappers name a buffer that is too small", async () => {
  const small = storageBuffer(gpu, "small", 16);
  await assert.rejects(
    () =>
      meanPoolForward(k, {
        batch,
        seq,
        hidden,
        keyMask: small,
        inverseCounts: small,
        states: small,
        pooled: small,
      }),
    /meanPoolForward keyMask: buffer small has 16 bytes, needs 60/,
  );
});
