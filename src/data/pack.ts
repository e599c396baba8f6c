/**
 * Packing, as the recipe does it: each document's tokens followed by `[SEP]`, all documents
 * concatenated, the stream cut into sequences of exactly `seqLen` tokens. A sequence has no `[CLS]`
 * and may start or end inside a document; the final partial sequence is dropped. Documents without
 * tokens add nothing (no lone `[SEP]`).
 *
 * The optional filter keeps a document only if it has more than `minCharsPerToken` characters of
 * normalized text per token (the recipe uses 4), dropping text that tokenizes badly (tables, other
 * languages, markup). A document longer than `filterWindow` tokens is judged in windows of about that
 * many tokens, which bounds memory; its `[SEP]` follows if any of its windows was kept.
 *
 * @module
 */
import { DataError } from "./errors.ts";
import { SEP_ID } from "./tokenizer.ts";
import type { IdChunk } from "./wordpiece.ts";

export interface PackOptions {
  /** Tokens per sequence (default 128). */
  seqLen?: number;
  /** The separator appended to each document (default `[SEP]`, id 3). */
  sepId?: number;
  /** Keep documents with more characters per token than this; 0 keeps all (default 0). */
  minCharsPerToken?: number;
  /** Tokens judged at once by the filter (default 65,536). */
  filterWindow?: number;
}

/** What the packer saw and wrote. */
export interface PackStats {
  /** Documents seen. */
  documents: number;
  /** Documents without a single token. */
  emptyDocuments: number;
  /** Documents the filter dropped whole, and tokens it dropped in all. */
  droppedDocuments: number;
  /** Tokens of the documents the filter dropped. */
  droppedTokens: number;
  /** Tokens written into sequences, `[SEP]`s included. */
  tokens: number;
  /** Sequences written. */
  sequences: number;
  /** Tokens of the final partial sequence, dropped. */
  leftoverTokens: number;
}

/** Zeroed counters. */
export function newPackStats(): PackStats {
  return {
    documents: 0,
    emptyDocuments: 0,
    droppedDocuments: 0,
    droppedTokens: 0,
    tokens: 0,
    sequences: 0,
    leftoverTokens: 0,
  };
}

/** Cuts documents' ids into sequences. */
export class Packer {
  readonly seqLen: number;
  readonly stats: PackStats;
  readonly #sepId: number;
  readonly #minCharsPerToken: number;
  readonly #filterWindow: number;
  /** Tokens waiting to fill a sequence (fewer than `seqLen` between pushes). */
  #staging: Uint16Array;
  #staged = 0;
  /** The window being judged by the filter. */
  #window: Uint32Array[] = [];
  #windowTokens = 0;
  #windowChars = 0;
  /** Tokens of the current document, and tokens of it kept. */
  #docTokens = 0;
  #docKept = 0;

  constructor(options: PackOptions = {}, stats: PackStats = newPackStats()) {
    this.seqLen = options.seqLen ?? 128;
    this.#sepId = options.sepId ?? SEP_ID;
    this.#minCharsPerToken = options.minCharsPerToken ?? 0;
    this.#filterWindow = options.filterWindow ?? 65536;
    if (!Number.isInteger(this.seqLen) || this.seqLen < 1) {
      throw new DataError(`sequence length ${this.seqLen}: expected a positive integer`);
    }
    if (!(this.#minCharsPerToken >= 0)) {
      throw new DataError(`minimum characters per token ${this.#minCharsPerToken}: expected a number >= 0`);
    }
    this.#staging = new Uint16Array(this.seqLen * 64);
    this.stats = stats;
  }

  /** Takes the next piece of a document; returns the sequences completed by it (`k * seqLen` ids, k >= 0). */
  push(chunk: IdChunk): Uint16Array {
    this.#docTokens += chunk.ids.length;
    if (this.#minCharsPerToken > 0) {
      this.#window.push(chunk.ids);
      this.#windowTokens += chunk.ids.length;
      this.#windowChars += chunk.chars;
      if (this.#windowTokens >= this.#filterWindow || chunk.end) this.#judge();
    } else {
      this.#stage(chunk.ids);
      this.#docKept += chunk.ids.length;
    }
    if (chunk.end) this.#endDocument();
    return this.#take();
  }

  /** Ends the stream: the final partial sequence is dropped and counted. */
  finish(): void {
    this.stats.leftoverTokens = this.#staged;
    this.#staged = 0;
  }

  #judge() {
    const keep = this.#windowTokens > 0 && this.#windowChars > this.#minCharsPerToken * this.#windowTokens;
    if (keep) {
      for (const ids of this.#window) this.#stage(ids);
      this.#docKept += this.#windowTokens;
    } else this.stats.droppedTokens += this.#windowTokens;
    this.#window = [];
    this.#windowTokens = 0;
    this.#windowChars = 0;
  }

  #endDocument() {
    this.stats.documents++;
    if (this.#docTokens === 0) this.stats.emptyDocuments++;
    else if (this.#docKept === 0) this.stats.droppedDocuments++;
    else this.#stage(Uint32Array.of(this.#sepId));
    this.#docTokens = 0;
    this.#docKept = 0;
  }

  #stage(ids: Uint32Array) {
    const needed = this.#staged + ids.length;
    if (needed > this.#staging.length) {
      const grown = new Uint16Array(Math.max(needed, this.#staging.length * 2));
      grown.set(this.#staging.subarray(0, this.#staged));
      this.#staging = grown;
    }
    this.#staging.set(ids, this.#staged);
    this.#staged = needed;
  }

  #take(): Uint16Array {
    const full = this.#staged - (this.#staged % this.seqLen);
    const out = this.#staging.slice(0, full);
    this.#staging.copyWithin(0, full, this.#staged);
    this.#staged -= full;
    this.stats.tokens += full;
    this.stats.sequences += full / this.seqLen;
    return out;
  }
}

/** Packs a stream of document ids into sequences; each output holds one or more whole sequences. */
export function packStream(
  options: PackOptions = {},
  stats?: PackStats,
): TransformStream<IdChunk, Uint16Array> {
  const packer = new Packer(options, stats);
  return new TransformStream({
    transform(chunk, controller) {
      const sequences = packer.push(chunk);
      if (sequences.length > 0) controller.enqueue(sequences);
    },
    flush() {
      packer.finish();
    },
  });
}
