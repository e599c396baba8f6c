/**
 * The whole crammed-BERT MLM forward and backward in float64, composed from the op references beside it (a
 * file per op family), matching torch_peer.py's model: embeddings word[ids] + positions (scale * sinusoid, or
 * a learned table) and a LayerNorm; pre-LN layers x += out(attn(qkv(ln1(x)))), x += down(act(up(ln2(x)))); a
 * final LayerNorm; a sparse MLM head that decodes only rows with a label >= 0 against the tied word embedding
 * (no bias); mean cross-entropy. Linear weights are PyTorch's [out, in], so y = x W^T.
 *
 * With `dropout` (finetuning) the encoder drops at the sites of src/model/dropout_sites.ts: after the
 * embedding LayerNorm, on the attention probabilities, and on each block's output before its residual add.
 *
 * @module
 */
import { downInputWidth, headDim, type ModelConfig } from "../model/config.ts";
import { type ParamLayout, paramLayout, paramView } from "../model/params.ts";
import { type DropoutSeeds, EMBEDDING_SITE, layerSites } from "../model/dropout_sites.ts";
import { sinusoidTable } from "../model/positions.ts";
import { matmul } from "./matmul.ts";
import { layerNormBackward, layerNormForward } from "./layernorm.ts";
import { gelu, geluBackward, gluBackward, gluForward } from "./activation.ts";
import { dropout, type DropoutOptions } from "./dropout.ts";
import { attentionBackward, attentionForward } from "./attention.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { crossEntropy } from "./cross_entropy.ts";

/** The batch shape of token ids [batch, seq], and optionally which keys attention may see. */
export interface ReferenceBatchOptions {
  batch: number;
  seq: number;
  /** [batch * seq]: 1 for a real token, 0 for padding that attention ignores as a key. */
  keyMask?: ArrayLike<number>;
  /** Finetuning's dropout; absent: none (pretraining, inference). */
  dropout?: DropoutSeeds;
}

/** The loss, how many tokens it averages over, and the gradient of every parameter in the flat layout. */
export interface ReferenceResult {
  loss: number;
  predicted: number;
  grads: Float64Array;
}

type LayerNormResult = ReturnType<typeof layerNormForward>;

/** What one layer's backward needs from its forward. */
interface LayerCache {
  input: Float64Array;
  attnNorm: LayerNormResult;
  qkv: Float64Array;
  attn: { out: Float64Array; probs: Float64Array };
  middle: Float64Array;
  ffnNorm: LayerNormResult;
  up: Float64Array;
  act: Float64Array;
}

/** What the encoder's backward needs from its forward. */
interface EncoderCache {
  tokens: number;
  ids: ArrayLike<number>;
  sinusoid: Float64Array;
  embedded: Float64Array;
  embNorm: LayerNormResult;
  layers: LayerCache[];
  last: Float64Array;
  finalNorm: LayerNormResult;
}

/** Final hidden states [batch * seq, hidden] (after the final LayerNorm) of `ids` [batch, seq]. */
export function referenceEncode(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  ids: ArrayLike<number>,
  options: ReferenceBatchOptions,
): Float64Array {
  return referenceEncoderPass(config, params, ids, options).states;
}

/** The encoder's forward, with its backward for a gradient of the final states. */
export interface ReferenceEncoderPass {
  /** Final hidden states [batch * seq, hidden]. */
  states: Float64Array;
  /** The gradient of every parameter (paramLayout) given `dstates`, the gradient of `states`. */
  backward(dstates: Float64Array): Float64Array;
}

/** Runs the encoder forward on `ids` [batch, seq], keeping what its backward needs. */
export function referenceEncoderPass(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  ids: ArrayLike<number>,
  options: ReferenceBatchOptions,
): ReferenceEncoderPass {
  const model = new ReferenceModel(config, params);
  const cache = model.forward(ids, options);
  return {
    states: cache.finalNorm.y,
    backward(dstates) {
      const grads = new Float64Array(model.layout.totalSize);
      model.backward(dstates, cache, grads, options);
      return grads;
    },
  };
}

/**
 * The MLM loss of `ids` [batch, seq] against `labels` [batch, seq] (negative = no prediction, as torch's
 * -100) and its gradient with respect to every parameter, in {@linkcode paramLayout}'s flat layout.
 */
export function referenceForwardBackward(
  config: ModelConfig,
  params: Float32Array | Float64Array,
  ids: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: ReferenceBatchOptions,
): ReferenceResult {
  const encoder = referenceEncoderPass(config, params, ids, options);
  const { hidden: H, vocabSize: V } = config;
  const tokens = options.batch * options.seq;
  if (labels.length !== tokens) {
    throw new RangeError(`labels: expected ${tokens} elements, got ${labels.length}`);
  }

  // Sparse MLM head: decode only the rows that have a label.
  const rows: number[] = [];
  for (let t = 0; t < tokens; t++) if (labels[t] >= 0) rows.push(t);
  if (rows.length === 0) throw new RangeError("labels: no token has a label >= 0, so there is no loss");
  const P = rows.length;
  const z = encoder.states;
  const selected = new Float64Array(P * H);
  rows.forEach((t, r) => selected.set(z.subarray(t * H, (t + 1) * H), r * H));
  const layout = paramLayout(config);
  const word = paramView(layout, Float64Array.from(params), "embeddings.word.weight");
  const logits = matmul(selected, word, { m: P, k: H, n: V, transB: true });
  const { loss, dlogits } = crossEntropy(logits, rows.map((t) => labels[t]), { rows: P, vocab: V });

  const dselected = matmul(dlogits, word, { m: P, k: V, n: H });
  const dz = new Float64Array(tokens * H);
  rows.forEach((t, r) => dz.set(dselected.subarray(r * H, (r + 1) * H), t * H));
  const grads = encoder.backward(dz);
  addInto(
    paramView(layout, grads, "embeddings.word.weight"),
    matmul(dlogits, selected, { m: V, k: P, n: H, transA: true }),
  );
  return { loss, predicted: P, grads };
}

/** The weights of one config as float64 views, with the encoder's forward and backward. */
class ReferenceModel {
  readonly config: ModelConfig;
  readonly layout: ParamLayout;
  readonly #params: Float64Array;

  constructor(config: ModelConfig, params: Float32Array | Float64Array) {
    this.config = config;
    this.layout = paramLayout(config);
    if (params.length !== this.layout.totalSize) {
      throw new RangeError(
        `params: expected ${this.layout.totalSize} elements for this config, got ${params.length}`,
      );
    }
    this.#params = params instanceof Float64Array ? params : Float64Array.from(params);
  }

  weight(name: string): Float64Array {
    return paramView(this.layout, this.#params, name);
  }

  forward(ids: ArrayLike<number>, options: ReferenceBatchOptions): EncoderCache {
    const { config } = this;
    const { batch, seq, keyMask } = options;
    const { hidden: H, intermediate: I } = config;
    if (seq > config.maxSeqLen) {
      throw new RangeError(`seq ${seq} exceeds the model's maxSeqLen ${config.maxSeqLen}`);
    }
    const N = batch * seq;
    const D = downInputWidth(config);

    const sinusoid = sinusoidTable(seq, H);
    const position = config.positions === "learned"
      ? this.weight("embeddings.position.weight").subarray(0, seq * H)
      : sinusoid.map((v) => v * this.weight("embeddings.position_scale")[0]);
    const embedded = embeddingForward(ids, this.weight("embeddings.word.weight"), position, {
      tokens: N,
      seq,
      hidden: H,
    });
    const embNorm = this.#norm("embeddings.norm", embedded, N);
    const layers: LayerCache[] = [];
    let x = drop(embNorm.y, dropoutAt(options, EMBEDDING_SITE));
    for (let i = 0; i < config.layers; i++) {
      const p = `layers.${i}.`;
      const sites = layerSites(i);
      const input = x;
      const attnNorm = this.#norm(p + "attn_norm", input, N);
      const qkv = matmul(attnNorm.y, this.weight(p + "attn.qkv.weight"), {
        m: N,
        k: H,
        n: 3 * H,
        transB: true,
      });
      const attn = attentionForward(qkv, {
        batch,
        seq,
        heads: config.heads,
        headDim: headDim(config),
        keyMask,
        dropout: dropoutAt(options, sites.probs),
      });
      const projected = matmul(attn.out, this.weight(p + "attn.out.weight"), {
        m: N,
        k: H,
        n: H,
        transB: true,
      });
      const middle = add(input, drop(projected, dropoutAt(options, sites.attention)));
      const ffnNorm = this.#norm(p + "ffn_norm", middle, N);
      const up = matmul(ffnNorm.y, this.weight(p + "ffn.up.weight"), { m: N, k: H, n: I, transB: true });
      const act = config.ffn === "gelu-glu" ? gluForward(up, { rows: N, inner: I }) : gelu(up);
      const down = matmul(act, this.weight(p + "ffn.down.weight"), { m: N, k: D, n: H, transB: true });
      x = add(middle, drop(down, dropoutAt(options, sites.ffn)));
      layers.push({ input, attnNorm, qkv, attn, middle, ffnNorm, up, act });
    }
    const finalNorm = this.#norm("final_norm", x, N);
    return { tokens: N, ids, sinusoid, embedded, embNorm, layers, last: x, finalNorm };
  }

  /** Accumulates into `grads` the gradient of every parameter given dz, the gradient of the final states. */
  backward(dz: Float64Array, cache: EncoderCache, grads: Float64Array, options: ReferenceBatchOptions): void {
    const { config, layout } = this;
    const { batch, seq } = options;
    const { hidden: H, intermediate: I, vocabSize: V } = config;
    const N = cache.tokens;
    const D = downInputWidth(config);
    const grad = (name: string) => paramView(layout, grads, name);

    let dx = this.#normBackward("final_norm", dz, cache.last, cache.finalNorm, N, grad);
    for (let i = config.layers - 1; i >= 0; i--) {
      const p = `layers.${i}.`;
      const c = cache.layers[i];
      const sites = layerSites(i);
      // FFN block: x = middle + drop(down(act(up(ffn_norm(middle))))).
      const ddown = drop(dx, dropoutAt(options, sites.ffn));
      addInto(grad(p + "ffn.down.weight"), matmul(ddown, c.act, { m: H, k: N, n: D, transA: true }));
      const dact = matmul(ddown, this.weight(p + "ffn.down.weight"), { m: N, k: H, n: D });
      const dup = config.ffn === "gelu-glu"
        ? gluBackward(dact, c.up, { rows: N, inner: I })
        : geluBackward(dact, c.up);
      addInto(grad(p + "ffn.up.weight"), matmul(dup, c.ffnNorm.y, { m: I, k: N, n: H, transA: true }));
      const dffnIn = matmul(dup, this.weight(p + "ffn.up.weight"), { m: N, k: I, n: H });
      dx = add(dx, this.#normBackward(p + "ffn_norm", dffnIn, c.middle, c.ffnNorm, N, grad));
      // Attention block: middle = input + drop(out(attn(qkv(attn_norm(input))))).
      const dprojected = drop(dx, dropoutAt(options, sites.attention));
      addInto(
        grad(p + "attn.out.weight"),
        matmul(dprojected, c.attn.out, { m: H, k: N, n: H, transA: true }),
      );
      const dattn = matmul(dprojected, this.weight(p + "attn.out.weight"), { m: N, k: H, n: H });
      const dqkv = attentionBackward(dattn, c.qkv, c.attn.probs, {
        batch,
        seq,
        heads: config.heads,
        headDim: headDim(config),
        dropout: dropoutAt(options, sites.probs),
      });
      addInto(
        grad(p + "attn.qkv.weight"),
        matmul(dqkv, c.attnNorm.y, { m: 3 * H, k: N, n: H, transA: true }),
      );
      const dattnIn = matmul(dqkv, this.weight(p + "attn.qkv.weight"), { m: N, k: 3 * H, n: H });
      dx = add(dx, this.#normBackward(p + "attn_norm", dattnIn, c.input, c.attnNorm, N, grad));
    }
    const dembNorm = drop(dx, dropoutAt(options, EMBEDDING_SITE));
    const dembedded = this.#normBackward("embeddings.norm", dembNorm, cache.embedded, cache.embNorm, N, grad);
    addInto(
      grad("embeddings.word.weight"),
      embeddingBackward(dembedded, cache.ids, { vocab: V, hidden: H, tokens: N }),
    );
    if (config.positions === "learned") {
      // Row p of the table is used by token p of every sequence; rows past seq get no gradient.
      const dposition = grad("embeddings.position.weight");
      for (let t = 0; t < N; t++) {
        for (let c = 0; c < H; c++) dposition[(t % seq) * H + c] += dembedded[t * H + c];
      }
    } else {
      let dscale = 0;
      for (let t = 0; t < N; t++) {
        for (let c = 0; c < H; c++) dscale += dembedded[t * H + c] * cache.sinusoid[(t % seq) * H + c];
      }
      grad("embeddings.position_scale")[0] += dscale;
    }
  }

  #norm(prefix: string, x: Float64Array, rows: number): LayerNormResult {
    return layerNormForward(x, this.weight(prefix + ".weight"), this.weight(prefix + ".bias"), {
      rows,
      cols: this.config.hidden,
      eps: this.config.normEps,
    });
  }

  /** dx of a LayerNorm, accumulating its weight and bias gradients. */
  #normBackward(
    prefix: string,
    dy: Float64Array,
    x: Float64Array,
    saved: LayerNormResult,
    rows: number,
    grad: (name: string) => Float64Array,
  ): Float64Array {
    const { dx, dweight, dbias } = layerNormBackward(
      dy,
      x,
      this.weight(prefix + ".weight"),
      saved.mean,
      saved.rstd,
      {
        rows,
        cols: this.config.hidden,
      },
    );
    addInto(grad(prefix + ".weight"), dweight);
    addInto(grad(prefix + ".bias"), dbias);
    return dx;
  }
}

/** Dropout site `index` of `options`, or undefined without dropout. */
export function dropoutAt(options: { dropout?: DropoutSeeds }, index: number): DropoutOptions | undefined {
  const dropout = options.dropout;
  if (!dropout) return undefined;
  if (index >= dropout.seeds.length) {
    throw new RangeError(`dropout: no seed for site ${index} (${dropout.seeds.length} seeds)`);
  }
  return { p: dropout.p, seed: dropout.seeds[index] };
}

/** x * keep / (1 - p) with `options`' mask; x itself without dropout. It is also its own backward. */
export function drop(x: Float64Array, options: DropoutOptions | undefined): Float64Array {
  return options ? dropout(x, options).y : x;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

function addInto(target: Float64Array, source: Float64Array): void {
  for (let i = 0; i < target.length; i++) target[i] += source[i];
}
