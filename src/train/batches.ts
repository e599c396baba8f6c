/**
 * Micro-batches for training: read from the token shards, shuffled, masked, and prefetched while the
 * GPU works on the previous ones.
 *
 * Order: each epoch visits the corpus in a seeded random order of chunks of `chunk` consecutive
 * sequences (8 by default). A fully per-sequence shuffle would cost one read per sequence; chunks
 * of 8 make reads 8 times fewer and larger, and a micro-batch still draws from many places in the
 * corpus. An epoch's last sequences that do not fill a micro-batch are left out of that epoch
 * (a different few each epoch, since the order changes).
 *
 * Position: (epoch, index), index = sequences of the epoch's order already used. The order is a
 * function of the seed and the epoch, and the masks of the seed, epoch and sequence (masking.ts),
 * so restoring a position reproduces exactly the micro-batches an uninterrupted run would have
 * seen.
 */
import type { ShardSet } from "../data/shard.ts";
import { maskBatch, type MaskedBatch } from "./masking.ts";
import { permutation, streamKey } from "./random.ts";

/** Fixed-length token sequences: the tokenized corpus, or anything that reads like it. */
export type SequenceSource = Pick<ShardSet, "sequences" | "seqLen" | "read">;

/** Where in the data a run stands. */
export interface DataPosition {
  /** Passes over the data completed. */
  epoch: number;
  /** Sequences of this epoch's order already used. */
  index: number;
}

/** One masked micro-batch. */
export interface MicroBatch extends MaskedBatch {
  /** The epoch its sequences belong to. */
  epoch: number;
  /** Where the next micro-batch starts: the data position to save after this one is trained on. */
  next: DataPosition;
}

/** How a {@linkcode BatchSource} orders and masks the data. */
export interface BatchSourceOptions {
  /** Sequences per micro-batch. */
  microBatch: number;
  /** Seeds the data order and the masks. */
  seed: number;
  /** MLM masking rate, e.g. 0.15. */
  maskRate: number;
  /** Tokens in the vocabulary (the random replacements are drawn from it). */
  vocabSize: number;
  /** Where to start (from a checkpoint); default the beginning. */
  start?: DataPosition;
  /** Micro-batches read and masked ahead (default 2). */
  prefetch?: number;
  /** Consecutive sequences kept together in the shuffle (default 8). */
  chunk?: number;
  /** Called when a micro-batch of a new epoch is handed out (not for the starting epoch). */
  onEpoch?: (epoch: number) => void;
  /** What error messages call the data, e.g. its folder (default "the corpus"). */
  name?: string;
}

/** A run of consecutive sequences to read. */
interface Span {
  start: number;
  count: number;
}

/** Hands out micro-batches in order, reading and masking the next ones ahead. */
export class BatchSource {
  readonly #source: SequenceSource;
  readonly #options: Required<Omit<BatchSourceOptions, "start" | "onEpoch" | "name">>;
  readonly #onEpoch?: (epoch: number) => void;
  readonly #chunks: number;
  readonly #queue: Promise<MicroBatch>[] = [];
  /** The position of the next micro-batch to schedule. */
  #cursor: DataPosition;
  /** This epoch's order of chunks, and the slot of the corpus's last (possibly short) chunk in it. */
  #order: Uint32Array = new Uint32Array();
  #shortSlot = 0;
  #lastEpoch: number;

  /** Serves `source`'s sequences in micro-batches, in a seeded order per epoch, masked. */
  constructor(source: SequenceSource, options: BatchSourceOptions) {
    this.#source = source;
    this.#options = { prefetch: 2, chunk: 8, ...options };
    this.#onEpoch = options.onEpoch;
    const { microBatch, chunk } = this.#options;
    const name = options.name ?? "the corpus";
    if (source.sequences < microBatch) {
      throw new RangeError(
        `${name} has ${source.sequences} sequences, fewer than one micro-batch of ${microBatch} (--micro-batch)`,
      );
    }
    this.#chunks = Math.ceil(source.sequences / chunk);
    this.#cursor = { ...(options.start ?? { epoch: 0, index: 0 }) };
    if (this.#cursor.index + microBatch > this.#usable) {
      throw new RangeError(
        `data position ${this.#cursor.index} of epoch ${this.#cursor.epoch} is past the ${source.sequences} ` +
          `sequences of ${name} (a checkpoint of another corpus?)`,
      );
    }
    this.#lastEpoch = this.#cursor.epoch;
    this.#setEpoch(this.#cursor.epoch);
    for (let i = 0; i < this.#options.prefetch; i++) this.#schedule();
  }

  /** Sequences of an epoch that fill whole micro-batches. */
  get #usable(): number {
    return this.#source.sequences - this.#source.sequences % this.#options.microBatch;
  }

  #setEpoch(epoch: number): void {
    this.#order = permutation(streamKey(this.#options.seed, epoch, 0x5eed), this.#chunks);
    this.#shortSlot = this.#order.indexOf(this.#chunks - 1);
  }

  /** The spans of sequences at positions [index, index + count) of the current order. */
  #spans(index: number, count: number): Span[] {
    const { chunk } = this.#options;
    const n = this.#source.sequences;
    const lengthOf = (slot: number) => Math.min(chunk, n - this.#order[slot] * chunk);
    // Every chunk holds `chunk` sequences except the corpus's last one.
    const shortSlot = this.#shortSlot;
    const shortStart = shortSlot * chunk;
    let slot: number, offset: number;
    if (index < shortStart) [slot, offset] = [Math.floor(index / chunk), index % chunk];
    else if (index < shortStart + lengthOf(shortSlot)) [slot, offset] = [shortSlot, index - shortStart];
    else {
      const after = index - shortStart - lengthOf(shortSlot);
      [slot, offset] = [shortSlot + 1 + Math.floor(after / chunk), after % chunk];
    }
    const spans: Span[] = [];
    for (; count > 0; slot++, offset = 0) {
      const take = Math.min(lengthOf(slot) - offset, count);
      spans.push({ start: this.#order[slot] * chunk + offset, count: take });
      count -= take;
    }
    return spans;
  }

  #schedule(): void {
    const { microBatch } = this.#options;
    if (this.#cursor.index + microBatch > this.#usable) {
      this.#cursor = { epoch: this.#cursor.epoch + 1, index: 0 };
      this.#setEpoch(this.#cursor.epoch);
    }
    const epoch = this.#cursor.epoch;
    const spans = this.#spans(this.#cursor.index, microBatch);
    this.#cursor = { epoch, index: this.#cursor.index + microBatch };
    const next = this.#cursor.index + microBatch > this.#usable
      ? { epoch: epoch + 1, index: 0 }
      : { ...this.#cursor };
    const batch = this.#read(spans).then((tokens) => ({ ...this.#mask(tokens, spans, epoch), epoch, next }));
    // A prefetch that fails is reported when its micro-batch is asked for, not as an unhandled rejection.
    batch.catch(() => {});
    this.#queue.push(batch);
  }

  /** Reads a micro-batch's spans, all requested at once so they queue together at the reader. */
  async #read(spans: Span[]): Promise<Uint16Array> {
    const parts = await Promise.all(spans.map((span) => this.#source.read(span.start, span.count)));
    const tokens = new Uint16Array(this.#options.microBatch * this.#source.seqLen);
    let offset = 0;
    for (const part of parts) {
      tokens.set(part, offset);
      offset += part.length;
    }
    return tokens;
  }

  #mask(tokens: Uint16Array, spans: Span[], epoch: number): MaskedBatch {
    const indices = spans.flatMap((span) => Array.from({ length: span.count }, (_, i) => span.start + i));
    const { seed, maskRate: rate, vocabSize } = this.#options;
    return maskBatch(tokens, this.#source.seqLen, { epoch, indices }, { rate, vocabSize, seed });
  }

  /** The next micro-batch (already read and masked unless the disk is behind), and reads one more ahead. */
  next(): Promise<MicroBatch> {
    const batch = this.#queue.shift()!;
    this.#schedule();
    return batch.then((b) => {
      if (b.epoch > this.#lastEpoch) {
        this.#lastEpoch = b.epoch;
        this.#onEpoch?.(b.epoch);
      }
      return b;
    });
  }
}
