/**
 * The parameter list in torch_peer.py's checkpoint names and shapes (PyTorch Linear layout [out, in]),
 * and where each tensor lives in one flat parameter vector. The GPU engine keeps all parameters in one
 * buffer, and gradients and AdamW moments in buffers of the same layout.
 *
 * Weight decay applies to matrices only (word embedding, qkv, out, up, down, and the learned position
 * table), not to LayerNorm weights and biases or the position scale. torch_peer's bench decays every
 * parameter because it passes `m.parameters()` to AdamW; this project follows the Cramming recipe instead.
 *
 * @module
 */
import { downInputWidth, type ModelConfig } from "./config.ts";

/**
 * What a tensor is, which decides its init and whether weight decay applies. `bias` is a linear layer's
 * bias, which only the finetuning head has (src/model/classifier.ts).
 */
export type ParamKind = "matrix" | "norm-weight" | "norm-bias" | "position-scale" | "position-table" | "bias";

/** One parameter tensor and its place in the flat vector. */
export interface ParamTensor {
  /** The checkpoint name, as torch_peer.py's `named_for_checkpoint`. */
  name: string;
  /** PyTorch's shape, `[out, in]` for a matrix. */
  shape: number[];
  /** What the tensor is: it decides its init and whether weight decay applies. */
  kind: ParamKind;
  /** Offset in elements into the flat vector, a multiple of {@linkcode PARAM_ALIGNMENT}. */
  offset: number;
  /** Number of elements (the product of the shape). */
  size: number;
  /** Whether AdamW's weight decay applies. */
  decay: boolean;
}

/** All parameter tensors in checkpoint order and the length of the flat vector that holds them. */
export interface ParamLayout {
  /** The tensors in checkpoint order. */
  tensors: ParamTensor[];
  /** Length of the flat vector, alignment padding included. */
  totalSize: number;
}

/** Tensor offsets are aligned to 64 elements (256 bytes of f32) so each can be bound as a buffer sub-range. */
export const PARAM_ALIGNMENT = 64;

/** The layout of `config`'s parameters: names, shapes, kinds and aligned offsets in the flat vector. */
export function paramLayout(config: ModelConfig): ParamLayout {
  const { vocabSize: V, hidden: H, intermediate: I, maxSeqLen: S } = config;
  const list: [string, number[], ParamKind][] = [["embeddings.word.weight", [V, H], "matrix"]];
  if (config.positions === "learned") list.push(["embeddings.position.weight", [S, H], "position-table"]);
  else list.push(["embeddings.position_scale", [1], "position-scale"]);
  list.push(["embeddings.norm.weight", [H], "norm-weight"], ["embeddings.norm.bias", [H], "norm-bias"]);
  for (let i = 0; i < config.layers; i++) {
    const p = `layers.${i}.`;
    list.push(
      [p + "attn_norm.weight", [H], "norm-weight"],
      [p + "attn_norm.bias", [H], "norm-bias"],
      [p + "attn.qkv.weight", [3 * H, H], "matrix"],
      [p + "attn.out.weight", [H, H], "matrix"],
      [p + "ffn_norm.weight", [H], "norm-weight"],
      [p + "ffn_norm.bias", [H], "norm-bias"],
      [p + "ffn.up.weight", [I, H], "matrix"],
      [p + "ffn.down.weight", [H, downInputWidth(config)], "matrix"],
    );
  }
  list.push(["final_norm.weight", [H], "norm-weight"], ["final_norm.bias", [H], "norm-bias"]);

  const tensors: ParamTensor[] = [];
  let offset = 0;
  for (const [name, shape, kind] of list) {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, kind, offset, size, decay: kind === "matrix" || kind === "position-table" });
    offset += Math.ceil(size / PARAM_ALIGNMENT) * PARAM_ALIGNMENT;
  }
  return { tensors, totalSize: offset };
}

/** The tensor called `name`; throws a `RangeError` naming it if the layout has none. */
export function paramTensor(layout: ParamLayout, name: string): ParamTensor {
  const tensor = layout.tensors.find((t) => t.name === name);
  if (!tensor) throw new RangeError(`no parameter named ${name}`);
  return tensor;
}

/** The elements of tensor `name` in `params` (a view, not a copy). */
export function paramView<T extends Float32Array | Float64Array>(
  layout: ParamLayout,
  params: T,
  name: string,
): T {
  const { offset, size } = paramTensor(layout, name);
  return params.subarray(offset, offset + size) as T;
}
