import assert from "node:assert/strict";
import {
  checkpointTensors,
  decodeBatch,
  decodeCheckpoint,
  encodeBatch,
  encodeCheckpoint,
  IGNORE_LABEL,
  loadCheckpoint,
  paramsFromTensors,
} from "../../src/model/checkpoint.ts";
import { tiny, toPeerConfig } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { paramLayout } from "../../src/model/params.ts";
import { decodeSafetensors, encodeSafetensors } from "../../src/model/safetensors.ts";
import { safetensorsBytes } from "../_helpers.ts";

const config = { ...tiny, ffn: "gelu-glu" as const, positions: "learned" as const };
const params = initParams(config, { seed: 9 });

Deno.test("a checkpoint round-trips config, parameters and extra metadata", () => {
  const bytes = encodeCheckpoint(config, params, { step: "100" });
  const decoded = decodeCheckpoint(bytes, { file: "c.safetensors" });
  assert.deepEqual(decoded.config, config);
  assert.deepEqual(decoded.params, params);
  assert.equal(decoded.metadata.step, "100");
  assert.deepEqual(JSON.parse(decoded.metadata.config), toPeerConfig(config));
});

Deno.test("a checkpoint holds exactly the peer's tensors, unpadded, in F32", () => {
  const { tensors } = decodeSafetensors(encodeCheckpoint(config, params), { file: "c" });
  const layout = paramLayout(config);
  assert.deepEqual(Object.keys(tensors), layout.tensors.map((t) => t.name));
  for (const t of layout.tensors) {
    const tensor = tensors[t.name];
    assert.equal(tensor.dtype, "F32");
    assert.deepEqual(tensor.shape, t.shape);
    assert.deepEqual(tensor.data, params.subarray(t.offset, t.offset + t.size));
  }
});

Deno.test("paramsFromTensors names the missing, unexpected or misshapen tensor", () => {
  const tensors = checkpointTensors(config, params);
  const { ["final_norm.bias"]: _, ...missing } = tensors;
  assert.throws(
    () => paramsFromTensors(config, missing, { file: "c" }),
    /^RangeError: c: tensor final_norm.bias is missing$/,
  );
  assert.throws(
    () => paramsFromTensors(config, { ...tensors, extra: tensors["final_norm.bias"] }, { file: "c" }),
    /c: unexpected tensor extra for this config/,
  );
  const wrong = {
    ...tensors,
    "final_norm.bias": { dtype: "F32" as const, shape: [16, 2], data: new Float32Array(32) },
  };
  assert.throws(
    () => paramsFromTensors(config, wrong, { file: "c" }),
    /c: tensor final_norm.bias has shape \[16,2\], expected \[32\]/,
  );
  const ints = {
    ...tensors,
    "final_norm.bias": { dtype: "I32" as const, shape: [32], data: new Int32Array(32) },
  };
  assert.throws(
    () => paramsFromTensors(config, ints, { file: "c" }),
    /c: tensor final_norm.bias must be F32, got I32/,
  );
  assert.throws(() => checkpointTensors(config, params.subarray(1)), /parameters: expected \d+ elements/);
});

Deno.test("decodeCheckpoint requires the config metadata and validates it", () => {
  const tensors = checkpointTensors(config, params);
  assert.throws(
    () => decodeCheckpoint(encodeSafetensors(tensors), { file: "c" }),
    /c: __metadata__.config is missing/,
  );
  const bad = encodeSafetensors(tensors, {
    config: JSON.stringify({ ...toPeerConfig(config), ffn: "relu" }),
  });
  assert.throws(
    () => decodeCheckpoint(bad, { file: "c" }),
    /c: config key ffn must be one of gelu, gelu-glu/,
  );
});

Deno.test("a batch round-trips as int32 input_ids and labels [B, T]", () => {
  const batch = {
    batch: 2,
    seq: 3,
    ids: new Int32Array([5, 6, 7, 8, 9, 10]),
    labels: new Int32Array([IGNORE_LABEL, 6, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL, 10]),
  };
  const bytes = encodeBatch(batch);
  assert.deepEqual(decodeBatch(bytes, { file: "b" }), batch);
  const { tensors } = decodeSafetensors(bytes, { file: "b" });
  assert.deepEqual(tensors.input_ids.shape, [2, 3]);
  assert.equal(tensors.labels.dtype, "I32");
});

Deno.test("decodeBatch names the file when tensors are missing or misshapen", () => {
  const ids = { dtype: "I32" as const, shape: [2, 3], data: new Int32Array(6) };
  assert.throws(
    () => decodeBatch(encodeSafetensors({ input_ids: ids }), { file: "b" }),
    /b: a batch needs tensors input_ids and labels/,
  );
  const flat = { dtype: "I32" as const, shape: [6], data: new Int32Array(6) };
  assert.throws(
    () => decodeBatch(encodeSafetensors({ input_ids: ids, labels: flat }), { file: "b" }),
    /b: input_ids \[2,3\] and labels \[6\] must both be \[batch, seq\]/,
  );
  const floats = { dtype: "F32" as const, shape: [2, 3], data: new Float32Array(6) };
  assert.throws(
    () => decodeBatch(encodeSafetensors({ input_ids: ids, labels: floats }), { file: "b" }),
    /b: input_ids and labels must be I32/,
  );
});

Deno.test("loadCheckpoint reports an unreadable path in one line", async () => {
  await assert.rejects(
    () => loadCheckpoint("no/such/model.safetensors"),
    /^Error: cannot read no\/such\/model.safetensors: /,
  );
});

Deno.test("a crafted 4 MB checkpoint is refused in one line without copying its data again and again", () => {
  // 500 entries that all name the same 4 MB: decoded one by one, 2 GB of copies (measured before the fix).
  const data = 4 << 20;
  const entry = `{"dtype":"F32","shape":[${data / 4}],"data_offsets":[0,${data}]}`;
  const names = Array.from({ length: 500 }, (_, i) => `"t${i}":${entry}`).join(",");
  const config = JSON.stringify(JSON.stringify(toPeerConfig(tiny)));
  const bytes = safetensorsBytes(`{"__metadata__":{"config":${config}},${names}}`, data);
  const before = Deno.memoryUsage().rss;
  assert.throws(
    () => decodeCheckpoint(bytes, { file: "x.safetensors" }),
    (e: Error) =>
      /^x\.safetensors: tensor t\d+: data_offsets \[0, 4194304\] overlap tensor t\d+'s/.test(e.message),
  );
  assert.ok(Deno.memoryUsage().rss - before < 100 << 20, "under 100 MB of new memory");
  // Distinct ranges under names the config does not have are refused before any is copied.
  const unknown = safetensorsBytes(
    `{"__metadata__":{"config":${config}},"stranger":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
    4,
  );
  assert.throws(
    () => decodeCheckpoint(unknown, { file: "x" }),
    /^RangeError: x: unexpected tensor stranger$/,
  );
});

Deno.test("a crafted config is bounded before anything is allocated from it", () => {
  const peer = { ...toPeerConfig(tiny), num_layers: 20_000_000 };
  const bytes = safetensorsBytes(`{"__metadata__":{"config":${JSON.stringify(JSON.stringify(peer))}}}`, 0);
  assert.ok(bytes.length < 512);
  const start = performance.now();
  assert.throws(
    () => decodeCheckpoint(bytes, { file: "x" }),
    /^RangeError: x: config key num_layers must be an integer from 1 to 512, got 20000000$/,
  );
  assert.ok(performance.now() - start < 1000, "refused at once");
});
