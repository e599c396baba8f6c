/**
 * The crammed-BERT MLM model on the GPU. `planModel` allocates every buffer of one (config,
 * micro-batch) shape once and records one micro-batch's forward, sparse MLM loss and backward as a list
 * of dispatches that adds the gradients into `grads`. It computes what src/reference/model.ts computes
 * in float64, in the same order; read the two side by side.
 *
 * Memory: per layer the forward keeps what the backward cannot cheaply recompute (the layer input, the
 * attention's qkv, probabilities and output, the mid-layer residual, the FFN's pre-activation and the
 * LayerNorm statistics). The LayerNorm outputs and the FFN activation are recomputed in the backward
 * into shared scratch buffers: two elementwise passes per layer instead of 2H + I floats per token per
 * layer (about 4.8 GB at the crammed shape and micro-batch 128).
 */
import { GpuError } from "../gpu/device.ts";
import { storageBuffer, uploadBuffer, writeBuffer } from "../gpu/buffers.ts";
import type { Binding, Dispatch, Kernels } from "../gpu/kernels.ts";
import { downInputWidth, headDim, type ModelConfig } from "./config.ts";
import { type ParamLayout, paramLayout, paramTensor } from "./params.ts";
import { sinusoidTable } from "../reference/ops.ts";
import { attentionBackward, attentionForward } from "./layers/attention.ts";
import { crossEntropy, gatherRows, LOSS_TOTALS_BYTES, scatterRows } from "./layers/cross_entropy.ts";
import { embeddingBackward, embeddingForward, packTokenOrder, sortTokens } from "./layers/embedding.ts";
import { layerNormBackward, layerNormForward } from "./layers/layernorm.ts";
import { geluBackward, geluForward, gluBackward, gluForward } from "./layers/activation.ts";
import { matmul, type MatmulOptions, matmulScratchBytes } from "./layers/matmul.ts";

/** One masked micro-batch as the data pipeline hands it over (see src/train/masking.ts). */
export interface ModelBatch {
  /** Token ids after masking, [batch * seq]. */
  inputIds: Uint32Array<ArrayBuffer>;
  /** Flat positions of the tokens to predict, distinct. */
  labelPositions: Uint32Array<ArrayBuffer>;
  /** The token to predict at each label position. */
  labelIds: Uint32Array<ArrayBuffer>;
}

export interface ModelShape {
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence (at most the config's maxSeqLen; default maxSeqLen). */
  seq?: number;
  /** The most label positions a micro-batch may have (the sparse head's capacity). */
  maxLabels: number;
}

/** The planned model: its buffers and the dispatches of one micro-batch. */
export interface GpuModel {
  config: ModelConfig;
  layout: ParamLayout;
  batch: number;
  seq: number;
  maxLabels: number;
  /** All parameters, flat, in `layout`. */
  params: GPUBuffer;
  /** Gradients, same layout; the micro-batch dispatches add into them. */
  grads: GPUBuffer;
  /** Loss totals {f32 sum, u32 count} that every micro-batch adds to (read with `readLossTotals`). */
  lossTotals: GPUBuffer;
  /** Forward, loss and backward of the micro-batch last written with `writeBatch`. */
  microBatch: Dispatch[];
  /**
   * Queues the upload of a micro-batch's inputs; `gradScale` multiplies its loss gradient (1/M for the
   * mean over its M labels, divided again by the micro-batches of an accumulated step). The next
   * submit of `microBatch` uses it, so write, then submit, one micro-batch at a time.
   */
  writeBatch(batch: ModelBatch, gradScale: number): void;
  /** Bytes of every buffer this plan allocated, the parameters and gradients included. */
  bytes: number;
}

/** Plans the model for `shape`: allocates its buffers and records its dispatches. */
export async function planModel(k: Kernels, config: ModelConfig, shape: ModelShape): Promise<GpuModel> {
  const gpu = k.gpu;
  const { batch, maxLabels } = shape;
  const seq = shape.seq ?? config.maxSeqLen;
  if (seq > config.maxSeqLen) {
    throw new GpuError(`model: seq ${seq} exceeds the config's maxSeqLen ${config.maxSeqLen}`);
  }
  const N = batch * seq;
  const { hidden: H, intermediate: I, vocabSize: V, heads, layers: L, normEps: eps } = config;
  const act = downInputWidth(config); // FFN activation width: I, or I/2 for gelu-glu
  const R = maxLabels;
  const layout = paramLayout(config);

  let bytes = 0;
  const f32 = (label: string, count: number): GPUBuffer => {
    bytes += count * 4;
    return storageBuffer(gpu, label, count * 4);
  };
  const p = (name: string): Binding => tensorBinding(params, layout, name);
  const g = (name: string): Binding => tensorBinding(grads, layout, name);
  const offset = (name: string): number => paramTensor(layout, name).offset;

  const params = f32("params", layout.totalSize);
  const grads = f32("grads", layout.totalSize);
  // Per micro-batch inputs, written by writeBatch.
  const ids = f32("ids", N);
  const tokenOrder = f32("token order", 3 * N + 1);
  const labelPositions = f32("label positions", R);
  const labelIds = f32("label ids", R);
  const labelCount = f32("label count", 1);
  const gradScale = f32("grad scale", 1);
  const lossTotals = f32("loss totals", LOSS_TOTALS_BYTES / 4);
  // Activations kept for the backward.
  const embedded = f32("embedded", N * H);
  const embMean = f32("embedding norm mean", N);
  const embRstd = f32("embedding norm rstd", N);
  const xs = Array.from({ length: L + 1 }, (_, l) => f32(`x${l}`, N * H));
  const saved = Array.from({ length: L }, (_, l) => ({
    mean1: f32(`layer ${l} attn norm mean`, N),
    rstd1: f32(`layer ${l} attn norm rstd`, N),
    qkv: f32(`layer ${l} qkv`, N * 3 * H),
    probs: f32(`layer ${l} probs`, batch * heads * seq * seq),
    attn: f32(`layer ${l} attention`, N * H),
    mid: f32(`layer ${l} mid residual`, N * H),
    mean2: f32(`layer ${l} ffn norm mean`, N),
    rstd2: f32(`layer ${l} ffn norm rstd`, N),
    h: f32(`layer ${l} ffn up`, N * I),
  }));
  const finalMean = f32("final norm mean", N);
  const finalRstd = f32("final norm rstd", N);
  // Scratch, shared across layers.
  const normed = f32("normed (scratch)", N * H);
  const activated = f32("activated (scratch)", N * act);
  const gathered = f32("gathered", R * H);
  const logits = f32("logits", R * V);
  const dgathered = f32("d gathered", R * H);
  const dstates = f32("d final states", N * H);
  const dx = [f32("d x (a)", N * H), f32("d x (b)", N * H)];
  const dnormed = f32("d normed", N * H);
  const dqkv = f32("d qkv", N * 3 * H);
  const dattn = f32("d attention", N * H);
  const dactivated = f32("d activated", N * act);
  const dh = f32("d ffn up", N * I);
  const dembedded = f32("d embedded", N * H);

  const sinusoid = config.positions === "scaled-sinusoidal"
    ? uploadBuffer(gpu, "sinusoid", Float32Array.from(sinusoidTable(seq, H)))
    : undefined;
  const positionTable = config.positions === "learned" ? p("embeddings.position.weight") : undefined;

  const W = (name: string) => ({ b: params, bOffset: offset(name) });
  const dW = (name: string) => ({ c: grads, cOffset: offset(name), accumulate: true });

  // The steps in recording order: a layer op planned later, or a matmul, planned once the split-K
  // scratch that all matmuls share is sized for the largest.
  const steps: ((() => Promise<Dispatch[]>) | MatmulOptions)[] = [];
  const run = (plan: () => Promise<Dispatch[]>) => steps.push(plan);
  const product = (o: MatmulOptions) => steps.push(o);

  // ---- forward ----
  run(() =>
    embeddingForward(k, {
      tokens: N,
      seq,
      hidden: H,
      vocab: V,
      ids,
      word: p("embeddings.word.weight"),
      x: embedded,
      position: sinusoid
        ? { kind: "scaled-sinusoidal", table: sinusoid, scale: p("embeddings.position_scale") }
        : { kind: "learned", table: positionTable! },
    })
  );
  run(() =>
    layerNormForward(k, {
      x: embedded,
      weight: p("embeddings.norm.weight"),
      bias: p("embeddings.norm.bias"),
      y: xs[0],
      mean: embMean,
      rstd: embRstd,
      rows: N,
      cols: H,
      eps,
    })
  );
  const attnShape = { batch, seq, heads, headDim: headDim(config) };
  const layerName = (l: number, name: string) => `layers.${l}.${name}`;
  const ffnForward = (h: GPUBuffer) => () =>
    config.ffn === "gelu-glu"
      ? gluForward(k, { h, out: activated, rows: N, inner: I })
      : geluForward(k, { x: h, y: activated, length: N * I });
  for (let l = 0; l < L; l++) {
    const s = saved[l];
    const n = (name: string) => layerName(l, name);
    const norm1 = { weight: p(n("attn_norm.weight")), bias: p(n("attn_norm.bias")), rows: N, cols: H, eps };
    run(() => layerNormForward(k, { ...norm1, x: xs[l], y: normed, mean: s.mean1, rstd: s.rstd1 }));
    product({ a: normed, ...W(n("attn.qkv.weight")), c: s.qkv, m: N, k: H, n: 3 * H, transB: true });
    run(() => attentionForward(k, { ...attnShape, qkv: s.qkv, out: s.attn, probs: s.probs }));
    product({ a: s.attn, ...W(n("attn.out.weight")), c: s.mid, add: xs[l], m: N, k: H, n: H, transB: true });
    const norm2 = { weight: p(n("ffn_norm.weight")), bias: p(n("ffn_norm.bias")), rows: N, cols: H, eps };
    run(() => layerNormForward(k, { ...norm2, x: s.mid, y: normed, mean: s.mean2, rstd: s.rstd2 }));
    product({ a: normed, ...W(n("ffn.up.weight")), c: s.h, m: N, k: H, n: I, transB: true });
    run(ffnForward(s.h));
    product({
      a: activated,
      ...W(n("ffn.down.weight")),
      c: xs[l + 1],
      add: s.mid,
      m: N,
      k: act,
      n: H,
      transB: true,
    });
  }
  run(() =>
    layerNormForward(k, {
      x: xs[L],
      weight: p("final_norm.weight"),
      bias: p("final_norm.bias"),
      y: normed,
      mean: finalMean,
      rstd: finalRstd,
      rows: N,
      cols: H,
      eps,
    })
  );

  // ---- sparse MLM loss: decode only the labelled positions with the tied word embedding ----
  const rowsShape = { tokens: N, rows: R, hidden: H };
  run(() =>
    gatherRows(k, { ...rowsShape, states: normed, positions: labelPositions, count: labelCount, gathered })
  );
  product({ a: gathered, ...W("embeddings.word.weight"), c: logits, m: R, k: H, n: V, transB: true });
  run(() =>
    crossEntropy(k, {
      rows: R,
      vocab: V,
      logits,
      labels: labelIds,
      count: labelCount,
      gradScale,
      totals: lossTotals,
    })
  );

  // ---- backward (logits now hold d logits) ----
  product({ a: logits, b: gathered, ...dW("embeddings.word.weight"), m: V, k: R, n: H, transA: true });
  product({ a: logits, ...W("embeddings.word.weight"), c: dgathered, m: R, k: V, n: H });
  run(() =>
    scatterRows(k, { ...rowsShape, dgathered, positions: labelPositions, count: labelCount, dstates })
  );
  run(() =>
    layerNormBackward(k, {
      dy: dstates,
      x: xs[L],
      weight: p("final_norm.weight"),
      mean: finalMean,
      rstd: finalRstd,
      dx: dx[0],
      dweight: g("final_norm.weight"),
      dbias: g("final_norm.bias"),
      rows: N,
      cols: H,
    })
  );
  // dx[0] holds d x_{l+1} entering layer l; the layer leaves d x_l in dx[0] again via dx[1].
  for (let l = L - 1; l >= 0; l--) {
    const s = saved[l];
    const n = (name: string) => layerName(l, name);
    const [dOut, dMid] = dx;
    // FFN block: x_{l+1} = mid + act(up(ln2(mid))) down^T
    const norm2 = { weight: p(n("ffn_norm.weight")), bias: p(n("ffn_norm.bias")), rows: N, cols: H, eps };
    run(() => layerNormForward(k, { ...norm2, x: s.mid, y: normed, mean: s.mean2, rstd: s.rstd2 }));
    run(ffnForward(s.h));
    product({ a: dOut, b: activated, ...dW(n("ffn.down.weight")), m: H, k: N, n: act, transA: true });
    product({ a: dOut, ...W(n("ffn.down.weight")), c: dactivated, m: N, k: H, n: act });
    run(() =>
      config.ffn === "gelu-glu"
        ? gluBackward(k, { dout: dactivated, h: s.h, dh, rows: N, inner: I })
        : geluBackward(k, { dy: dactivated, x: s.h, dx: dh, length: N * I })
    );
    product({ a: dh, b: normed, ...dW(n("ffn.up.weight")), m: I, k: N, n: H, transA: true });
    product({ a: dh, ...W(n("ffn.up.weight")), c: dnormed, m: N, k: I, n: H });
    run(() =>
      layerNormBackward(k, {
        dy: dnormed,
        x: s.mid,
        weight: p(n("ffn_norm.weight")),
        mean: s.mean2,
        rstd: s.rstd2,
        dx: dMid,
        residual: dOut,
        dweight: g(n("ffn_norm.weight")),
        dbias: g(n("ffn_norm.bias")),
        rows: N,
        cols: H,
      })
    );
    // Attention block: mid = x_l + attention(qkv(ln1(x_l))) out^T
    const norm1 = { weight: p(n("attn_norm.weight")), bias: p(n("attn_norm.bias")), rows: N, cols: H, eps };
    run(() => layerNormForward(k, { ...norm1, x: xs[l], y: normed, mean: s.mean1, rstd: s.rstd1 }));
    product({ a: dMid, b: s.attn, ...dW(n("attn.out.weight")), m: H, k: N, n: H, transA: true });
    product({ a: dMid, ...W(n("attn.out.weight")), c: dattn, m: N, k: H, n: H });
    run(() => attentionBackward(k, { ...attnShape, dout: dattn, qkv: s.qkv, probs: s.probs, dqkv }));
    product({ a: dqkv, b: normed, ...dW(n("attn.qkv.weight")), m: 3 * H, k: N, n: H, transA: true });
    product({ a: dqkv, ...W(n("attn.qkv.weight")), c: dnormed, m: N, k: 3 * H, n: H });
    run(() =>
      layerNormBackward(k, {
        dy: dnormed,
        x: xs[l],
        weight: p(n("attn_norm.weight")),
        mean: s.mean1,
        rstd: s.rstd1,
        dx: dOut,
        residual: dMid,
        dweight: g(n("attn_norm.weight")),
        dbias: g(n("attn_norm.bias")),
        rows: N,
        cols: H,
      })
    );
  }
  run(() =>
    layerNormBackward(k, {
      dy: dx[0],
      x: embedded,
      weight: p("embeddings.norm.weight"),
      mean: embMean,
      rstd: embRstd,
      dx: dembedded,
      dweight: g("embeddings.norm.weight"),
      dbias: g("embeddings.norm.bias"),
      rows: N,
      cols: H,
    })
  );
  run(() =>
    embeddingBackward(k, {
      tokens: N,
      seq,
      hidden: H,
      vocab: V,
      dx: dembedded,
      tokenOrder,
      dword: g("embeddings.word.weight"),
      position: sinusoid
        ? { kind: "scaled-sinusoidal", table: sinusoid, grad: g("embeddings.position_scale") }
        : { kind: "learned", grad: g("embeddings.position.weight") },
    })
  );

  const products = steps.filter((s): s is MatmulOptions => typeof s !== "function");
  const scratchBytes = Math.max(0, ...products.map((o) => matmulScratchBytes(k, o)));
  const scratch = scratchBytes > 0 ? f32("matmul split-K scratch", scratchBytes / 4) : undefined;
  const microBatch: Dispatch[] = [];
  for (const s of steps) {
    microBatch.push(...await (typeof s === "function" ? s() : matmul(k, { ...s, scratch })));
  }

  const countHost = new Uint32Array(1);
  const scaleHost = new Float32Array(1);
  const positionsHost = new Uint32Array(R);
  const labelsHost = new Uint32Array(R);
  return {
    config,
    layout,
    batch,
    seq,
    maxLabels: R,
    params,
    grads,
    lossTotals,
    microBatch,
    bytes,
    writeBatch(b: ModelBatch, scale: number): void {
      if (b.inputIds.length !== N) {
        throw new GpuError(`model batch: ${b.inputIds.length} token ids, the plan takes ${batch} x ${seq}`);
      }
      const M = b.labelPositions.length;
      if (M > R || b.labelIds.length !== M) {
        throw new GpuError(
          `model batch: ${M} labels (${b.labelIds.length} ids), the plan holds at most ${R}`,
        );
      }
      writeBuffer(gpu, ids, b.inputIds);
      writeBuffer(gpu, tokenOrder, packTokenOrder(sortTokens(b.inputIds), N));
      // Unused label slots are never read (the kernels stop at the count), so stale ones may stay.
      positionsHost.set(b.labelPositions);
      labelsHost.set(b.labelIds);
      writeBuffer(gpu, labelPositions, positionsHost.subarray(0, Math.max(M, 1)));
      writeBuffer(gpu, labelIds, labelsHost.subarray(0, Math.max(M, 1)));
      countHost[0] = M;
      writeBuffer(gpu, labelCount, countHost);
      scaleHost[0] = scale;
      writeBuffer(gpu, gradScale, scaleHost);
    },
  };
}

/** A tensor of the flat layout as a binding (offsets are 256-byte aligned, see params.ts). */
function tensorBinding(buffer: GPUBuffer, layout: ParamLayout, name: string): Binding {
  const t = paramTensor(layout, name);
  return { buffer, offset: t.offset * 4, size: t.size * 4 };
}
