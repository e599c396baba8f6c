/**
 * The MLM loss of a pretrained checkpoint on tokenized data, e.g. held-out text against the run's own:
 *
 *   deno task mlm-loss --checkpoint runs/x --data held-out/ [--data runs/x/data] [--sequences 4096]
 *
 * prints, per dataset, the mean loss over its masked tokens, and a JSON line with the figures. The data
 * must be tokenized with the checkpoint's vocabulary (`deno task tokenize --vocab runs/x/vocab.txt`).
 *
 * @module
 */
import { type OptionTable, parseCommandLine, runTask, UsageError, usageText } from "../src/args.ts";
import { integerFrom, numberWhere, positiveInteger, text } from "../src/arg_values.ts";
import { openShards, readManifest } from "../src/data/shard.ts";
import { loadPretrained } from "../src/eval/pretrained.ts";
import { CHECKPOINT_OPTION, GPU_OPTION, PRECISION_OPTION } from "../src/eval/options.ts";
import { mlmLoss } from "../src/eval/mlm_loss.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import { BERT_MASK_RATE } from "../src/train/masking.ts";
import { devicePrecision } from "../src/train/options.ts";

const TABLE = {
  checkpoint: CHECKPOINT_OPTION,
  data: {
    value: "<dir>",
    help: "A tokenized dataset (manifest.json and shards) in the checkpoint's vocabulary; repeat it to " +
      "score several.",
    required: true,
    parse: text,
    multiple: true,
  },
  sequences: { value: "<n>", default: 4096, help: "Sequences scored per dataset.", parse: positiveInteger },
  microBatch: {
    value: "<n>",
    default: 64,
    help: "Sequences per forward pass.",
    parse: positiveInteger,
  },
  seed: {
    value: "<n>",
    default: 1,
    help: "Seeds the order and the masks (a run's own seed, 0 by default, would repeat the masks of its " +
      "first epoch).",
    parse: integerFrom(0, 2 ** 32 - 1),
  },
  maskRate: {
    value: "<fraction>",
    default: BERT_MASK_RATE,
    help: "Fraction of tokens masked and scored.",
    parse: numberWhere("a fraction above 0 and below 1", (n) => n > 0 && n < 1),
  },
  gpu: GPU_OPTION,
  precision: PRECISION_OPTION,
} as const satisfies OptionTable;

const USAGE = `Usage: deno task mlm-loss --checkpoint <run> --data <dir> [--data <dir>...] [options]

Scores a pretrained checkpoint's masked-language-model loss on tokenized data without training it: the
first --sequences sequences of each dataset, in a seeded order, masked as pretraining masks.`;

async function main(): Promise<void> {
  const { values: v, help } = parseCommandLine(TABLE, Deno.args);
  if (help) {
    console.log(usageText(USAGE, TABLE));
    return;
  }
  const pretrained = await loadPretrained(v.checkpoint!);
  const gpu = await requestGpu({ backend: v.gpu });
  const storage = v.precision ?? devicePrecision(gpu);
  const k = new Kernels(gpu);
  console.log(`${gpu.name} (${gpu.backend}, ${storage}): ${pretrained.dir}`);
  for (const dir of v.data) {
    const { paths } = await readManifest(dir);
    const shards = await openShards(paths, {
      expect: { vocabHash: pretrained.tokenizer.hash, vocabSize: pretrained.tokenizer.size },
    });
    try {
      if (shards.seqLen > pretrained.config.maxSeqLen) {
        throw new UsageError(
          `${dir}: sequences of ${shards.seqLen} tokens, more than the model's ${pretrained.config.maxSeqLen}`,
        );
      }
      const result = await mlmLoss(k, pretrained.config, pretrained.params, shards, {
        sequences: v.sequences,
        microBatch: v.microBatch,
        seed: v.seed,
        maskRate: v.maskRate,
        storage,
      });
      console.log(
        `${dir}: MLM loss ${result.loss.toFixed(4)} over ${result.labels} masked tokens of ` +
          `${result.sequences} sequences`,
      );
      console.log(
        JSON.stringify({ checkpoint: pretrained.dir, data: dir, ...result, seed: v.seed, storage }),
      );
    } finally {
      await shards.close();
    }
  }
}

if (import.meta.main) await runTask(main);
