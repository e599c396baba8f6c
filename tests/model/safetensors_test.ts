import assert from "node:assert/strict";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "../../src/model/safetensors.ts";
import { safetensorsBytes } from "../_helpers.ts";

const tensors: Record<string, Tensor> = {
  weight: { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-8, -0]) },
  ids: { dtype: "I32", shape: [3], data: new Int32Array([7, -100, 2147483647]) },
  empty: { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
};

Deno.test("encodeSafetensors writes the documented layout byte for byte", () => {
  const bytes = encodeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } }, {
    k: "v",
  });
  const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const headerLength = Math.ceil(json.length / 8) * 8;
  const view = new DataView(bytes.buffer);
  assert.equal(view.getBigUint64(0, true), BigInt(headerLength));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  assert.equal(header, json.padEnd(headerLength, " "));
  assert.equal(bytes.length, 8 + headerLength + 8);
  assert.equal(view.getFloat32(8 + headerLength, true), 1);
  assert.equal(view.getFloat32(8 + headerLength + 4, true), 2);
});

Deno.test("decodeSafetensors round-trips tensors and metadata", () => {
  const bytes = encodeSafetensors(tensors, { config: '{"a":1}', step: "12" });
  const decoded = decodeSafetensors(bytes, { file: "t.safetensors" });
  assert.deepEqual(decoded.metadata, { config: '{"a":1}', step: "12" });
  assert.deepEqual(decoded.tensors, tensors);
  assert.deepEqual(decodeSafetensors(encodeSafetensors({}), { file: "e" }), { tensors: {}, metadata: {} });
});

Deno.test("decodeSafetensors reads tensors at any byte offset, as other writers may place them", () => {
  // A header written by hand with a 2-byte gap so the tensor starts at data offset 2 (not 4-aligned).
  const json = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}';
  const header = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + header.length + 6);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  new DataView(bytes.buffer).setFloat32(8 + header.length + 2, 0.25, true);
  const x = decodeSafetensors(bytes, { file: "odd" }).tensors.x;
  assert.deepEqual([...x.data], [0.25]);
});

Deno.test("decodeSafetensors rejects malformed files with one-line errors naming the file", () => {
  const good = encodeSafetensors(tensors);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /^m\.st: truncated: 5 bytes, shorter than the 8-byte header length$/],
    [good.subarray(0, 40), /^m\.st: truncated: header length \d+ exceeds the 32 bytes after it$/],
    [
      good.subarray(0, good.length - 4),
      /^m\.st: tensor ids: data_offsets end \d+ is past the \d+ data bytes$/,
    ],
    [safetensorsBytes("{not json"), /^m\.st: header is not valid JSON: /],
    [safetensorsBytes("[1]"), /^m\.st: header must be a JSON object$/],
    [safetensorsBytes('{"__metadata__":{"a":1}}'), /^m\.st: __metadata__\.a must be a string$/],
    [
      safetensorsBytes('{"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}', 2),
      /tensor x: unsupported dtype "BF16"/,
    ],
    [
      safetensorsBytes('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4),
      /tensor x: shape must be a list/,
    ],
    [
      safetensorsBytes('{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', 4),
      /tensor x: data_offsets must be/,
    ],
    [
      safetensorsBytes('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', 4),
      /tensor x: shape \[2\] of F32 needs 8 bytes, data_offsets give 4/,
    ],
    [safetensorsBytes('{"x":3}'), /tensor x: unsupported dtype undefined/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => decodeSafetensors(bytes, { file: "m.st" }), (e: Error) => {
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("encodeSafetensors rejects a shape that does not match the data", () => {
  assert.throws(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    /tensor w: shape \[2,2\] needs 4 elements, got 3/,
  );
});
