/**
 * ONNX export of a crammed-BERT model: the finetuned classifier (encoder + head on the pooled states) and the pretrained
 * MLM model (logits over the vocabulary at every position), at opset 17 with standard operators only.
 *
 * Both take inputs `input_ids` and `attention_mask` (int64 [batch, sequence], dynamic axes; mask 1 for a
 * real token, 0 for padding) and give `logits`: [batch, labels] for the classifier, [batch, sequence,
 * vocab] for the MLM model. The graph mirrors src/reference/model.ts and classifier.ts op for op: padding
 * enters only as an additive -1e9 on the attention scores of padded keys, which softmax turns into
 * exactly 0 in float32, as the reference leaves those keys out ([CLS] is always a real key, so no row is
 * all padding).
 *
 * Linear weights are stored transposed ([in, out], name suffix `_transposed`) so MatMul applies them to
 * [batch, sequence, in] directly; the head's uses Gemm with transB on the PyTorch layout.
 *
 * @module
 */
import { headDim, type ModelConfig } from "../model/config.ts";
import { paramLayout, paramTensor, paramView } from "../model/params.ts";
import { headLayout, headView, type Pooling } from "../model/head_layout.ts";
import { sinusoidTable } from "../model/positions.ts";
import { OnnxGraph } from "./onnx_graph.ts";

/** Added to the attention scores of padded keys. */
const MASKED_SCORE = -1e9;

/**
 * The ONNX file of the classifier: `params` the encoder (paramLayout), `head` its head (headLayout), on the
 * states `pooling` names (default the [CLS] state; `mean`: the mean over each example's real tokens).
 */
export function exportClassifierOnnx(
  config: ModelConfig,
  params: Float32Array,
  head: Float32Array,
  labels: number,
  { pooling = "cls" }: { pooling?: Pooling } = {},
): Uint8Array {
  const graph = new OnnxGraph();
  const states = encoder(graph, config, params);
  const shapes = new Map(headLayout(config, labels).tensors.map((t) => [t.name, t.shape]));
  const linear = (prefix: string) =>
    [`${prefix}.weight`, `${prefix}.bias`].map((name) =>
      graph.initializer(name, shapes.get(name)!, headView(config, labels, head, name))
    );
  const pooled = pooling === "mean"
    ? meanPool(graph, states)
    : graph.node("Gather", [states, graph.ints("index_0", [0], [])], { axis: { int: 1 } });
  const dense = graph.node("Gemm", [pooled, ...linear("head.dense")], { transB: { int: 1 } });
  const activated = graph.node("Tanh", [dense]);
  graph.node("Gemm", [activated, ...linear("head.out")], { transB: { int: 1 } }, "logits");
  graph.output("logits", "float32", ["batch", labels]);
  return graph.encode({ name: "crammed-bert-classifier", producer: "cram" });
}

/** [batch, hidden]: the mean of `states` [batch, sequence, hidden] over each example's real tokens. */
function meanPool(graph: OnnxGraph, states: string): string {
  const real = graph.node("Cast", ["attention_mask"], { to: { int: 1 } });
  const sequenceAxis = graph.ints("axes_1", [1]);
  const sum = graph.node("ReduceSum", [
    graph.node("Mul", [states, graph.node("Unsqueeze", [real, graph.ints("axes_2", [2])])]),
    sequenceAxis,
  ], { keepdims: { int: 0 } });
  const count = graph.node("ReduceSum", [real, sequenceAxis], { keepdims: { int: 1 } });
  return graph.node("Div", [
    sum,
    graph.node("Max", [count, graph.initializer("one_token", [], Float32Array.of(1))]),
  ]);
}

/** The ONNX file of the MLM model: the encoder decoded against the tied word embedding (no bias). */
export function exportMaskedLmOnnx(config: ModelConfig, params: Float32Array): Uint8Array {
  const graph = new OnnxGraph();
  const states = encoder(graph, config, params);
  const decoder = graph.node("Transpose", ["embeddings.word.weight"], { perm: { ints: [1, 0] } });
  graph.node("MatMul", [states, decoder], {}, "logits");
  graph.output("logits", "float32", ["batch", "sequence", config.vocabSize]);
  return graph.encode({ name: "crammed-bert-mlm", producer: "cram" });
}

/** Adds the inputs and the encoder; returns the name of the final states [batch, sequence, hidden]. */
function encoder(graph: OnnxGraph, config: ModelConfig, params: Float32Array): string {
  const layout = paramLayout(config);
  if (params.length !== layout.totalSize) {
    throw new RangeError(
      `params: expected ${layout.totalSize} elements for this config, got ${params.length}`,
    );
  }
  const { hidden: H, intermediate: I, heads } = config;
  const weight = (name: string) =>
    graph.initializer(name, paramTensor(layout, name).shape, paramView(layout, params, name));
  const transposed = (name: string) => {
    const [rows, cols] = paramTensor(layout, name).shape;
    return graph.initializer(
      `${name}_transposed`,
      [cols, rows],
      transpose(paramView(layout, params, name), rows, cols),
    );
  };
  const scalar = (name: string, value: number) => graph.initializer(name, [], Float32Array.of(value));
  const layerNorm = (x: string, prefix: string) =>
    graph.node("LayerNormalization", [x, weight(`${prefix}.weight`), weight(`${prefix}.bias`)], {
      axis: { int: -1 },
      epsilon: { float: config.normEps },
    });

  const ids = graph.input("input_ids", "int64", ["batch", "sequence"]);
  const mask = graph.input("attention_mask", "int64", ["batch", "sequence"]);

  // Embeddings: word[ids] + the first `sequence` rows of the position table, then LayerNorm.
  const words = graph.node("Gather", [weight("embeddings.word.weight"), ids], { axis: { int: 0 } });
  const length = graph.node("Shape", [ids], { start: { int: 1 }, end: { int: 2 } });
  const table = config.positions === "learned" ? weight("embeddings.position.weight") : graph.initializer(
    "embeddings.position.sinusoid",
    [config.maxSeqLen, H],
    Float32Array.from(sinusoidTable(config.maxSeqLen, H)),
  );
  const zero = graph.ints("zero", [0]);
  let positions = graph.node("Slice", [table, zero, length, zero]);
  if (config.positions !== "learned") {
    positions = graph.node("Mul", [positions, weight("embeddings.position_scale")]);
  }
  let x = layerNorm(graph.node("Add", [words, positions]), "embeddings.norm");

  // Key padding as a bias [batch, 1, 1, sequence] on the scores: 0 for real keys, -1e9 for padding.
  const one = scalar("one", 1);
  const padding = graph.node("Sub", [one, graph.node("Cast", [mask], { to: { int: 1 } })]);
  const keyBias = graph.node("Unsqueeze", [
    graph.node("Mul", [padding, scalar("masked_score", MASKED_SCORE)]),
    graph.ints("axes_1_2", [1, 2]),
  ]);

  const splitHeads = graph.ints("qkv_shape", [0, 0, 3, heads, headDim(config)]);
  const mergeHeads = graph.ints("hidden_shape", [0, 0, H]);
  const qkvIndex = [0, 1, 2].map((i) => graph.ints(`qkv_index_${i}`, [i], []));
  const scoreScale = scalar("score_scale", 1 / Math.sqrt(headDim(config)));
  const half = scalar("half", 0.5);
  const invSqrt2 = scalar("inv_sqrt2", Math.SQRT1_2);
  // Exact GELU, 0.5 u (1 + erf(u / sqrt 2)), as the reference (ONNX's Gelu op needs opset 20).
  const gelu = (u: string) =>
    graph.node("Mul", [
      graph.node("Mul", [u, half]),
      graph.node("Add", [graph.node("Erf", [graph.node("Mul", [u, invSqrt2])]), one]),
    ]);
  const glu = config.ffn === "gelu-glu" ? graph.ints("glu_split", [I / 2, I / 2]) : undefined;

  for (let i = 0; i < config.layers; i++) {
    const p = `layers.${i}.`;
    // Attention: [B, T, 3H] -> [3, B, heads, T, headDim]; q, k, v each [B, heads, T, headDim].
    const qkv = graph.node("MatMul", [layerNorm(x, p + "attn_norm"), transposed(p + "attn.qkv.weight")]);
    const perHead = graph.node("Transpose", [graph.node("Reshape", [qkv, splitHeads])], {
      perm: { ints: [2, 0, 3, 1, 4] },
    });
    const [q, k, v] = qkvIndex.map((index) => graph.node("Gather", [perHead, index], { axis: { int: 0 } }));
    const keysT = graph.node("Transpose", [k], { perm: { ints: [0, 1, 3, 2] } });
    const scores = graph.node("Add", [
      graph.node("Mul", [graph.node("MatMul", [q, keysT]), scoreScale]),
      keyBias,
    ]);
    const probs = graph.node("Softmax", [scores], { axis: { int: -1 } });
    const context = graph.node("Transpose", [graph.node("MatMul", [probs, v])], {
      perm: { ints: [0, 2, 1, 3] },
    });
    const merged = graph.node("Reshape", [context, mergeHeads]);
    x = graph.node("Add", [x, graph.node("MatMul", [merged, transposed(p + "attn.out.weight")])]);

    // Feed-forward: GELU, or GELU-gated: up's columns are [value half; gate half], act = gelu(gate) * value.
    const up = graph.node("MatMul", [layerNorm(x, p + "ffn_norm"), transposed(p + "ffn.up.weight")]);
    let act: string;
    if (glu) {
      const [value, gate] = graph.nodeOutputs("Split", [up, glu], 2, { axis: { int: -1 } });
      act = graph.node("Mul", [gelu(gate), value]);
    } else {
      act = gelu(up);
    }
    x = graph.node("Add", [x, graph.node("MatMul", [act, transposed(p + "ffn.down.weight")])]);
  }
  return layerNorm(x, "final_norm");
}

/** out[c, r] = m[r, c] for a row-major [rows, cols] matrix. */
function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}
