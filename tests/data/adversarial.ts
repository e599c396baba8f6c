/**
 * Seeded adversarial strings for the tokenizer tests: accents and combining marks, CJK, emoji, control
 * characters, full-width forms, Unicode spaces and punctuation, the quote pairs the normalizer
 * rewrites, lone surrogates, very long words and empty or blank strings.
 */

/** A small seeded generator (mulberry32): uniform integers in [0, n). */
export function randomInts(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const range = (from: number, to: number) => ({ from, to });
/** Code point ranges to draw single characters from. */
const RANGES = [
  range(0x20, 0x7E), // printable ASCII
  range(0x00, 0x1F), // C0 controls, tab, LF, CR, VT, FF
  range(0x7F, 0x9F), // DEL and C1 controls (NEL at 0x85)
  range(0xA0, 0xFF), // Latin-1: accents, no-break space, ¡ ¿ « »
  range(0x100, 0x24F), // Latin Extended
  range(0x300, 0x36F), // combining marks
  range(0x370, 0x3FF), // Greek, final sigma
  range(0x400, 0x4FF), // Cyrillic
  range(0x1E00, 0x1FFF), // Latin Extended Additional (Vietnamese), Greek Extended (U+1FEF decomposes to `)
  range(0x2000, 0x206F), // Unicode spaces, dashes, quotes, ellipsis, zero-width joiners
  range(0x2100, 0x214F), // letterlike: Kelvin, Ångström, Ohm signs
  range(0x3000, 0x30FF), // CJK punctuation, ideographic space, kana
  range(0x4E00, 0x4FFF), // CJK ideographs
  range(0xAC00, 0xAD00), // Hangul syllables
  range(0xFB00, 0xFB06), // ligatures
  range(0xFE00, 0xFE0F), // variation selectors
  range(0xFEFF, 0xFEFF), // byte order mark
  range(0xFF01, 0xFF5E), // full-width forms
  range(0x1F300, 0x1FAFF), // emoji
  range(0xD800, 0xDFFF), // lone surrogates
];

const PIECES = [
  "``",
  "''",
  "`",
  "'",
  '"',
  "'s",
  "n't",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "##",
  "###",
  "...",
  "\u0130",
  "\u212A",
  "\u1FEF",
  "\u037E",
  "e\u0301",
  "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}",
  "\u{1F44D}\u{1F3FD}",
  "\r\n",
  "  ",
  "\t",
  "the",
  "tokenization",
  "unbelievable",
  "Caf\u00e9",
  "NA\u00cfVE",
];

/** Thousands of strings are `count` strings drawn with `seed`. */
export function adversarialStrings(count: number, seed: number): string[] {
  const next = randomInts(seed);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const word = (n: number) => Array.from({ length: n }, () => letters[next(26)]).join("");
  const strings = [
    "",
    " ",
    "\n\n",
    "\t \r\n \u000b\u000c",
    word(100),
    word(101),
    "x" + "\u0301".repeat(150),
    "\u{1F600}".repeat(60),
  ];
  while (strings.length < count) {
    const parts: string[] = [];
    const n = next(30);
    for (let i = 0; i < n; i++) {
      const kind = next(10);
      if (kind < 4) {
        const { from, to } = RANGES[next(RANGES.length)];
        parts.push(String.fromCodePoint(from + next(to - from + 1)));
      } else if (kind < 7) parts.push(PIECES[next(PIECES.length)]);
      else if (kind < 9) parts.push(word(1 + next(12)) + (next(2) ? " " : ""));
      else parts.push(next(8) === 0 ? word(95 + next(20)) : " ".repeat(1 + next(3)));
    }
    strings.push(parts.join(""));
  }
  return strings;
}
