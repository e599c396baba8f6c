import assert from "node:assert/strict";
import onnxProto from "onnx-proto";
import { IR_VERSION, OnnxGraph, OPSET } from "../../src/export/onnx_graph.ts";
import { loadOnnx } from "../../src/eval/onnx_runtime.ts";

const { onnx } = onnxProto;

/** The model as a plain object: int64 fields as numbers, enums as names, default values left out. */
// deno-lint-ignore no-explicit-any
const decode = (bytes: Uint8Array): any =>
  onnx.ModelProto.toObject(onnx.ModelProto.decode(bytes), { longs: Number, enums: String });

/** logits[b, t] = input_ids[b, t] * 2.5 + attention_mask[b, t] (as float32), with dynamic axes. */
function affineGraph(): OnnxGraph {
  const graph = new OnnxGraph();
  const ids = graph.node("Cast", [graph.input("input_ids", "int64", ["batch", "sequence"])], {
    to: { int: 1 },
  });
  const mask = graph.node("Cast", [graph.input("attention_mask", "int64", ["batch", "sequence"])], {
    to: { int: 1 },
  });
  const scaled = graph.node("Mul", [ids, graph.initializer("scale", [1], Float32Array.of(2.5))]);
  graph.node("Add", [scaled, mask], {}, "logits");
  graph.output("logits", "float32", ["batch", "sequence"]);
  return graph;
}

Deno.test("encode writes opset 17, IR 8, raw little-endian initializers and named dynamic axes", () => {
  const graph = new OnnxGraph();
  const x = graph.input("x", "float32", ["batch", 4]);
  graph.ints("shape", [2, -1]);
  graph.node("Reshape", [x, "shape"], {}, "y");
  graph.output("y", "float32", [2, "rest"]);
  const model = decode(graph.encode({ name: "g", producer: "test" }));
  assert.equal(model.irVersion, IR_VERSION);
  assert.deepEqual(model.opsetImport, [{ domain: "", version: OPSET }]);
  const shape = model.graph.initializer[0];
  assert.equal(shape.dataType, onnx.TensorProto.DataType.INT64);
  assert.deepEqual([...new BigInt64Array(Uint8Array.from(shape.rawData).buffer)], [2n, -1n]);
  assert.deepEqual(model.graph.input[0].type.tensorType.shape.dim, [{ dimParam: "batch" }, { dimValue: 4 }]);
  assert.deepEqual(model.graph.node[0].opType, "Reshape");
  assert.deepEqual([model.graph.node[0].input, model.graph.node[0].output], [["x", "shape"], ["y"]]);
});

Deno.test("attributes keep their types", () => {
  const graph = new OnnxGraph();
  const x = graph.input("x", "float32", [2]);
  graph.node("Op", [x], { a: { int: -1 }, b: { ints: [1, 2] }, c: { float: 0.5 } });
  const [node] = decode(graph.encode({ name: "g", producer: "test" })).graph.node;
  assert.deepEqual(node.attribute, [
    { name: "a", type: "INT", i: -1 },
    { name: "b", type: "INTS", ints: [1, 2] },
    { name: "c", type: "FLOAT", f: 0.5 },
  ]);
});

Deno.test("builder errors name the value", () => {
  const graph = new OnnxGraph();
  graph.input("x", "float32", [2]);
  assert.throws(() => graph.input("x", "float32", [2]), /the name x is used twice/);
  assert.throws(() => graph.node("Relu", ["nope"]), /Relu node: unknown input nope/);
  assert.throws(
    () => graph.initializer("w", [2, 3], new Float32Array(5)),
    /initializer w: 5 values for shape \[2, 3\]/,
  );
});

Deno.test("a built graph runs in onnxruntime-web with any batch and sequence length", async () => {
  const model = await loadOnnx(affineGraph().encode({ name: "affine", producer: "test" }), {
    name: "affine",
  });
  try {
    for (const [batch, seq] of [[1, 3], [2, 5]]) {
      const inputIds = Int32Array.from({ length: batch * seq }, (_, i) => i);
      const attentionMask = inputIds.map((i) => i % 2);
      const { logits, dims } = await model.run({ batch, seq, inputIds, attentionMask });
      assert.deepEqual(dims, [batch, seq]);
      assert.deepEqual([...logits], [...inputIds].map((i) => i * 2.5 + (i % 2)));
    }
  } finally {
    await model.release();
  }
});
