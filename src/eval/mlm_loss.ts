/**
 * The masked-language-model loss of a checkpoint on tokenized data, without training: how a pretrained
 * model does on held-out text against the text it trained on (a run that repeats a small corpus can
 * learn it by heart while its loss on new text stalls).
 *
 * The sequences are the first `sequences` of the data in the seeded order of a pretraining epoch,
 * masked by the same rule (src/train/masking.ts) with that seed, and the loss is the mean over every
 * masked token, computed by the training step's forward (its backward runs too, into gradients that are
 * never used: one dispatch list serves both).
 *
 * @module
 */
import type { StorageType } from "../gpu/buffers.ts";
import { writeBuffer } from "../gpu/buffers.ts";
import { type Kernels, submitDispatches } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { planModel } from "../model/model.ts";
import { readLossTotals } from "../model/layers/cross_entropy.ts";
import { BatchSource, type SequenceSource } from "../train/batches.ts";
import { maxLabels } from "../train/masking.ts";

/** Which sequences are scored, and how. */
export interface MlmLossOptions {
  /** Sequences to score (rounded down to whole micro-batches, at most the data's). */
  sequences: number;
  /** Sequences per forward pass. */
  microBatch: number;
  /** Seeds the order and the masks; a pretraining run's own seed repeats its first epoch's masks. */
  seed: number;
  /** Fraction of tokens masked (the recipe's 0.15). */
  maskRate: number;
  /** Activation storage, as in pretraining; default f32. */
  storage?: StorageType;
}

/** The mean MLM loss over the masked tokens, and what it covers. */
export interface MlmLoss {
  /** Mean cross-entropy (nats) over the masked tokens. */
  loss: number;
  /** Masked tokens scored. */
  labels: number;
  /** Sequences scored. */
  sequences: number;
}

/** Sequences of token ids and the size of their vocabulary (a ShardSet is one). */
export type TokenSource = SequenceSource & { readonly vocabSize: number };

/** Scores `params` (paramLayout of `config`) on `data` as `options` say. */
export async function mlmLoss(
  k: Kernels,
  config: ModelConfig,
  params: Float32Array,
  data: TokenSource,
  options: MlmLossOptions,
): Promise<MlmLoss> {
  const { microBatch, seed, maskRate } = options;
  const batches = Math.floor(Math.min(options.sequences, data.sequences) / microBatch);
  if (batches < 1) {
    throw new RangeError(
      `mlm loss: ${
        Math.min(options.sequences, data.sequences)
      } sequences do not fill one micro-batch of ${microBatch}`,
    );
  }
  const model = await planModel(k, config, {
    batch: microBatch,
    seq: data.seqLen,
    maxLabels: maxLabels(microBatch, data.seqLen, maskRate),
    storage: options.storage,
  });
  try {
    writeBuffer(k.gpu, model.params, params.slice());
    const source = new BatchSource(data, { microBatch, seed, maskRate, vocabSize: data.vocabSize });
    for (let i = 0; i < batches; i++) {
      const batch = await source.next();
      model.writeBatch(batch, 1 / Math.max(1, batch.labelIds.length));
      submitDispatches(k.gpu, model.microBatch);
    }
    const totals = await readLossTotals(k.gpu, model.lossTotals);
    return { loss: totals.sum / totals.count, labels: totals.count, sequences: batches * microBatch };
  } finally {
    model.destroy();
  }
}
