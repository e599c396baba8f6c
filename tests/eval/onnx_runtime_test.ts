import assert from "node:assert/strict";
import { OnnxGraph } from "../../src/export/onnx_graph.ts";
import { padBatch } from "../../src/eval/features.ts";
import { loadOnnx, OnnxRuntimeError } from "../../src/eval/onnx_runtime.ts";

/** A model whose output is `name` = float(input_ids) * 2, plus an unused attention_mask input. */
function doubling(output: string, maskName = "attention_mask"): Uint8Array {
  const graph = new OnnxGraph();
  const ids = graph.node("Cast", [graph.input("input_ids", "int64", ["batch", "sequence"])], {
    to: { int: 1 },
  });
  graph.input(maskName, "int64", ["batch", "sequence"]);
  graph.node("Mul", [ids, graph.initializer("two", [], Float32Array.of(2))], {}, output);
  graph.output(output, "float32", ["batch", "sequence"]);
  return graph.encode({ name: "doubling", producer: "test" });
}

function rejects(what: Promise<unknown>, message: string): Promise<void> {
  return assert.rejects(what, (e: Error) => {
    assert.ok(e instanceof OnnxRuntimeError, `${e.name}: ${e.message}`);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("run feeds int64 ids and mask and returns float32 logits with their shape", async () => {
  const model = await loadOnnx(doubling("logits"), { name: "doubling.onnx" });
  try {
    const result = await model.run(padBatch([[1, 2], [3]]));
    assert.deepEqual(result.dims, [2, 2]);
    assert.deepEqual([...result.logits], [2, 4, 6, 0]);
    const short = { ...padBatch([[1, 2], [3, 4]]), inputIds: Int32Array.of(1, 2, 3) };
    await assert.rejects(
      model.run(short),
      /input_ids: expected 4 values for \[2, 2\], got 3/,
    );
  } finally {
    await model.release();
  }
});

Deno.test("a file that is not ONNX fails to load with a one-line error", async () => {
  const bytes = new TextEncoder().encode("not a model");
  await assert.rejects(loadOnnx(bytes, { name: "broken.onnx" }), (e: Error) => {
    assert.ok(e instanceof OnnxRuntimeError);
    assert.match(e.message, /^cannot load ONNX model broken\.onnx: \S/);
    assert.ok(!e.message.includes("\n"), e.message);
    return true;
  });
});

Deno.test("a model without the expected input or output names is rejected", async () => {
  await rejects(loadOnnx(doubling("scores"), { name: "a.onnx" }), "ONNX model a.onnx has no output logits");
  await rejects(
    loadOnnx(doubling("logits", "mask"), { name: "b.onnx" }),
    "ONNX model b.onnx has no input attention_mask",
  );
});
