/**
 * The crammed-BERT encoder on the GPU: embeddings and their LayerNorm, the pre-LN layers, the final
 * LayerNorm, forward and backward. The MLM model (model.ts) and the finetuning classifier (classifier.ts)
 * put their heads on it. It computes what src/reference/model.ts computes in float64, in the same order;
 * read the two side by side.
 *
 * {@linkcode allocateEncoder} makes the buffers once for a capacity (batch x seq); the forward and
 * backward are then recorded for a pass of any seq up to it (the classifier plans several lengths on the
 * same buffers), with or without the key-padding mask and dropout that finetuning adds. Without dropout
 * a block's output projection adds the residual itself; with it, the projection goes to a scratch buffer
 * and a dropout pass adds it to the residual stream.
 *
 * Storage: with `storage: "f16"` the activations that feed or leave matrix products (the LayerNorm outputs,
 * qkv, attention probabilities and output, the FFN's pre-activation and activation, and their gradients)
 * are f16. On a device with matrix units the products read an f16 copy of the parameters that each forward
 * refreshes first (the units multiply f16 by f16); elsewhere they read the f32 parameters themselves, which
 * saves the copy's memory and its pass, and the widening of the weights in every tile load. The residual
 * stream, its gradient, the LayerNorm statistics, the parameters and their gradients stay f32, and every
 * kernel computes in f32 (PyTorch's mixed precision, with f16 storage instead of bf16 tensor cores).
 *
 * Memory: per layer the forward keeps what the backward cannot cheaply recompute (the layer input, the
 * attention's qkv, probabilities and output, the mid-layer residual, the FFN's pre-activation and the
 * LayerNorm statistics). The LayerNorm outputs and the FFN activation are recomputed in the backward
 * into shared scratch buffers: three recomputation passes per layer (two LayerNorms, one activation)
 * instead of 2H + I floats per token per layer (about 4.8 GB at the crammed shape and micro-batch 128).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { GpuError } from "../gpu/device.ts";
import { type StorageType, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Binding } from "../gpu/kernels.ts";
import { downInputWidth, headDim, type ModelConfig } from "./config.ts";
import { dropoutSiteCount, EMBEDDING_SITE, layerSites } from "./dropout_sites.ts";
import { type ParamLayout, paramTensor } from "./params.ts";
import type { Recorder, Recording } from "./recorder.ts";
import { sinusoidTable } from "./positions.ts";
import { attentionBackward, attentionForward } from "./layers/attention.ts";
import { dropoutBackward, dropoutForward } from "./layers/dropout.ts";
import { embeddingBackward, embeddingForward, packTokenOrder, sortTokens } from "./layers/embedding.ts";
import { layerNormBackward, layerNormForward } from "./layers/layernorm.ts";
import { geluBackward, geluForward, gluBackward, gluForward } from "./layers/activation.ts";
import { castToF16 } from "./layers/convert.ts";

/** The capacity of an encoder's buffers and the optional parts finetuning needs. */
export interface EncoderOptions {
  batch: number;
  /** The longest sequence a pass may have, at most the config's maxSeqLen. */
  seq: number;
  /** Allocate a key-padding mask (finetuning's padded batches). */
  keyMask?: boolean;
  /** Allocate what dropout needs: the step's seeds and the blocks' scratch. */
  dropout?: boolean;
  /** How activations and the products' parameter copy are stored (see above); default f32. */
  storage?: StorageType;
}

/** An encoder's buffers. Everything but the inputs and `states`/`dstates` is internal to the passes. */
export interface EncoderBuffers {
  config: ModelConfig;
  layout: ParamLayout;
  batch: number;
  /** The capacity in tokens per sequence. */
  seq: number;
  params: GPUBuffer;
  grads: GPUBuffer;
  /** What the matrix products read as parameters: `params`, or with f16 storage on matrix units its f16 copy. */
  productParams: GPUBuffer;
  /** Inputs, written by {@linkcode writeEncoderInputs}: token ids and their sort for the backward. */
  ids: GPUBuffer;
  tokenOrder: GPUBuffer;
  /** [batch * seq] u32, 1 for a real token and 0 for padding; with `keyMask` only. */
  keyMask?: GPUBuffer;
  /** u32 per dropout site (dropout_sites.ts), rewritten every step; with `dropout` only. */
  seeds?: GPUBuffer;
  /** After a forward: the final states [tokens, hidden]. A scratch buffer the backward reuses. */
  states: GPUBuffer;
  /** The backward's input: the gradient of the final states [tokens, hidden], overwritten by it. */
  dstates: GPUBuffer;
  embedded: GPUBuffer;
  embNorm: Moments;
  /** Layer inputs: xs[l] enters layer l, xs[layers] enters the final LayerNorm. */
  xs: GPUBuffer[];
  saved: LayerBuffers[];
  finalNorm: Moments;
  activated: GPUBuffer;
  dx: [GPUBuffer, GPUBuffer];
  dnormed: GPUBuffer;
  dqkv: GPUBuffer;
  dattn: GPUBuffer;
  dactivated: GPUBuffer;
  dh: GPUBuffer;
  dembedded: GPUBuffer;
  /** [batch, heads, seq, seq]: the attention's dropped probabilities or their gradient (scratch). */
  scores: GPUBuffer;
  /** With dropout: a dropped tensor before its dropout (forward), or the gradient of it (backward). */
  projected?: GPUBuffer;
  sinusoid?: GPUBuffer;
  /**
   * With f16 storage on a device with matrix units: the residual stream's gradient rounded to f16 for the
   * backward of the blocks' output projections, whose products then run on the matrix units too.
   */
  dresidual?: GPUBuffer;
}

/** The per-token statistics a LayerNorm's forward keeps for its backward. */
export interface Moments {
  mean: GPUBuffer;
  rstd: GPUBuffer;
}

/** What one layer's forward keeps for its backward. */
export interface LayerBuffers {
  norm1: Moments;
  qkv: GPUBuffer;
  probs: GPUBuffer;
  attn: GPUBuffer;
  mid: GPUBuffer;
  norm2: Moments;
  h: GPUBuffer;
}

/** One recorded pass: its sequence length (<= the capacity) and dropout probability (0: none). */
export interface EncoderPass {
  seq: number;
  dropout: number;
}

/**
 * Allocates the encoder's buffers for `options`' capacity; `params` and `grads` hold the parameters
 * and gradients in `layout`, which must contain the encoder's tensors (paramLayout's names).
 */
export function allocateEncoder(
  rec: Recorder,
  config: ModelConfig,
  weights: { layout: ParamLayout; params: GPUBuffer; grads: GPUBuffer },
  options: EncoderOptions,
): EncoderBuffers {
  const { batch, seq, storage = "f32" } = options;
  if (seq > config.maxSeqLen) {
    throw new GpuError(`model: seq ${seq} exceeds the config's maxSeqLen ${config.maxSeqLen}`);
  }
  if (storage === "f16" && !rec.k.gpu.hasF16) {
    throw new GpuError(
      `model: f16 storage needs the adapter's shader-f16 feature, which ${rec.k.gpu.name} lacks`,
    );
  }
  const N = batch * seq;
  const { hidden: H, intermediate: I, heads, layers: L } = config;
  const actWidth = downInputWidth(config); // FFN activation width: I, or I/2 for gelu-glu
  const f32 = (label: string, count: number) => rec.f32(label, count);
  const act = (label: string, count: number) => rec.floats(label, count, storage);
  const moments = (label: string) => ({ mean: f32(`${label} mean`, N), rstd: f32(`${label} rstd`, N) });
  return {
    config,
    ...weights,
    productParams: storage === "f16" && rec.k.gpu.subgroupMatrix
      ? rec.floats("params (f16 copy)", weights.layout.totalSize, "f16")
      : weights.params,
    batch,
    seq,
    // Per batch inputs.
    ids: f32("ids", N),
    tokenOrder: f32("token order", 3 * N + 1),
    keyMask: options.keyMask ? f32("key mask", N) : undefined,
    seeds: options.dropout ? f32("dropout seeds", dropoutSiteCount(config)) : undefined,
    // Activations kept for the backward.
    embedded: f32("embedded", N * H),
    embNorm: moments("embedding norm"),
    xs: Array.from({ length: L + 1 }, (_, l) => f32(`x${l}`, N * H)),
    saved: Array.from({ length: L }, (_, l) => ({
      norm1: moments(`layer ${l} attn norm`),
      qkv: act(`layer ${l} qkv`, N * 3 * H),
      probs: act(`layer ${l} probs`, batch * heads * seq * seq),
      attn: act(`layer ${l} attention`, N * H),
      mid: f32(`layer ${l} mid residual`, N * H),
      norm2: moments(`layer ${l} ffn norm`),
      h: act(`layer ${l} ffn up`, N * I),
    })),
    finalNorm: moments("final norm"),
    // Scratch, shared across layers.
    states: act("normed (scratch)", N * H),
    activated: act("activated (scratch)", N * actWidth),
    dstates: f32("d final states", N * H),
    dx: [f32("d x (a)", N * H), f32("d x (b)", N * H)],
    dnormed: act("d normed", N * H),
    dqkv: act("d qkv", N * 3 * H),
    dattn: act("d attention", N * H),
    dactivated: act("d activated", N * actWidth),
    dh: act("d ffn up", N * I),
    dembedded: f32("d embedded", N * H),
    scores: act("attention scores (scratch)", batch * heads * seq * seq),
    projected: options.dropout ? f32("projected (scratch)", N * H) : undefined,
    sinusoid: config.positions === "scaled-sinusoidal"
      ? uploadBuffer(rec.k.gpu, "sinusoid", Float32Array.from(sinusoidTable(seq, H)))
      : undefined,
    dresidual: storage === "f16" && rec.k.gpu.subgroupMatrix ? act("d residual (f16)", N * H) : undefined,
  };
}

/**
 * Queues the upload of a batch's inputs for a pass of `seq` tokens per sequence: `ids` [batch * seq],
 * and the key mask [batch * seq] if the encoder has one (then required).
 */
export function writeEncoderInputs(
  gpu: Gpu,
  enc: EncoderBuffers,
  seq: number,
  ids: Uint32Array<ArrayBuffer>,
  keyMask?: Uint32Array<ArrayBuffer>,
): void {
  const N = enc.batch * seq;
  if (ids.length !== N) {
    throw new GpuError(`model batch: ${ids.length} token ids, the plan takes ${enc.batch} x ${seq}`);
  }
  writeBuffer(gpu, enc.ids, ids);
  writeBuffer(gpu, enc.tokenOrder, packTokenOrder(sortTokens(ids), N));
  if (enc.keyMask) {
    if (keyMask?.length !== N) {
      throw new GpuError(
        `model batch: a key mask of ${N} values is needed, got ${keyMask?.length ?? "none"}`,
      );
    }
    writeBuffer(gpu, enc.keyMask, keyMask);
  }
}

/** Records the forward: embeddings to `enc.states`. */
export function recordEncoderForward(rec: Recording, enc: EncoderBuffers, pass: EncoderPass): void {
  const { k } = rec;
  const { config, params, xs, saved, states: normed, activated } = enc;
  const { N, seq, H, I, act } = passShape(enc, pass);
  const p = (name: string) => tensorBinding(params, enc.layout, name);
  const W = (name: string) => ({ b: enc.productParams, bOffset: paramTensor(enc.layout, name).offset });
  const norm = (prefix: string, x: GPUBuffer, y: GPUBuffer, moments: Moments) =>
    recordNorm(rec, enc, N, prefix, { x, y, moments });
  const dropout = dropoutOf(enc, pass);

  if (enc.productParams !== params) {
    rec.run(() => castToF16(k, { x: params, y: enc.productParams, length: enc.layout.totalSize }));
  }
  rec.run(() =>
    embeddingForward(k, {
      tokens: N,
      seq,
      hidden: H,
      vocab: config.vocabSize,
      ids: enc.ids,
      word: p("embeddings.word.weight"),
      x: enc.embedded,
      position: enc.sinusoid
        ? { kind: "scaled-sinusoidal", table: enc.sinusoid, scale: p("embeddings.position_scale") }
        : { kind: "learned", table: p("embeddings.position.weight") },
    })
  );
  if (dropout) {
    // Through the f32 scratch of the block outputs (free until the first block): dropout's buffers are f32.
    const site = dropout.site(EMBEDDING_SITE, N * H);
    norm("embeddings.norm", enc.embedded, dropout.projected, enc.embNorm);
    rec.run(() => dropoutForward(k, { ...site, x: dropout.projected, y: xs[0] }));
  } else {
    norm("embeddings.norm", enc.embedded, xs[0], enc.embNorm);
  }
  const attnShape = {
    batch: enc.batch,
    seq,
    heads: config.heads,
    headDim: headDim(config),
    keyMask: enc.keyMask,
    scratch: enc.scores,
  };
  // A block's output projection: c = residual + a W^T, with the projection dropped first under dropout.
  const blockOutput = (
    a: GPUBuffer,
    weight: string,
    inner: number,
    residual: GPUBuffer,
    c: GPUBuffer,
    site: number,
  ) => {
    if (!dropout) {
      rec.product({ a, ...W(weight), c, add: residual, m: N, k: inner, n: H, transB: true });
      return;
    }
    rec.product({ a, ...W(weight), c: dropout.projected, m: N, k: inner, n: H, transB: true });
    rec.run(() => dropoutForward(k, { ...dropout.site(site, N * H), x: dropout.projected, y: c, residual }));
  };
  for (let l = 0; l < config.layers; l++) {
    const s = saved[l];
    const n = (name: string) => `layers.${l}.${name}`;
    const sites = layerSites(l);
    norm(n("attn_norm"), xs[l], normed, s.norm1);
    rec.product({ a: normed, ...W(n("attn.qkv.weight")), c: s.qkv, m: N, k: H, n: 3 * H, transB: true });
    rec.run(() =>
      attentionForward(k, {
        ...attnShape,
        qkv: s.qkv,
        out: s.attn,
        probs: s.probs,
        dropout: dropout?.probs(sites.probs),
      })
    );
    blockOutput(s.attn, n("attn.out.weight"), H, xs[l], s.mid, sites.attention);
    norm(n("ffn_norm"), s.mid, normed, s.norm2);
    rec.product({ a: normed, ...W(n("ffn.up.weight")), c: s.h, m: N, k: H, n: I, transB: true });
    rec.run(() => ffnForward(rec, enc, s.h, N));
    blockOutput(activated, n("ffn.down.weight"), act, s.mid, xs[l + 1], sites.ffn);
  }
  norm("final_norm", xs[config.layers], normed, enc.finalNorm);
}

/**
 * Records the backward from `enc.dstates` (the gradient of the final states), adding every parameter's
 * gradient into `enc.grads`. The forward of the same pass must have run since the last backward.
 */
export function recordEncoderBackward(rec: Recording, enc: EncoderBuffers, pass: EncoderPass): void {
  const { k } = rec;
  const { config, grads, xs, saved, states: normed, activated, dx } = enc;
  const { N, seq, H, I, act } = passShape(enc, pass);
  const g = (name: string) => tensorBinding(grads, enc.layout, name);
  const norm = (prefix: string, x: GPUBuffer, y: GPUBuffer, moments: Moments) =>
    recordNorm(rec, enc, N, prefix, { x, y, moments });
  const normBackward = (prefix: string, args: NormBackward) => recordNormBackward(rec, enc, N, prefix, args);
  const linearBackward = (weight: string, args: LinearBackward) =>
    recordLinearBackward(rec, enc, N, weight, args);
  const dropout = dropoutOf(enc, pass);
  // The gradient reaching a dropped tensor from that of its dropped output (itself without dropout).
  const undrop = (dy: GPUBuffer, site: number): GPUBuffer => {
    if (!dropout) return dy;
    rec.run(() => dropoutBackward(k, { ...dropout.site(site, N * H), dy, dx: dropout.projected }));
    return dropout.projected;
  };
  // The f32 gradient of an output projection as its backward's products read it: rounded to f16 where
  // that puts them on the matrix units (see `dresidual`).
  const productGrad = (dy: GPUBuffer): GPUBuffer => {
    const { dresidual } = enc;
    if (!dresidual) return dy;
    rec.run(() => castToF16(k, { x: dy, y: dresidual, length: N * H }));
    return dresidual;
  };

  normBackward("final_norm", { x: xs[config.layers], moments: enc.finalNorm, dy: enc.dstates, dx: dx[0] });
  // dx[0] holds d x_{l+1} entering layer l; the layer leaves d x_l in dx[0] again via dx[1].
  const [dOut, dMid] = dx;
  const attnShape = {
    batch: enc.batch,
    seq,
    heads: config.heads,
    headDim: headDim(config),
    scratch: enc.scores,
  };
  for (let l = config.layers - 1; l >= 0; l--) {
    const s = saved[l];
    const n = (name: string) => `layers.${l}.${name}`;
    const sites = layerSites(l);
    // FFN block: x_{l+1} = mid + drop(act(up(ln2(mid))) down^T)
    norm(n("ffn_norm"), s.mid, normed, s.norm2);
    rec.run(() => ffnForward(rec, enc, s.h, N));
    const dDown = productGrad(undrop(dOut, sites.ffn));
    linearBackward(n("ffn.down.weight"), {
      dy: dDown,
      x: activated,
      dx: enc.dactivated,
      inner: act,
      outer: H,
    });
    rec.run(() =>
      config.ffn === "gelu-glu"
        ? gluBackward(k, { dout: enc.dactivated, h: s.h, dh: enc.dh, rows: N, inner: I })
        : geluBackward(k, { dy: enc.dactivated, x: s.h, dx: enc.dh, length: N * I })
    );
    linearBackward(n("ffn.up.weight"), { dy: enc.dh, x: normed, dx: enc.dnormed, inner: H, outer: I });
    normBackward(n("ffn_norm"), { x: s.mid, moments: s.norm2, dy: enc.dnormed, dx: dMid, residual: dOut });
    // Attention block: mid = x_l + drop(attention(qkv(ln1(x_l))) out^T)
    norm(n("attn_norm"), xs[l], normed, s.norm1);
    const dProjected = productGrad(undrop(dMid, sites.attention));
    linearBackward(n("attn.out.weight"), { dy: dProjected, x: s.attn, dx: enc.dattn, inner: H, outer: H });
    rec.run(() =>
      attentionBackward(k, {
        ...attnShape,
        dout: enc.dattn,
        qkv: s.qkv,
        probs: s.probs,
        dqkv: enc.dqkv,
        dropout: dropout?.probs(sites.probs),
      })
    );
    linearBackward(n("attn.qkv.weight"), {
      dy: enc.dqkv,
      x: normed,
      dx: enc.dnormed,
      inner: H,
      outer: 3 * H,
    });
    normBackward(n("attn_norm"), { x: xs[l], moments: s.norm1, dy: enc.dnormed, dx: dOut, residual: dMid });
  }
  const dEmbNorm = undrop(dx[0], EMBEDDING_SITE);
  normBackward("embeddings.norm", { x: enc.embedded, moments: enc.embNorm, dy: dEmbNorm, dx: enc.dembedded });
  rec.run(() =>
    embeddingBackward(k, {
      tokens: N,
      seq,
      hidden: H,
      vocab: config.vocabSize,
      dx: enc.dembedded,
      tokenOrder: enc.tokenOrder,
      dword: g("embeddings.word.weight"),
      position: enc.sinusoid
        ? { kind: "scaled-sinusoidal", table: enc.sinusoid, grad: g("embeddings.position_scale") }
        : { kind: "learned", grad: g("embeddings.position.weight") },
    })
  );
}

/** Records LayerNorm `prefix` (e.g. "final_norm") over `rows` tokens: y = norm(x), keeping its moments. */
function recordNorm(
  rec: Recording,
  enc: EncoderBuffers,
  rows: number,
  prefix: string,
  { x, y, moments }: { x: GPUBuffer; y: GPUBuffer; moments: Moments },
): void {
  const p = (name: string) => tensorBinding(enc.params, enc.layout, `${prefix}.${name}`);
  const { hidden: cols, normEps: eps } = enc.config;
  rec.run(() =>
    layerNormForward(rec.k, { x, y, ...moments, weight: p("weight"), bias: p("bias"), rows, cols, eps })
  );
}

/** What {@linkcode recordNormBackward} reads and writes. */
interface NormBackward {
  /** The forward's input and the moments it kept. */
  x: GPUBuffer;
  moments: Moments;
  /** The gradient of the output, and the gradient of x (plus `residual`, when given) written from it. */
  dy: GPUBuffer;
  dx: GPUBuffer;
  residual?: GPUBuffer;
}

/** Records LayerNorm `prefix`'s backward over `rows` tokens, adding its weight and bias gradients. */
function recordNormBackward(
  rec: Recording,
  enc: EncoderBuffers,
  rows: number,
  prefix: string,
  { x, moments, dy, dx, residual }: NormBackward,
): void {
  const { params, grads, layout, config } = enc;
  rec.run(() =>
    layerNormBackward(rec.k, {
      dy,
      x,
      weight: tensorBinding(params, layout, `${prefix}.weight`),
      ...moments,
      dx,
      residual,
      dweight: tensorBinding(grads, layout, `${prefix}.weight`),
      dbias: tensorBinding(grads, layout, `${prefix}.bias`),
      rows,
      cols: config.hidden,
    })
  );
}

/** What {@linkcode recordLinearBackward} reads and writes for a projection y = x W^T, W [outer, inner]. */
export interface LinearBackward {
  dy: GPUBuffer;
  x: GPUBuffer;
  dx: GPUBuffer;
  inner: number;
  outer: number;
}

/**
 * Records the backward of projection `weight` (a tensor of the encoder's layout) over `rows` tokens:
 * dW += dy^T x, then dx = dy W. The classifier's head uses it too.
 */
export function recordLinearBackward(
  rec: Recording,
  enc: EncoderBuffers,
  rows: number,
  weight: string,
  { dy, x, dx, inner, outer }: LinearBackward,
): void {
  const offset = paramTensor(enc.layout, weight).offset;
  rec.product({
    a: dy,
    b: x,
    c: enc.grads,
    cOffset: offset,
    accumulate: true,
    m: outer,
    k: rows,
    n: inner,
    transA: true,
  });
  rec.product({ a: dy, b: enc.productParams, bOffset: offset, c: dx, m: rows, k: outer, n: inner });
}

/** A tensor of the flat layout as a binding (offsets are 256-byte aligned, see params.ts). */
export function tensorBinding(buffer: GPUBuffer, layout: ParamLayout, name: string): Binding {
  const t = paramTensor(layout, name);
  return { buffer, offset: t.offset * 4, size: t.size * 4 };
}

function passShape(enc: EncoderBuffers, pass: EncoderPass) {
  const { config } = enc;
  if (!Number.isInteger(pass.seq) || pass.seq < 1 || pass.seq > enc.seq) {
    throw new GpuError(`encoder pass: seq ${pass.seq}, the buffers hold 1..${enc.seq}`);
  }
  return {
    N: enc.batch * pass.seq,
    seq: pass.seq,
    H: config.hidden,
    I: config.intermediate,
    act: downInputWidth(config),
  };
}

/** The dropout sites of a pass with dropout, or undefined without. */
function dropoutOf(enc: EncoderBuffers, pass: EncoderPass) {
  if (pass.dropout === 0) return undefined;
  const { seeds, projected } = enc;
  if (!seeds || !projected) {
    throw new GpuError("encoder pass: dropout needs buffers allocated with the dropout option");
  }
  const p = pass.dropout;
  return {
    projected,
    site: (seedIndex: number, count: number) => ({ count, p, seeds, seedIndex }),
    probs: (seedIndex: number) => ({ p, seeds, seedIndex }),
  };
}

function ffnForward(rec: Recording, enc: EncoderBuffers, h: GPUBuffer, N: number) {
  const { config, activated } = enc;
  return config.ffn === "gelu-glu"
    ? gluForward(rec.k, { h, out: activated, rows: N, inner: config.intermediate })
    : geluForward(rec.k, { x: h, y: activated, length: N * config.intermediate });
}
