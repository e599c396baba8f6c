/**
 * WordPiece vocabulary training the way Hugging Face's `WordPieceTrainer` does it: BPE merges over
 * word counts with the `##` continuation prefix.
 *
 * 1. Count the words of the normalized, pre-tokenized corpus ({@linkcode WordCounter}). The count map
 *    is bounded: past `maxWords` distinct words, the rarest are dropped (all words seen once, then
 *    twice, ...) until it is back to three quarters of the cap, so memory does not grow with the corpus.
 * 2. Start from the special tokens, then every character seen (at least all of printable ASCII, so any
 *    normalized word of at most 100 characters can be encoded without `[UNK]`), then each of those
 *    characters with the `##` prefix.
 * 3. Split each word into its first character and `##`-prefixed following characters, and repeatedly
 *    merge the most frequent adjacent pair (ties: the pair of smaller ids, first token then second) into
 *    a new token, `a` + `b` without its `##`, until the vocabulary is full or no pair is seen
 *    `minFrequency` times.
 *
 * Pair counts are kept up to date incrementally (each merge touches only the words that hold the pair)
 * and a lazy max-heap picks the next pair, so a merge costs time in the words it changes, not in the
 * corpus. The result depends only on the word counts and options: training is deterministic.
 *
 * @module
 */
import { DataError } from "./errors.ts";
import type { WordChunk } from "./pretokenize.ts";
import { SPECIAL_TOKENS } from "./tokenizer.ts";

export interface WordCounterOptions {
  /** Distinct words kept before the rarest are dropped (default 4,000,000: about 0.5 GB). */
  maxWords?: number;
  /** Longer words are not counted: WordPiece maps them to `[UNK]` (default 100). */
  maxWordChars?: number;
}

/** Counts words in a map of bounded size. */
export class WordCounter {
  readonly counts: Map<string, number> = new Map();
  readonly maxWords: number;
  readonly maxWordChars: number;
  /** Words counted, and distinct words dropped by pruning. */
  total = 0;
  pruned = 0;
  /** Words seen at most this often were dropped by the last pruning (0: none yet). */
  prunedBelow = 0;

  constructor(options: WordCounterOptions = {}) {
    this.maxWords = options.maxWords ?? 4_000_000;
    this.maxWordChars = options.maxWordChars ?? 100;
  }

  add(words: readonly string[]): void {
    const counts = this.counts;
    for (const word of words) {
      if (word.length > this.maxWordChars) continue;
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    this.total += words.length;
    if (counts.size > this.maxWords) this.#prune();
  }

  #prune() {
    const target = Math.floor(this.maxWords * 0.75);
    while (this.counts.size > target) {
      this.prunedBelow++;
      for (const [word, count] of this.counts) {
        if (count <= this.prunedBelow) {
          this.counts.delete(word);
          this.pruned++;
        }
      }
    }
  }
}

/** A sink that counts the words of a stream. */
export function countWordsStream(counter: WordCounter): WritableStream<WordChunk> {
  return new WritableStream({ write: (chunk) => counter.add(chunk.words) });
}

export interface TrainOptions {
  /** Size of the vocabulary, special tokens included (default 32,768; at most 65,536). */
  vocabSize?: number;
  /** A pair seen fewer times is never merged (default 2). */
  minFrequency?: number;
  /** The continuation prefix (default `##`). */
  prefix?: string;
}

/** Printable ASCII without the space: always in the alphabet. */
const PRINTABLE = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i));

/**
 * The smallest vocabulary the trainer can make from a normalized corpus (printable ASCII only): the
 * special tokens and printable ASCII with and without `##`.
 */
export const MIN_TRAINED_VOCAB = SPECIAL_TOKENS.length + 2 * PRINTABLE.length;
/** Pair keys are `first * PAIR + second`: below 2^31 (small integers in V8) for ids under 32,768. */
const PAIR = 65536;

/**
 * Trains a WordPiece vocabulary from word counts; returns the tokens in id order. The vocabulary is
 * smaller than asked when the corpus runs out of pairs seen `minFrequency` times.
 */
export function trainWordPiece(counts: ReadonlyMap<string, number>, options: TrainOptions = {}): string[] {
  const vocabSize = options.vocabSize ?? 32768;
  const minFrequency = options.minFrequency ?? 2;
  const prefix = options.prefix ?? "##";
  const alphabet = [...new Set([...PRINTABLE, ...charactersOf(counts.keys())])].sort(byCodePoint);
  const tokens: string[] = [...SPECIAL_TOKENS, ...alphabet, ...alphabet.map((c) => prefix + c)];
  if (vocabSize < tokens.length || vocabSize > PAIR) {
    throw new DataError(`vocabulary size ${vocabSize}: expected ${tokens.length} to ${PAIR} for this corpus`);
  }
  const ids = new Map(tokens.map((token, id) => [token, id]));
  const words = new Words(counts, ids, prefix);
  const pairs = new PairCounts(words);
  const heap = new PairHeap();
  for (const [key, count] of pairs.counts) heap.push(count, key);

  while (tokens.length < vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairs.counts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const first = Math.floor(key / PAIR);
    const second = key % PAIR;
    const token = tokens[first] + tokens[second].slice(prefix.length);
    let id = ids.get(token);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(token);
      ids.set(token, id);
    }
    for (const touched of pairs.merge(key, first, second, id)) {
      const n = pairs.counts.get(touched) ?? 0;
      if (n > 0) heap.push(n, touched);
    }
  }
  return tokens;
}

function* charactersOf(words: Iterable<string>): Generator<string> {
  const seen = new Set<string>();
  for (const word of words) {
    for (const c of word) {
      if (!seen.has(c)) {
        seen.add(c);
        yield c;
      }
    }
  }
}

function byCodePoint(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

/** The distinct words as symbol ids, in one flat array; merges shorten words in place. */
class Words {
  readonly symbols: Int32Array;
  readonly start: Int32Array;
  readonly length: Int32Array;
  readonly count: Float64Array;

  constructor(counts: ReadonlyMap<string, number>, ids: ReadonlyMap<string, number>, prefix: string) {
    const n = counts.size;
    this.start = new Int32Array(n);
    this.length = new Int32Array(n);
    this.count = new Float64Array(n);
    let total = 0;
    for (const word of counts.keys()) total += word.length;
    this.symbols = new Int32Array(total);
    let w = 0;
    let at = 0;
    for (const [word, count] of counts) {
      this.start[w] = at;
      this.count[w] = count;
      let first = true;
      for (const c of word) {
        this.symbols[at++] = ids.get(first ? c : prefix + c)!;
        first = false;
      }
      this.length[w] = at - this.start[w];
      w++;
    }
  }
}

/** Counts of adjacent symbol pairs, weighted by word counts, and the words that hold each pair. */
class PairCounts {
  readonly counts: Map<number, number> = new Map();
  readonly #where: Map<number, number[]> = new Map();
  readonly #words: Words;
  /** `#visited[w] === #stamp` once word w was handled by the current merge. */
  readonly #visited: Int32Array;
  #stamp = 0;

  constructor(words: Words) {
    this.#words = words;
    this.#visited = new Int32Array(words.count.length);
    const { symbols, start, length, count } = words;
    for (let w = 0; w < count.length; w++) {
      const end = start[w] + length[w];
      for (let i = start[w]; i + 1 < end; i++) this.#add(symbols[i] * PAIR + symbols[i + 1], count[w], w);
    }
  }

  #add(key: number, delta: number, word: number) {
    this.counts.set(key, (this.counts.get(key) ?? 0) + delta);
    if (delta > 0) {
      let list = this.#where.get(key);
      if (list === undefined) this.#where.set(key, list = []);
      if (list[list.length - 1] !== word) list.push(word);
    }
  }

  /** Replaces every `first second` by `merged` and returns the pairs whose counts went up. */
  merge(key: number, first: number, second: number, merged: number): number[] {
    const { symbols, start, length, count } = this.#words;
    const where = this.#where.get(key) ?? [];
    this.#where.delete(key);
    this.counts.delete(key);
    const stamp = ++this.#stamp;
    const touched = new Set<number>();
    const change = (pair: number, delta: number, word: number) => {
      if (pair === key) return;
      this.#add(pair, delta, word);
      if (delta > 0) touched.add(pair);
    };
    for (const w of where) {
      if (this.#visited[w] === stamp) continue;
      this.#visited[w] = stamp;
      const c = count[w];
      const s = start[w];
      const end = s + length[w];
      let out = s;
      for (let i = s; i < end;) {
        if (i + 1 < end && symbols[i] === first && symbols[i + 1] === second) {
          if (out > s) {
            const before = symbols[out - 1];
            change(before * PAIR + first, -c, w);
            change(before * PAIR + merged, c, w);
          }
          if (i + 2 < end) {
            const after = symbols[i + 2];
            change(second * PAIR + after, -c, w);
            change(merged * PAIR + after, c, w);
          }
          symbols[out++] = merged;
          i += 2;
        } else symbols[out++] = symbols[i++];
      }
      length[w] = out - s;
    }
    return [...touched];
  }
}

/** A max-heap of (count, pair key); ties pop the smaller key first. */
class PairHeap {
  #counts = new Float64Array(1024);
  #keys = new Float64Array(1024);
  size = 0;

  push(count: number, key: number) {
    if (this.size === this.#counts.length) {
      const counts = new Float64Array(this.size * 2);
      counts.set(this.#counts);
      this.#counts = counts;
      const keys = new Float64Array(this.size * 2);
      keys.set(this.#keys);
      this.#keys = keys;
    }
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(count, key, this.#counts[parent], this.#keys[parent])) break;
      this.#counts[i] = this.#counts[parent];
      this.#keys[i] = this.#keys[parent];
      i = parent;
    }
    this.#counts[i] = count;
    this.#keys[i] = key;
  }

  pop(): [number, number] {
    const top: [number, number] = [this.#counts[0], this.#keys[0]];
    const n = --this.size;
    const count = this.#counts[n];
    const key = this.#keys[n];
    let i = 0;
    while (true) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (
        child + 1 < n &&
        this.#before(this.#counts[child + 1], this.#keys[child + 1], this.#counts[child], this.#keys[child])
      ) {
        child++;
      }
      if (!this.#before(this.#counts[child], this.#keys[child], count, key)) break;
      this.#counts[i] = this.#counts[child];
      this.#keys[i] = this.#keys[child];
      i = child;
    }
    this.#counts[i] = count;
    this.#keys[i] = key;
    return top;
  }

  #before(countA: number, keyA: number, countB: number, keyB: number): boolean {
    return countA > countB || (countA === countB && keyA < keyB);
  }
}
