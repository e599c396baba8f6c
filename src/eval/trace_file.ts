/**
 * What one finetuning run of our evaluation did, step by step, for a peer to replay it in lockstep
 * (`peer/finetune_peer.py --lockstep`, `deno task eval --write-features --trace`): one JSON file per task
 * and seed, next to the task's features file (features_file.ts), which holds the examples and recipe.
 *
 * - `head`: the head the run started from, tensor by tensor by the head layout's names (PyTorch's
 *   [out, in] layout, src/model/head_layout.ts), each `{ shape, values }`; the encoder is the checkpoint's;
 * - `orders`: each epoch's order of the training examples (batches are its consecutive runs of `batch`);
 * - per optimizer step: `widths`, the length the batch was padded to; `seeds`, its dropout seeds in site
 *   order (src/model/dropout_sites.ts; the masks are src/reference/dropout.ts's); `losses`, its mean
 *   training loss as our engine computed it;
 * - `devs`: each dev set's logits after training, one row of `labels` numbers per example.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import { dropoutSiteCount } from "../model/dropout_sites.ts";
import { headLayout } from "../model/head_layout.ts";
import { stepDropoutSeeds } from "../train/finetuner.ts";
import type { FinetuneListeners, FinetuneOptions } from "./finetune.ts";

/** The file's format name and version (2: dropout masks by two rounds of pcg, hashIndex). */
export const TRACE_FORMAT = { format: "cram-glue-trace", version: 2 } as const;

/** One run's file. */
export interface FinetuneTrace {
  format: typeof TRACE_FORMAT.format;
  version: typeof TRACE_FORMAT.version;
  task: string;
  /** The recipe of the run, with its seed. */
  finetune: FinetuneOptions;
  trainExamples: number;
  /** By head tensor name (headLayout). */
  head: Record<string, { shape: number[]; values: number[] }>;
  /** Per epoch, the training examples in the order they were batched. */
  orders: number[][];
  /** Per step: the padded width, the dropout seeds (one per site) and our mean training loss. */
  widths: number[];
  seeds: number[][];
  losses: number[];
  /** Per dev set, one row of logits per example. */
  devs: { name: string; logits: number[][] }[];
}

/** Records a run as `finetune` tells it, and writes its trace. */
export interface TraceRecorder {
  /** What `finetune` is to tell; its options need `logEvery` 1, so that every step's loss is read. */
  listeners: FinetuneListeners;
  /** The JSON bytes of the trace, with the logits [examples, labels] of each dev set after training. */
  json(devs: readonly { name: string; logits: Float32Array }[]): Uint8Array;
}

/** What a run starts from. */
export interface TraceStart {
  config: ModelConfig;
  task: string;
  labels: number;
  /** The run's recipe; its `seed` gives the dropout seeds. */
  finetune: FinetuneOptions;
  trainExamples: number;
  /** The start head (headLayout). */
  head: Float32Array;
}

/**
 * A recorder of the run `start` describes; `progress` is also told what `finetune` reports. A report that
 * does not come right after a step (`logEvery` other than 1) is an error: a step's loss would be lost.
 */
export function traceRecorder(start: TraceStart, progress: FinetuneListeners["progress"]): TraceRecorder {
  const { config, finetune } = start;
  const sites = dropoutSiteCount(config);
  const orders: number[][] = [];
  const widths: number[] = [];
  const seeds: number[][] = [];
  const losses: number[] = [];
  return {
    listeners: {
      step(s) {
        if (s.epoch > orders.length) orders.push([]);
        orders[s.epoch - 1].push(...s.examples);
        widths.push(s.seq);
        seeds.push(Array.from(stepDropoutSeeds(finetune.seed, s.step, sites)));
      },
      progress(p) {
        if (p.step !== losses.length + 1) {
          throw new RangeError(`trace: a loss report after step ${p.step}, expected one every step`);
        }
        losses.push(p.loss);
        progress(p);
      },
    },
    json(devs) {
      const head = Object.fromEntries(
        headLayout(config, start.labels).tensors.map((t) => [
          t.name,
          { shape: t.shape, values: Array.from(start.head.subarray(t.offset, t.offset + t.size)) },
        ]),
      );
      const file: FinetuneTrace = {
        ...TRACE_FORMAT,
        task: start.task,
        finetune,
        trainExamples: start.trainExamples,
        head,
        orders,
        widths,
        seeds,
        losses,
        devs: devs.map(({ name, logits }) => ({ name, logits: rows(logits, start.labels) })),
      };
      return new TextEncoder().encode(JSON.stringify(file) + "\n");
    },
  };
}

/** The rows of a row-major matrix `width` wide. */
function rows(flat: Float32Array, width: number): number[][] {
  return Array.from(
    { length: flat.length / width },
    (_, r) => Array.from(flat.subarray(r * width, (r + 1) * width)),
  );
}
