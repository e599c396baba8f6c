import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { dropoutSiteCount } from "../../src/model/dropout_sites.ts";
import {
  allocateEncoder,
  recordEncoderBackward,
  recordEncoderForward,
  writeEncoderInputs,
} from "../../src/model/encoder.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout } from "../../src/model/params.ts";
import { Recorder } from "../../src/model/recorder.ts";
import { referenceEncoderPass } from "../../src/reference/model.ts";
import { seededUniform } from "../_helpers.ts";

const k = new Kernels(await requestGpu());

// Tolerances as in model_test.ts: states within a few 1e-6 of the float64 reference (LayerNorm outputs of
// order 1), gradient tensors within 1e-4 relative L2 error.
Deno.test("an encoder pass shorter than its buffers, with key mask and dropout, matches the reference", async () => {
  const config: ModelConfig = { ...tiny, ffn: "gelu-glu" };
  const layout = paramLayout(config);
  const params = initParams(config, { seed: 2 }).map((v) => (Math.abs(v) === 1 || v === 0 ? v : 8 * v));
  const rec = new Recorder(k, { sizedBy: "--micro-batch" });
  const weights = {
    layout,
    params: rec.f32("params", layout.totalSize),
    grads: rec.f32("grads", layout.totalSize),
  };
  const enc = allocateEncoder(rec, config, weights, { batch: 2, seq: 16, keyMask: true, dropout: true });
  const [batch, seq] = [2, 9];
  const pass = { seq, dropout: 0.25 };
  const steps = rec.recording();
  recordEncoderForward(steps, enc, pass);
  recordEncoderBackward(steps, enc, pass);
  const [dispatches] = await rec.finish();

  const ids = Uint32Array.from({ length: batch * seq }, (_, t) => 2 + ((t * 37) % (config.vocabSize - 2)));
  const keyMask = Uint32Array.from({ length: batch * seq }, (_, t) => (t % seq < 6 || t < seq ? 1 : 0));
  const seeds = Uint32Array.from({ length: dropoutSiteCount(config) }, (_, i) => 777 * (i + 3));
  const dstates = seededUniform(batch * seq * config.hidden, 4);
  writeBuffer(k.gpu, weights.params, params);
  writeBuffer(k.gpu, enc.seeds!, seeds);
  writeEncoderInputs(k.gpu, enc, seq, ids, keyMask);
  writeBuffer(k.gpu, enc.dstates, dstates);
  // The forward's states are overwritten by the backward's recomputations: read them from a forward alone.
  const forwardOnly = new Recorder(k, { sizedBy: "--micro-batch" });
  const forward = forwardOnly.recording();
  recordEncoderForward(forward, enc, pass);
  submitDispatches(k.gpu, (await forwardOnly.finish())[0]);
  const states = await readF32(k.gpu, enc.states, batch * seq * config.hidden);
  submitDispatches(k.gpu, dispatches);

  const expected = referenceEncoderPass(config, params, ids, {
    batch,
    seq,
    keyMask,
    dropout: { p: 0.25, seeds },
  });
  let worst = 0;
  for (let i = 0; i < states.length; i++) worst = Math.max(worst, Math.abs(states[i] - expected.states[i]));
  assert.ok(worst < 2e-5, `states differ by ${worst}`);
  const want = expected.backward(Float64Array.from(dstates));
  const got = await readF32(k.gpu, weights.grads);
  for (const t of layout.tensors) {
    let diff = 0;
    let norm = 0;
    for (let i = t.offset; i < t.offset + t.size; i++) {
      diff += (got[i] - want[i]) ** 2;
      norm += want[i] ** 2;
    }
    assert.ok(norm > 0, `${t.name}: the reference gradient is zero, the test would prove nothing`);
    assert.ok(Math.sqrt(diff / norm) < 1e-4, `${t.name}: relative error ${Math.sqrt(diff / norm)}`);
  }
});

Deno.test("an encoder refuses a pass longer than its buffers, dropout without its buffers, and a wrong mask", () => {
  const rec = new Recorder(k, { sizedBy: "--micro-batch" });
  const layout = paramLayout(tiny);
  const weights = {
    layout,
    params: rec.f32("params", layout.totalSize),
    grads: rec.f32("grads", layout.totalSize),
  };
  const enc = allocateEncoder(rec, tiny, weights, { batch: 1, seq: 8, keyMask: true });
  assert.throws(
    () => recordEncoderForward(rec.recording(), enc, { seq: 9, dropout: 0 }),
    /seq 9, the buffers hold 1..8/,
  );
  assert.throws(
    () => recordEncoderForward(rec.recording(), enc, { seq: 8, dropout: 0.1 }),
    /dropout needs buffers allocated with the dropout option/,
  );
  assert.throws(
    () => writeEncoderInputs(k.gpu, enc, 8, new Uint32Array(8)),
    /a key mask of 8 values is needed, got none/,
  );
  assert.throws(
    () => allocateEncoder(rec, tiny, weights, { batch: 1, seq: 17 }),
    /seq 17 exceeds the config's maxSeqLen 16/,
  );
});
