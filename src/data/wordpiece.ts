/**
 * WordPiece encoding as Hugging Face's `WordPiece` model does it: each word is covered greedily by the
 * longest vocabulary entry from the left, pieces after the first carrying the `##` prefix; a word that
 * cannot be covered, or is longer than 100 characters, becomes one `[UNK]`. Decoding follows HF's
 * `WordPiece` decoder (pieces joined with spaces, `##` pieces glued on, then its clean-up of spaces
 * before punctuation and contractions).
 *
 * @module
 */
import { DataError } from "./errors.ts";
import type { WordChunk } from "./pretokenize.ts";

/** Token ids of a piece of a document. */
export interface IdChunk {
  ids: Uint32Array;
  /** Characters of normalized text the ids came from. */
  chars: number;
  end: boolean;
}

export interface WordPieceOptions {
  /** The token for words that cannot be covered (default `[UNK]`). */
  unkToken?: string;
  /** The prefix of pieces that continue a word (default `##`). */
  prefix?: string;
  /** Longer words become the unknown token (default 100 characters). */
  maxWordChars?: number;
}

/** A WordPiece vocabulary: encodes words to ids and decodes ids to text. */
export class WordPiece {
  /** The tokens in id order. */
  readonly vocab: readonly string[];
  /** Id of the unknown token. */
  readonly unkId: number;
  /** The prefix of a word's pieces after the first (`##`). */
  readonly prefix: string;
  /** Words longer than this many characters encode as the unknown token. */
  readonly maxWordChars: number;
  /** Every entry, for the first piece of a word (HF looks the bare substring up). */
  readonly #initial = new Map<string, number>();
  /** Entries that start with the prefix, without it, for the pieces after the first. */
  readonly #continuation = new Map<string, number>();
  #maxInitial = 0;
  #maxContinuation = 0;

  /** `vocab[id]` is the token of `id`; `options` name the unknown token, the prefix and the word limit. */
  constructor(vocab: readonly string[], options: WordPieceOptions = {}) {
    const unk = options.unkToken ?? "[UNK]";
    this.vocab = vocab;
    this.prefix = options.prefix ?? "##";
    this.maxWordChars = options.maxWordChars ?? 100;
    vocab.forEach((token, id) => {
      if (!this.#initial.has(token)) this.#initial.set(token, id);
      this.#maxInitial = Math.max(this.#maxInitial, token.length);
      if (token.startsWith(this.prefix)) {
        const rest = token.slice(this.prefix.length);
        if (!this.#continuation.has(rest)) this.#continuation.set(rest, id);
        this.#maxContinuation = Math.max(this.#maxContinuation, rest.length);
      }
    });
    const unkId = this.#initial.get(unk);
    if (unkId === undefined) throw new DataError(`vocabulary has no unknown token ${unk}`);
    this.unkId = unkId;
  }

  /** The id of `token`, or undefined. */
  id(token: string): number | undefined {
    return this.#initial.get(token);
  }

  /** The ids of `words`, in order. */
  encode(words: readonly string[]): number[] {
    const out = new Uint32Array(words.reduce((n, w) => n + Math.max(1, w.length), 0));
    return Array.from(out.subarray(0, this.encodeInto(words, out)));
  }

  /**
   * Writes the ids of `words` to `out` and returns how many there are. `out` needs one slot per
   * character of the words (a piece covers at least one character; an empty word still takes one).
   */
  encodeInto(words: readonly string[], out: Uint32Array): number {
    let n = 0;
    for (const word of words) n = this.#encodeWord(word, out, n);
    return n;
  }

  #encodeWord(word: string, out: Uint32Array, at: number): number {
    const length = word.length;
    if (length > this.maxWordChars && codePoints(word) > this.maxWordChars) {
      out[at] = this.unkId;
      return at + 1;
    }
    const whole = this.#initial.get(word);
    if (whole !== undefined) {
      out[at] = whole;
      return at + 1;
    }
    let n = at;
    let start = 0;
    while (start < length) {
      const table = start === 0 ? this.#initial : this.#continuation;
      let end = Math.min(length, start + (start === 0 ? this.#maxInitial : this.#maxContinuation));
      let id: number | undefined;
      for (; end > start; end--) {
        id = table.get(word.slice(start, end));
        if (id !== undefined) break;
      }
      if (id === undefined) {
        out[at] = this.unkId;
        return at + 1;
      }
      out[n++] = id;
      start = end;
    }
    return n;
  }

  /** The text of `ids` (HF's WordPiece decoder with clean-up). Ids outside the vocabulary are an error. */
  decode(ids: ArrayLike<number>, options: { skip?: ReadonlySet<number> } = {}): string {
    const parts: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (options.skip?.has(id)) continue;
      const token = this.vocab[id];
      if (token === undefined) {
        throw new DataError(`cannot decode id ${id}: the vocabulary has ${this.vocab.length}`);
      }
      let piece = token;
      if (parts.length > 0) {
        piece = token.startsWith(this.prefix) ? token.slice(this.prefix.length) : " " + token;
      }
      parts.push(cleanUp(piece));
    }
    return parts.join("");
  }
}

function codePoints(word: string): number {
  let n = word.length;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 0xDC00 && c <= 0xDFFF && i > 0) {
      const prev = word.charCodeAt(i - 1);
      if (prev >= 0xD800 && prev <= 0xDBFF) n--;
    }
  }
  return n;
}

const CLEAN_UPS: [string, string][] = [
  [" .", "."],
  [" ?", "?"],
  [" !", "!"],
  [" ,", ","],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [" do not", " don't"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

/** HF's `cleanup` of one decoded piece. */
function cleanUp(piece: string): string {
  if (!piece.startsWith(" ")) return piece;
  for (const [from, to] of CLEAN_UPS) if (piece.includes(from)) piece = piece.replaceAll(from, to);
  return piece;
}

/** Encodes a stream of words to ids. */
export function encodeStream(wordPiece: WordPiece): TransformStream<WordChunk, IdChunk> {
  return new TransformStream({
    transform(chunk, controller) {
      let slots = 0;
      for (const word of chunk.words) slots += Math.max(1, word.length);
      const out = new Uint32Array(slots);
      const n = wordPiece.encodeInto(chunk.words, out);
      controller.enqueue({ ids: out.subarray(0, n), chars: chunk.chars, end: chunk.end });
    },
  });
}
