/**
 * The float64 reference of the finetuning model: the encoder of model.ts, then the Cramming recipe's head
 * on the [CLS] state (position 0): Linear(hidden -> 1024) with bias, tanh, Linear(1024 -> labels) with
 * bias. Dropout (0.1 during finetuning) is the identity at inference, so it does not appear here. STS-B's
 * regression head is the same with one output.
 *
 * The head's parameters live in a flat vector of their own ({@linkcode headLayout}), PyTorch layout:
 *   head.dense.weight [1024, hidden]   head.dense.bias [1024]
 *   head.out.weight   [labels, 1024]   head.out.bias   [labels]
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { ParamTensor } from "../model/params.ts";
import { type ReferenceBatchOptions, referenceEncode } from "./model.ts";
import { matmul } from "./ops.ts";

/** Width of the head's hidden layer in the Cramming recipe. */
export const HEAD_INNER = 1024;

/** One head tensor and its place in the head's flat vector. */
export type HeadTensor = Pick<ParamTensor, "name" | "shape" | "offset" | "size">;

/** The head's tensors (unpadded, in the order of the module comment) and the length of their vector. */
export function headLayout(
  config: ModelConfig,
  labels: number,
): { tensors: HeadTensor[]; totalSize: number } {
  if (!Number.isSafeInteger(labels) || labels < 1) throw new RangeError(`labels must be >= 1, got ${labels}`);
  const shapes: [string, number[]][] = [
    ["head.dense.weight", [HEAD_INNER, config.hidden]],
    ["head.dense.bias", [HEAD_INNER]],
    ["head.out.weight", [labels, HEAD_INNER]],
    ["head.out.bias", [labels]],
  ];
  const tensors: HeadTensor[] = [];
  let offset = 0;
  for (const [name, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, offset, size });
    offset += size;
  }
  return { tensors, totalSize: offset };
}

/** The elements of head tensor `name` in `head` (a view). */
export function headView<T extends Float32Array | Float64Array>(
  config: ModelConfig,
  labels: number,
  head: T,
  name: string,
): T {
  const layout = headLayout(config, labels);
  if (head.length !== layout.totalSize) {
    throw new RangeError(
      `head: expected ${layout.totalSize} elements for ${labels} labels, got ${head.length}`,
    );
  }
  const tensor = layout.tensors.find((t) => t.name === name);
  if (!tensor) throw new RangeError(`no head parameter named ${name}`);
  return head.subarray(tensor.offset, tensor.offset + tensor.size) as T;
}

/** Logits [batch, labels] of `ids` [batch, seq] (padding marked 0 in `options.keyMask`). */
export function referenceClassify(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  head: Float32Array | Float64Array,
  labels: number,
  ids: ArrayLike<number>,
  options: ReferenceBatchOptions,
): Float64Array {
  const { batch, seq } = options;
  const H = config.hidden;
  const states = referenceEncode(config, params, ids, options);
  const cls = new Float64Array(batch * H);
  for (let b = 0; b < batch; b++) cls.set(states.subarray(b * seq * H, (b * seq + 1) * H), b * H);
  const view = (name: string) => headView(config, labels, head, name);
  const dense = linear(cls, view("head.dense.weight"), view("head.dense.bias"), batch, H, HEAD_INNER);
  return linear(
    dense.map(Math.tanh),
    view("head.out.weight"),
    view("head.out.bias"),
    batch,
    HEAD_INNER,
    labels,
  );
}

/** y[rows, out] = x W^T + bias, W [out, in]. */
function linear(
  x: Float64Array,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  rows: number,
  inputs: number,
  outputs: number,
): Float64Array {
  const y = matmul(x, weight, { m: rows, k: inputs, n: outputs, transB: true });
  for (let r = 0; r < rows; r++) for (let c = 0; c < outputs; c++) y[r * outputs + c] += bias[c];
  return y;
}
