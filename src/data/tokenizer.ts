/**
 * The tokenizer: our normalizer, BERT pre-tokenization and WordPiece over a vocabulary whose first five
 * entries are the special tokens at fixed ids:
 *
 * | id | token |
 * | --- | --- |
 * | 0 | `[PAD]` |
 * | 1 | `[UNK]` |
 * | 2 | `[CLS]` |
 * | 3 | `[SEP]` |
 * | 4 | `[MASK]` |
 *
 * It is stored as `vocab.txt` (one token a line, line n holding id n-1) and as a Hugging Face
 * `tokenizer.json` describing the same pipeline, from which HF's tokenizers produce the same ids. The
 * special tokens are ordinary vocabulary entries there, not HF "added tokens": the literal text
 * `[SEP]` in a document is tokenized as text, so a corpus cannot inject separators or masks.
 *
 * @module
 */
import { writeFileAtomic } from "../fs.ts";
import { DataError, describe } from "./errors.ts";
import { HF_NORMALIZER, normalizeText } from "./normalize.ts";
import { preTokenize } from "./pretokenize.ts";
import { WordPiece } from "./wordpiece.ts";

/** The special tokens, in id order. */
export const SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] as const;
/** Id of `[PAD]`, which fills a sequence after its last token. */
export const PAD_ID = 0;
/** Id of `[UNK]`, for a word the vocabulary cannot cover. */
export const UNK_ID = 1;
/** Id of `[CLS]`, which starts a finetuning input. */
export const CLS_ID = 2;
/** Id of `[SEP]`, which ends a document or a sentence. */
export const SEP_ID = 3;
/** Id of `[MASK]`, which replaces most of the tokens the MLM objective predicts. */
export const MASK_ID = 4;

const SPECIAL_IDS: ReadonlySet<number> = new Set([PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID]);

/** A model input: ids with `[CLS]`/`[SEP]` and the segment (token type) of each. */
export interface ModelInput {
  /** Token ids, `[CLS]` first. */
  ids: number[];
  /** The segment of each token: 0 for the first sentence, 1 for the second. */
  typeIds: number[];
}

/** Normalizer, pre-tokenizer and WordPiece over one vocabulary. */
export class Tokenizer {
  /** The WordPiece encoder and decoder over the vocabulary. */
  readonly wordPiece: WordPiece;
  /** The text of `vocab.txt`. */
  readonly vocabTxt: string;
  /** FNV-1a 64 of `vocab.txt`'s bytes, 16 hex digits: names the vocabulary in shards and manifests. */
  readonly hash: string;

  /**
   * `vocab[id]` is the token of `id`; the special tokens must come first, in order (`name` names the
   * vocabulary in errors).
   */
  constructor(vocab: readonly string[], name = "vocabulary") {
    checkVocab(vocab, name);
    this.wordPiece = new WordPiece(vocab);
    this.vocabTxt = vocab.join("\n") + "\n";
    this.hash = fnv1a64(new TextEncoder().encode(this.vocabTxt));
  }

  /** The tokens in id order. */
  get vocab(): readonly string[] {
    return this.wordPiece.vocab;
  }

  /** The number of tokens. */
  get size(): number {
    return this.wordPiece.vocab.length;
  }

  /** Parses the text of a `vocab.txt` (`name` names it in errors). */
  static parse(vocabTxt: string, name = "vocab.txt"): Tokenizer {
    const lines = vocabTxt.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    const vocab = lines.map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
    return new Tokenizer(vocab, name);
  }

  /** Loads `vocab.txt` from a file, or from a directory that holds one. */
  static async load(path: string): Promise<Tokenizer> {
    let file = path;
    let bytes: Uint8Array;
    try {
      if ((await Deno.stat(path)).isDirectory) file = `${path.replace(/\/+$/, "")}/vocab.txt`;
      bytes = await Deno.readFile(file);
    } catch (e) {
      throw new DataError(`vocabulary ${file}: ${describe(e)}`);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new DataError(`vocabulary ${file}: not UTF-8 text`);
    }
    return Tokenizer.parse(text, file);
  }

  /** The ids of `text`, without special tokens. */
  encode(text: string): number[] {
    return this.wordPiece.encode(preTokenize(normalizeText(text)));
  }

  /** `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]` with type 1 for `b [SEP]`, as the post-processor does. */
  encodeForModel(a: string, b?: string): ModelInput {
    const ids = [CLS_ID, ...this.encode(a), SEP_ID];
    const typeIds = ids.map(() => 0);
    if (b !== undefined) {
      const second = [...this.encode(b), SEP_ID];
      ids.push(...second);
      typeIds.push(...second.map(() => 1));
    }
    return { ids, typeIds };
  }

  /** The text of `ids`; `skipSpecial` leaves the special tokens out. */
  decode(ids: ArrayLike<number>, options: { skipSpecial?: boolean } = {}): string {
    return this.wordPiece.decode(ids, { skip: options.skipSpecial ? SPECIAL_IDS : undefined });
  }

  /** The Hugging Face `tokenizer.json` of this tokenizer. */
  tokenizerJson(): string {
    const special = (token: string, typeId: number) => ({ SpecialToken: { id: token, type_id: typeId } });
    const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
    const json = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [],
      normalizer: HF_NORMALIZER,
      pre_tokenizer: { type: "BertPreTokenizer" },
      post_processor: {
        type: "TemplateProcessing",
        single: [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)],
        pair: [
          special("[CLS]", 0),
          sequence("A", 0),
          special("[SEP]", 0),
          sequence("B", 1),
          special("[SEP]", 1),
        ],
        special_tokens: {
          "[CLS]": { id: "[CLS]", ids: [CLS_ID], tokens: ["[CLS]"] },
          "[SEP]": { id: "[SEP]", ids: [SEP_ID], tokens: ["[SEP]"] },
        },
      },
      decoder: { type: "WordPiece", prefix: this.wordPiece.prefix, cleanup: true },
      model: {
        type: "WordPiece",
        unk_token: SPECIAL_TOKENS[UNK_ID],
        continuing_subword_prefix: this.wordPiece.prefix,
        max_input_chars_per_word: this.wordPiece.maxWordChars,
        vocab: Object.fromEntries(this.vocab.map((token, id) => [token, id])),
      },
    };
    return JSON.stringify(json, null, 2) + "\n";
  }

  /** Writes `vocab.txt` and `tokenizer.json` into `dir`, each atomically. */
  async save(dir: string): Promise<void> {
    const encoder = new TextEncoder();
    await writeFileAtomic(`${dir}/vocab.txt`, encoder.encode(this.vocabTxt));
    await writeFileAtomic(`${dir}/tokenizer.json`, encoder.encode(this.tokenizerJson()));
  }
}

function checkVocab(vocab: readonly string[], name: string) {
  if (vocab.length <= SPECIAL_TOKENS.length) {
    throw new DataError(
      `${name}: ${vocab.length} tokens; expected the ${SPECIAL_TOKENS.length} special tokens and more`,
    );
  }
  SPECIAL_TOKENS.forEach((token, id) => {
    if (vocab[id] !== token) {
      throw new DataError(
        `${name} line ${id + 1}: expected ${token} (id ${id}), found ${JSON.stringify(vocab[id])}`,
      );
    }
  });
  const seen = new Map<string, number>();
  vocab.forEach((token, id) => {
    if (token.length === 0) throw new DataError(`${name} line ${id + 1}: empty token`);
    if (/\s/.test(token)) {
      throw new DataError(`${name} line ${id + 1}: token ${JSON.stringify(token)} holds whitespace`);
    }
    const first = seen.get(token);
    if (first !== undefined) {
      throw new DataError(`${name} line ${id + 1}: token ${JSON.stringify(token)} repeats line ${first + 1}`);
    }
    seen.set(token, id);
  });
}

/** FNV-1a 64 of `bytes`, as 16 hex digits. */
export function fnv1a64(bytes: Uint8Array): string {
  // The 64-bit state as two 32-bit halves; the prime is 2^40 + 0x1b3.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i];
    const low = (lo >>> 0) * 0x1b3;
    hi = (hi * 0x1b3 + (lo >>> 0) * 256 + Math.floor(low / 0x100000000)) % 0x100000000;
    lo = low % 0x100000000;
  }
  return (hi >>> 0).toString(16).padStart(8, "0") + (lo >>> 0).toString(16).padStart(8, "0");
}
