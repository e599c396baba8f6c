/**
 * The classifier head's parameters (the Cramming recipe's finetuning head on the pooled states): a flat
 * vector of their own, PyTorch layout, unpadded, in this order:
 *   head.dense.weight [1024, hidden]   head.dense.bias [1024]
 *   head.out.weight   [labels, 1024]   head.out.bias   [labels]
 * The GPU classifier, the ONNX export and the float64 reference all read it from here.
 *
 * @module
 */
import type { ModelConfig } from "./config.ts";
import type { ParamTensor } from "./params.ts";

/** Width of the head's hidden layer in the Cramming recipe. */
export const HEAD_INNER = 1024;

/**
 * What the head reads of the encoder's final states: `cls`, the state of each example's first token
 * ([CLS]); or `mean`, the mean of its real tokens' states (the crammed-BERT recipe's "avg" pooler, with
 * padding left out).
 */
export type Pooling = "cls" | "mean";

/** The poolings {@linkcode Pooling} names. */
export const POOLINGS: readonly Pooling[] = ["cls", "mean"];

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
