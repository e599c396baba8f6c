/**
 * The crammed-BERT MLM model on the GPU. `planModel` allocates every buffer of one (config,
 * micro-batch) shape once and records one micro-batch's forward (encoder.ts), sparse MLM loss and
 * backward as a list of dispatches that adds the gradients into `grads`. It computes what
 * src/reference/model.ts computes in float64, in the same order; read the two side by side.
 */
import { type StorageType, writeBuffer } from "../gpu/buffers.ts";
import type { Dispatch, Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "./config.ts";
import { type ParamLayout, paramLayout, paramTensor } from "./params.ts";
import {
  allocateEncoder,
  recordEncoderBackward,
  recordEncoderForward,
  writeEncoderInputs,
} from "./encoder.ts";
import { Recorder } from "./recorder.ts";
import { dropoutSiteCount } from "./dropout_sites.ts";
import { castToF16 } from "./layers/convert.ts";
import { crossEntropy, gatherRows, LOSS_TOTALS_BYTES, scatterRows } from "./layers/cross_entropy.ts";
import { INITIAL_LOSS_SCALE, LOSS_SCALE_BYTES, writeLossScale } from "./loss_scale.ts";
import { GpuError } from "../gpu/device.ts";

/** One masked micro-batch as the data pipeline hands it over (see src/train/masking.ts). */
export interface ModelBatch {
  /** Token ids after masking, [batch * seq]. */
  inputIds: Uint32Array<ArrayBuffer>;
  /** Flat positions of the tokens to predict, distinct. */
  labelPositions: Uint32Array<ArrayBuffer>;
  /** The token to predict at each label position. */
  labelIds: Uint32Array<ArrayBuffer>;
}

/** The shape {@linkcode planModel} allocates for. */
export interface ModelShape {
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence (at most the config's maxSeqLen; default maxSeqLen). */
  seq?: number;
  /** The most label positions a micro-batch may have (the sparse head's capacity). */
  maxLabels: number;
  /**
   * Storage of activations and of the products' parameter copy (see encoder.ts); default f32. f16 also
   * scales the loss dynamically (`lossScale`), so that small gradients survive f16.
   */
  storage?: StorageType;
  /**
   * Dropout probability in the encoder (src/model/dropout_sites.ts: embeddings, attention probabilities,
   * block outputs); default 0, the recipe's, which plans none. With it every micro-batch needs its seeds
   * (`writeSeeds`).
   */
  dropout?: number;
}

/** The planned model: its buffers and the dispatches of one micro-batch. */
export interface GpuModel {
  /** The model's shape. */
  config: ModelConfig;
  /** The parameter layout of `params` and `grads`. */
  layout: ParamLayout;
  /** Sequences per micro-batch. */
  batch: number;
  /** Tokens per sequence. */
  seq: number;
  /** The most label positions a micro-batch may have. */
  maxLabels: number;
  /** All parameters, flat, in `layout`. */
  params: GPUBuffer;
  /** Gradients, same layout; the micro-batch dispatches add into them. */
  grads: GPUBuffer;
  /** Loss totals {f32 sum, u32 count} that every micro-batch adds to (read with `readLossTotals`). */
  lossTotals: GPUBuffer;
  /**
   * With f16 storage: the loss scale that multiplies every gradient (cross_entropy.ts), which the
   * optimizer divides out and adjusts (src/train/optimizer.ts).
   */
  lossScale?: GPUBuffer;
  /** Forward, loss and backward of the micro-batch last written with `writeBatch`. */
  microBatch: Dispatch[];
  /**
   * Queues the upload of a micro-batch's inputs; `gradScale` multiplies its loss gradient (1/M for the
   * mean over its M labels, divided again by the micro-batches of an accumulated step). The next
   * submit of `microBatch` uses it, so write, then submit, one micro-batch at a time.
   */
  writeBatch(batch: ModelBatch, gradScale: number): void;
  /**
   * With dropout: queues the dropout seeds of the next micro-batch, one u32 per site
   * (`dropoutSiteCount`); the MLM head has no dropout, so the classifier head's site is unused.
   */
  writeSeeds(seeds: Uint32Array<ArrayBuffer>): void;
  /** Bytes of every buffer this plan allocated, the parameters and gradients included. */
  bytes: number;
  /** Frees every buffer of the plan. */
  destroy(): void;
}

/** Plans the model for `shape`: allocates its buffers and records its dispatches. */
export async function planModel(k: Kernels, config: ModelConfig, shape: ModelShape): Promise<GpuModel> {
  const gpu = k.gpu;
  const { batch, maxLabels: R, storage = "f32", dropout = 0 } = shape;
  if (!(dropout >= 0 && dropout < 1)) throw new GpuError(`model dropout ${dropout}: expected [0, 1)`);
  const seq = shape.seq ?? config.maxSeqLen;
  const N = batch * seq;
  const { hidden: H, vocabSize: V } = config;
  const layout = paramLayout(config);
  const rec = new Recorder(k, { sizedBy: "--micro-batch" });
  const params = rec.f32("params", layout.totalSize);
  const grads = rec.f32("grads", layout.totalSize);
  const enc = allocateEncoder(rec, config, { layout, params, grads }, {
    batch,
    seq,
    storage,
    dropout: dropout > 0,
  });
  // Per micro-batch inputs of the head, written by writeBatch.
  const labelPositions = rec.f32("label positions", R);
  const labelIds = rec.f32("label ids", R);
  const labelCount = rec.f32("label count", 1);
  const gradScale = rec.f32("grad scale", 1);
  const lossTotals = rec.f32("loss totals", LOSS_TOTALS_BYTES / 4);
  const lossScale = storage === "f16" ? rec.f32("loss scale", LOSS_SCALE_BYTES / 4) : undefined;
  if (lossScale) writeLossScale(gpu, lossScale, INITIAL_LOSS_SCALE);
  const gathered = rec.floats("gathered", R * H, storage);
  const logits = rec.f32("logits", R * V);
  const dgathered = rec.f32("d gathered", R * H);
  // With f16 storage on a device with matrix units, the backward's products read d logits rounded to f16,
  // which puts them on the matrix units.
  const dlogits = storage === "f16" && gpu.subgroupMatrix
    ? rec.floats("d logits (f16)", R * V, "f16")
    : logits;

  const word = paramTensor(layout, "embeddings.word.weight").offset;
  const pass = { seq, dropout };
  const steps = rec.recording();
  recordEncoderForward(steps, enc, pass);

  // ---- sparse MLM loss: decode only the labelled positions with the tied word embedding ----
  const rowsShape = { tokens: N, rows: R, hidden: H };
  steps.run(() =>
    gatherRows(k, {
      ...rowsShape,
      states: enc.states,
      positions: labelPositions,
      count: labelCount,
      gathered,
    })
  );
  const decoder = { b: enc.productParams, bOffset: word };
  steps.product({ a: gathered, ...decoder, c: logits, m: R, k: H, n: V, transB: true });
  steps.run(() =>
    crossEntropy(k, {
      rows: R,
      vocab: V,
      logits,
      labels: labelIds,
      count: labelCount,
      gradScale,
      lossScale,
      totals: lossTotals,
    })
  );

  // ---- backward (logits now hold d logits) ----
  if (dlogits !== logits) steps.run(() => castToF16(k, { x: logits, y: dlogits, length: R * V }));
  steps.product({
    a: dlogits,
    b: gathered,
    c: grads,
    cOffset: word,
    accumulate: true,
    m: V,
    k: R,
    n: H,
    transA: true,
  });
  steps.product({ a: dlogits, ...decoder, c: dgathered, m: R, k: V, n: H });
  steps.run(() =>
    scatterRows(k, {
      ...rowsShape,
      dgathered,
      positions: labelPositions,
      count: labelCount,
      dstates: enc.dstates,
    })
  );
  recordEncoderBackward(steps, enc, pass);
  const [microBatch] = await rec.finish();

  const countHost = new Uint32Array(1);
  const scaleHost = new Float32Array(1);
  const siteCount = dropoutSiteCount(config);
  const positionsHost = new Uint32Array(R);
  const labelsHost = new Uint32Array(R);
  // Which token positions the batch being written labels (cleared again after each check).
  const labelled = new Uint8Array(N);
  return {
    config,
    layout,
    batch,
    seq,
    maxLabels: R,
    params,
    grads,
    lossTotals,
    lossScale,
    microBatch,
    bytes: rec.bytes,
    destroy: () => rec.destroy(),
    writeBatch(b: ModelBatch, scale: number): void {
      const M = b.labelPositions.length;
      if (M > R || b.labelIds.length !== M) {
        throw new GpuError(
          `model batch: ${M} labels (${b.labelIds.length} ids), the plan holds at most ${R}`,
        );
      }
      // The loss scatters by position and gathers by id: each position once, inside the batch and vocabulary.
      let bad = -1;
      for (let i = 0; i < M && bad < 0; i++) {
        const position = b.labelPositions[i];
        if (!(position < N) || labelled[position] || !(b.labelIds[i] < V)) bad = i;
        else labelled[position] = 1;
      }
      for (const position of b.labelPositions) if (position < N) labelled[position] = 0;
      if (bad >= 0) {
        throw new GpuError(
          `model batch: label ${bad} at position ${b.labelPositions[bad]} with id ${b.labelIds[bad]}, ` +
            `expected distinct positions below ${N} and ids below ${V}`,
        );
      }
      writeEncoderInputs(gpu, enc, seq, b.inputIds);
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
    writeSeeds(seeds: Uint32Array<ArrayBuffer>): void {
      if (!enc.seeds) throw new GpuError("model: planned without dropout, it takes no seeds");
      if (seeds.length !== siteCount) {
        throw new GpuError(`model: ${seeds.length} dropout seeds, the model has ${siteCount} sites`);
      }
      writeBuffer(gpu, enc.seeds, seeds);
    },
  };
}
