/**
 * The finetuning classifier on the GPU: the encoder (encoder.ts) with a key-padding mask and dropout,
 * then the Cramming recipe's head on each sequence's pooled final states (`pooling`: the [CLS] state, or
 * the mean over the real tokens): Linear(hidden -> 1024) + bias, tanh,
 * dropout, Linear(1024 -> labels) + bias, and the mean cross-entropy (or squared error for a one-output
 * regression head) over the batch. It computes what src/reference/classifier.ts computes in float64.
 *
 * One flat buffer holds the encoder's parameters followed by the head's ({@linkcode classifierLayout}),
 * so one gradient norm and one AdamW update cover both.
 *
 * Sequence lengths: a batch is padded to the shortest planned length that holds its longest example
 * (`seqs`, e.g. 32, 64 and 128), and every length is planned once on the buffers of the longest. GLUE's
 * examples are mostly short, and a batch of 16 x 32 tokens costs about a quarter of 16 x 128. Padding
 * changes nothing but the cost: padded keys get zero attention and padded rows no gradient.
 *
 * A batch may hold fewer examples than the plan's batch (the last of an epoch): rows past `count` are
 * padding, left out of the loss, its mean and the gradients.
 *
 * @module
 */
import { type StorageType, writeBuffer } from "../gpu/buffers.ts";
import { type Gpu, GpuError } from "../gpu/device.ts";
import type { Dispatch, Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "./config.ts";
import { dropoutSiteCount, headSite } from "./dropout_sites.ts";
import {
  allocateEncoder,
  type EncoderBuffers,
  recordEncoderBackward,
  recordEncoderForward,
  recordLinearBackward,
  tensorBinding,
  writeEncoderInputs,
} from "./encoder.ts";
import { PARAM_ALIGNMENT, type ParamLayout, paramLayout, type ParamTensor, paramTensor } from "./params.ts";
import { Recorder, type Recording } from "./recorder.ts";
import { INITIAL_LOSS_SCALE, LOSS_SCALE_BYTES, writeLossScale } from "./loss_scale.ts";
import { HEAD_INNER, headLayout, type Pooling } from "./head_layout.ts";
import { meanPoolBackward, meanPoolForward } from "./layers/pooling.ts";
import { gatherRows, LOSS_TOTALS_BYTES, scatterRows } from "./layers/cross_entropy.ts";
import { dropoutBackward, dropoutForward } from "./layers/dropout.ts";
import { biasAdd, biasGradient, biasTanh, headLoss, tanhBackward } from "./layers/head.ts";

/**
 * The classifier's flat layout: the encoder's tensors (paramLayout, same offsets) then the head's, each
 * at an aligned offset. Head weights are matrices (weight decay applies), biases are not.
 */
export function classifierLayout(config: ModelConfig, labels: number): ParamLayout {
  const encoder = paramLayout(config);
  const tensors: ParamTensor[] = [...encoder.tensors];
  let offset = encoder.totalSize;
  for (const t of headLayout(config, labels).tensors) {
    const matrix = t.shape.length === 2;
    tensors.push({ ...t, offset, kind: matrix ? "matrix" : "bias", decay: matrix });
    offset += Math.ceil(t.size / PARAM_ALIGNMENT) * PARAM_ALIGNMENT;
  }
  return { tensors, totalSize: offset };
}

/** The classifier's flat vector from the encoder's (paramLayout) and the head's (headLayout) vectors. */
export function joinClassifierParams(
  config: ModelConfig,
  labels: number,
  encoder: Float32Array,
  head: Float32Array,
): Float32Array<ArrayBuffer> {
  const layout = classifierLayout(config, labels);
  const heads = headLayout(config, labels);
  if (encoder.length !== paramLayout(config).totalSize || head.length !== heads.totalSize) {
    throw new RangeError(
      `classifier params: ${encoder.length} encoder and ${head.length} head values do not fit`,
    );
  }
  const flat = new Float32Array(layout.totalSize);
  flat.set(encoder);
  for (const t of heads.tensors) {
    flat.set(
      head.subarray(t.offset, t.offset + t.size),
      paramTensor(layout, t.name).offset,
    );
  }
  return flat;
}

/** The encoder's (paramLayout) and the head's (headLayout) vectors of a flat classifier vector. */
export function splitClassifierParams(
  config: ModelConfig,
  labels: number,
  flat: Float32Array,
): { params: Float32Array; head: Float32Array } {
  const layout = classifierLayout(config, labels);
  if (flat.length !== layout.totalSize) {
    throw new RangeError(`classifier params: expected ${layout.totalSize} values, got ${flat.length}`);
  }
  const heads = headLayout(config, labels);
  const head = new Float32Array(heads.totalSize);
  for (const t of heads.tensors) {
    const offset = paramTensor(layout, t.name).offset;
    head.set(flat.subarray(offset, offset + t.size), t.offset);
  }
  return { params: flat.slice(0, paramLayout(config).totalSize), head };
}

/** The shape a classifier is planned for. */
export interface ClassifierShape {
  /** Sequences per batch. */
  batch: number;
  /** The sequence lengths to plan, increasing, each at most maxSeqLen; default [maxSeqLen]. */
  seqs?: number[];
  /** Outputs: the task's label count, or 1 for a regression head. */
  labels: number;
  /** Dropout probability of training (the recipe: 0.1); 0 plans no dropout. */
  dropout: number;
  /**
   * How the encoder's activations (and, on matrix units, the products' parameter copy) are stored, as in
   * pretraining (encoder.ts); default f32. With f16 the loss gradient carries a dynamic loss scale
   * (`lossScale`) for the optimizer to divide out. The head stays f32.
   */
  storage?: StorageType;
  /** What the head reads of the final states (head_layout.ts); default `cls`. */
  pooling?: Pooling;
}

/** One batch, padded to a planned length. */
export interface ClassifierBatch {
  /** Tokens per sequence: one of the plan's `seqs`. */
  seq: number;
  /** [batch * seq] token ids; rows past `count` are padding. */
  inputIds: Uint32Array<ArrayBuffer>;
  /** [batch * seq]: 1 for a real token, 0 for padding. */
  keyMask: Uint32Array<ArrayBuffer>;
  /** Real examples, the first rows: 1..batch. */
  count: number;
  /** [count] each example's label index or score; needed by `train`, not by `infer`. */
  targets?: Float32Array<ArrayBuffer>;
}

/** The planned classifier: its buffers and the dispatches of each planned length. */
export interface GpuClassifier {
  gpu: Gpu;
  config: ModelConfig;
  labels: number;
  layout: ParamLayout;
  batch: number;
  seqs: readonly number[];
  /** Parameters in {@linkcode classifierLayout}. */
  params: GPUBuffer;
  /** Gradients, same layout; `train` adds into them. */
  grads: GPUBuffer;
  /** Loss totals {f32 sum, u32 rows} that every `train` adds to (read with `readLossTotals`). */
  lossTotals: GPUBuffer;
  /** With f16 storage: the loss scale the gradients carry (src/model/loss_scale.ts), at first the initial one. */
  lossScale?: GPUBuffer;
  /** [batch, labels] f32: the logits of the last `infer` (rows past its count are not meaningful). */
  logits: GPUBuffer;
  /** The shortest planned length that holds `tokens` tokens. */
  seqFor(tokens: number): number;
  /**
   * Forward with dropout, loss and backward (adding into `grads`) of the batch last written, whose
   * length is `seq`.
   */
  train(seq: number): readonly Dispatch[];
  /** Forward without dropout of the batch last written into `logits`. */
  infer(seq: number): readonly Dispatch[];
  /** Queues the upload of a batch; the next submit of `train` or `infer` uses it. */
  writeBatch(batch: ClassifierBatch): void;
  /** Queues new dropout seeds, one u32 per site (dropout_sites.ts), for the next `train`. */
  writeSeeds(seeds: Uint32Array<ArrayBuffer>): void;
  /** Bytes of every buffer the plan allocated. */
  bytes: number;
}

/** Plans the classifier: allocates its buffers and records each length's dispatches. */
export async function planClassifier(
  k: Kernels,
  config: ModelConfig,
  shape: ClassifierShape,
): Promise<GpuClassifier> {
  const gpu = k.gpu;
  const { batch, labels, dropout, storage = "f32", pooling = "cls" } = shape;
  const seqs = shape.seqs ?? [config.maxSeqLen];
  if (
    seqs.length === 0 || seqs.some((s, i) => !Number.isInteger(s) || s < 1 || (i > 0 && s <= seqs[i - 1]))
  ) {
    throw new GpuError(`classifier seqs [${seqs}]: expected increasing positive lengths`);
  }
  if (!(dropout >= 0 && dropout < 1)) throw new GpuError(`classifier dropout ${dropout}: expected [0, 1)`);
  const layout = classifierLayout(config, labels);
  const rec = new Recorder(k, { sizedBy: "--batch" });
  const params = rec.f32("params", layout.totalSize);
  const grads = rec.f32("grads", layout.totalSize);
  const enc = allocateEncoder(rec, config, { layout, params, grads }, {
    batch,
    seq: seqs[seqs.length - 1],
    keyMask: true,
    dropout: dropout > 0,
    storage,
  });
  const lossScale = storage === "f16" ? rec.f32("loss scale", LOSS_SCALE_BYTES / 4) : undefined;
  if (lossScale) writeLossScale(gpu, lossScale, INITIAL_LOSS_SCALE);
  const head: HeadBuffers = {
    enc,
    labels,
    inverseCounts: pooling === "mean" ? rec.f32("pooled token counts (inverse)", batch) : undefined,
    count: rec.f32("example count", 1),
    targets: rec.f32("targets", batch),
    lossTotals: rec.f32("loss totals", LOSS_TOTALS_BYTES / 4),
    pooled: rec.f32("pooled states", batch * config.hidden),
    activated: rec.f32("head activated", batch * HEAD_INNER),
    dropped: dropout > 0 ? rec.f32("head dropped", batch * HEAD_INNER) : undefined,
    logits: rec.f32("logits", batch * labels),
    dlogits: rec.f32("d logits", batch * labels),
    dactivated: rec.f32("d head activated", batch * HEAD_INNER),
    ddropped: dropout > 0 ? rec.f32("d head dropped", batch * HEAD_INNER) : undefined,
    dpooled: rec.f32("d pooled states", batch * config.hidden),
  };
  for (const seq of seqs) {
    // Row b's [CLS] is token b * seq (the gather of cls pooling).
    const positions = pooling === "cls" ? rec.f32(`cls positions (seq ${seq})`, batch) : undefined;
    if (positions) writeBuffer(gpu, positions, Uint32Array.from({ length: batch }, (_, b) => b * seq));
    const train = rec.recording();
    recordEncoderForward(train, enc, { seq, dropout });
    recordHeadForward(train, head, seq, positions, dropout);
    train.run(() =>
      headLoss(k, {
        rows: batch,
        labels,
        logits: head.logits,
        targets: head.targets,
        count: head.count,
        dlogits: head.dlogits,
        totals: head.lossTotals,
        lossScale,
      })
    );
    recordHeadBackward(train, head, seq, positions, dropout);
    recordEncoderBackward(train, enc, { seq, dropout });
    const infer = rec.recording();
    recordEncoderForward(infer, enc, { seq, dropout: 0 });
    recordHeadForward(infer, head, seq, positions, 0);
  }
  const lists = await rec.finish();
  // Two recordings per length, in order: train, infer.
  const byLength = new Map(seqs.map((seq, i) => [seq, { train: lists[2 * i], infer: lists[2 * i + 1] }]));
  const planned = (seq: number) => {
    const entry = byLength.get(seq);
    if (!entry) throw new GpuError(`classifier: no plan for seq ${seq}, planned [${seqs}]`);
    return entry;
  };

  const countHost = new Uint32Array(1);
  const targetsHost = new Float32Array(batch);
  const siteCount = dropoutSiteCount(config);
  return {
    gpu,
    config,
    labels,
    layout,
    batch,
    seqs,
    params,
    grads,
    lossTotals: head.lossTotals,
    lossScale,
    logits: head.logits,
    bytes: rec.bytes,
    seqFor(tokens) {
      const seq = seqs.find((s) => s >= tokens);
      if (seq === undefined) {
        throw new GpuError(`classifier: ${tokens} tokens exceed the longest plan, ${seqs.at(-1)}`);
      }
      return seq;
    },
    train: (seq) => planned(seq).train,
    infer: (seq) => planned(seq).infer,
    writeBatch(b) {
      planned(b.seq);
      if (!Number.isInteger(b.count) || b.count < 1 || b.count > batch) {
        throw new GpuError(`classifier batch: ${b.count} examples, the plan holds 1..${batch}`);
      }
      writeEncoderInputs(gpu, enc, b.seq, b.inputIds, b.keyMask);
      countHost[0] = b.count;
      writeBuffer(gpu, head.count, countHost);
      if (b.targets) {
        if (b.targets.length !== b.count) {
          throw new GpuError(`classifier batch: ${b.targets.length} targets for ${b.count} examples`);
        }
        // A class target indexes the logits row: anything but a label number would read another row.
        const bad = labels > 1
          ? b.targets.findIndex((t) => !(Number.isInteger(t) && t >= 0 && t < labels))
          : -1;
        if (bad >= 0) {
          throw new GpuError(
            `classifier batch: targets[${bad}] = ${b.targets[bad]}, expected a label 0..${labels - 1}`,
          );
        }
        targetsHost.set(b.targets);
        writeBuffer(gpu, head.targets, targetsHost);
      }
    },
    writeSeeds(seeds) {
      if (!enc.seeds) throw new GpuError("classifier: planned without dropout, it takes no seeds");
      if (seeds.length !== siteCount) {
        throw new GpuError(`classifier: ${seeds.length} dropout seeds, the model has ${siteCount} sites`);
      }
      writeBuffer(gpu, enc.seeds, seeds);
    },
  };
}

/** The head's buffers. */
interface HeadBuffers {
  enc: EncoderBuffers;
  labels: number;
  /** With mean pooling: 1 / each example's count of real tokens, from the forward for the backward. */
  inverseCounts?: GPUBuffer;
  count: GPUBuffer;
  targets: GPUBuffer;
  lossTotals: GPUBuffer;
  /** [batch, hidden]: what the head reads of the final states (`pooling`). */
  pooled: GPUBuffer;
  activated: GPUBuffer;
  dropped?: GPUBuffer;
  logits: GPUBuffer;
  dlogits: GPUBuffer;
  dactivated: GPUBuffer;
  ddropped?: GPUBuffer;
  dpooled: GPUBuffer;
}

/** activated = tanh(pooled W1^T + b1); logits = drop(activated) W2^T + b2. */
function recordHeadForward(
  rec: Recording,
  h: HeadBuffers,
  seq: number,
  positions: GPUBuffer | undefined,
  p: number,
): void {
  const { k } = rec;
  const { enc, labels } = h;
  const { batch, layout, params } = enc;
  const H = enc.config.hidden;
  const offset = (name: string) => paramTensor(layout, name).offset;
  const bias = (name: string) => tensorBinding(params, layout, name);
  recordPool(rec, h, seq, positions);
  rec.product({
    a: h.pooled,
    b: params,
    bOffset: offset("head.dense.weight"),
    c: h.activated,
    m: batch,
    k: H,
    n: HEAD_INNER,
    transB: true,
  });
  rec.run(() =>
    biasTanh(k, { values: h.activated, bias: bias("head.dense.bias"), rows: batch, cols: HEAD_INNER })
  );
  const outInput = p > 0 ? h.dropped! : h.activated;
  if (p > 0) {
    rec.run(() => dropoutForward(k, { ...headDropout(h, p), x: h.activated, y: outInput }));
  }
  rec.product({
    a: outInput,
    b: params,
    bOffset: offset("head.out.weight"),
    c: h.logits,
    m: batch,
    k: HEAD_INNER,
    n: labels,
    transB: true,
  });
  rec.run(() => biasAdd(k, { values: h.logits, bias: bias("head.out.bias"), rows: batch, cols: labels }));
}

/** The head's backward from dlogits into its gradients and `enc.dstates`. */
function recordHeadBackward(
  rec: Recording,
  h: HeadBuffers,
  seq: number,
  positions: GPUBuffer | undefined,
  p: number,
): void {
  const { k } = rec;
  const { enc, labels } = h;
  const { batch, layout, grads } = enc;
  const H = enc.config.hidden;
  const dbias = (name: string) => tensorBinding(grads, layout, name);
  const outInput = p > 0 ? h.dropped! : h.activated;
  // d activated, through the dropout if there is one; then through tanh, in place.
  const dOutInput = p > 0 ? h.ddropped! : h.dactivated;
  recordLinearBackward(rec, enc, batch, "head.out.weight", {
    dy: h.dlogits,
    x: outInput,
    dx: dOutInput,
    inner: HEAD_INNER,
    outer: labels,
  });
  rec.run(() =>
    biasGradient(k, { gradient: h.dlogits, dbias: dbias("head.out.bias"), rows: batch, cols: labels })
  );
  if (p > 0) {
    rec.run(() => dropoutBackward(k, { ...headDropout(h, p), dy: dOutInput, dx: h.dactivated }));
  }
  rec.run(() =>
    tanhBackward(k, { gradient: h.dactivated, activated: h.activated, rows: batch, cols: HEAD_INNER })
  );
  recordLinearBackward(rec, enc, batch, "head.dense.weight", {
    dy: h.dactivated,
    x: h.pooled,
    dx: h.dpooled,
    inner: H,
    outer: HEAD_INNER,
  });
  rec.run(() =>
    biasGradient(k, {
      gradient: h.dactivated,
      dbias: dbias("head.dense.bias"),
      rows: batch,
      cols: HEAD_INNER,
    })
  );
  recordPoolBackward(rec, h, seq, positions);
}

/**
 * h.pooled from the final states: with `positions` (cls pooling, planned only then) each row's [CLS] state
 * gathered from there; without, the mean of each row's real tokens.
 */
function recordPool(rec: Recording, h: HeadBuffers, seq: number, positions?: GPUBuffer): void {
  const { enc } = h;
  rec.run(() =>
    positions
      ? gatherRows(rec.k, { ...gather(h, seq, positions), states: enc.states, gathered: h.pooled })
      : meanPoolForward(rec.k, { ...meanPoolShape(h, seq), states: enc.states, pooled: h.pooled })
  );
}

/** enc.dstates from h.dpooled, every element written (zero where the pooling read nothing). */
function recordPoolBackward(rec: Recording, h: HeadBuffers, seq: number, positions?: GPUBuffer): void {
  const { enc } = h;
  rec.run(() =>
    positions
      ? scatterRows(rec.k, { ...gather(h, seq, positions), dgathered: h.dpooled, dstates: enc.dstates })
      : meanPoolBackward(rec.k, { ...meanPoolShape(h, seq), dpooled: h.dpooled, dstates: enc.dstates })
  );
}

function gather(h: HeadBuffers, seq: number, positions: GPUBuffer) {
  const { batch, config } = h.enc;
  return { tokens: batch * seq, rows: batch, hidden: config.hidden, positions, count: h.count };
}

function meanPoolShape(h: HeadBuffers, seq: number) {
  const { batch, config, keyMask } = h.enc;
  return { batch, seq, hidden: config.hidden, keyMask: keyMask!, inverseCounts: h.inverseCounts! };
}

function headDropout(h: HeadBuffers, p: number) {
  return { count: h.enc.batch * HEAD_INNER, p, seeds: h.enc.seeds!, seedIndex: headSite(h.enc.config) };
}
