import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import {
  flagOf,
  nearestOption,
  type OptionTable,
  parseArgsMessage,
  parseCommandLine,
  UsageError,
  usageText,
} from "../src/args.ts";
import { positiveInteger, text } from "../src/arg_values.ts";

const options = { seed: { type: "string" }, help: { type: "boolean" } } as const;

/** The message for `args`, or undefined when they parse. */
function messageOf(args: string[]): string | undefined {
  try {
    parseArgs({ args, options });
    return undefined;
  } catch (e) {
    return parseArgsMessage(e, options);
  }
}

Deno.test("parseArgsMessage names the option in one line", () => {
  assert.equal(messageOf(["--seed", "1"]), undefined);
  // A near miss suggests the option; a far one points to --help.
  assert.equal(messageOf(["--sed", "1"]), "unknown option --sed (did you mean --seed?)");
  assert.equal(messageOf(["--seeed=1"]), "unknown option --seeed (did you mean --seed?)");
  assert.equal(messageOf(["--frobnicate"]), "unknown option --frobnicate (--help lists the options)");
  assert.equal(nearestOption("x", ["h"]), undefined);
  assert.equal(messageOf(["--help=yes"]), "--help takes no value");
  assert.equal(
    messageOf(["--seed", "-3"]),
    "--seed: expected a value (write --seed=<value> for one that starts with -)",
  );
  assert.equal(messageOf(["stray"]), "unexpected argument stray (--help lists the options)");
  assert.equal(parseArgsMessage(new Error("first line\nsecond line")), "first line");
});

const TABLE = {
  input: { value: "<path>", required: true, help: "The input.", parse: text },
  maxSteps: { value: "<n>", default: 3, help: "At most this many steps.", parse: positiveInteger },
  label: { value: "<text>", shown: "none", help: "A label.", parse: text },
  tag: { value: "<text>", multiple: true, help: "A tag; repeat it for more.", parse: text },
  dryRun: { switch: true, help: "Change nothing." },
} as const satisfies OptionTable;

Deno.test("flagOf turns a camelCase key into its kebab-case flag", () => {
  assert.equal(flagOf("maxSteps"), "--max-steps");
  assert.equal(flagOf("minCharsPerToken"), "--min-chars-per-token");
  assert.equal(flagOf("float64"), "--float64");
});

Deno.test("parseCommandLine gives every option's value, the defaults and what was given", () => {
  const line = parseCommandLine(TABLE, ["--input", "a", "--tag=x", "--tag", "y", "--dry-run"]);
  assert.deepEqual(line.values, { input: "a", maxSteps: 3, tag: ["x", "y"], dryRun: true });
  assert.deepEqual([...line.given].sort(), ["dryRun", "input", "tag"]);
  assert.equal(line.help, false);
  assert.deepEqual(parseCommandLine(TABLE, ["--input=a", "--max-steps", "7"]).values, {
    input: "a",
    maxSteps: 7,
    tag: [],
    dryRun: false,
  });
  const withPaths = parseCommandLine(TABLE, ["--input", "a", "p1", "p2"], { positionals: true });
  assert.deepEqual(withPaths.positionals, ["p1", "p2"]);
});

Deno.test("parseCommandLine: -h needs no required option; mistakes are one-line UsageErrors", () => {
  assert.equal(parseCommandLine(TABLE, ["-h"]).help, true);
  assert.equal(parseCommandLine(TABLE, ["--help"]).help, true);
  const cases: [string[], string][] = [
    [[], "--input is required (--help lists the options)"],
    [["--input", "a", "--max-step", "2"], "unknown option --max-step (did you mean --max-steps?)"],
    [["--input", "a", "--max-steps", "0"], '--max-steps: expected a positive integer, got "0"'],
    [["--input", "a", "--dry-run=1"], "--dry-run takes no value"],
    [["--input", "a", "extra"], "unexpected argument extra (--help lists the options)"],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseCommandLine(TABLE, args), (e: Error) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.equal(e.message, message);
      return true;
    });
  }
});

Deno.test("usageText lists every option with its placeholder and default, wrapped at 100 columns", () => {
  const help = usageText("Usage: thing [options]\n\nDoes a thing.", {
    ...TABLE,
    verbose: { switch: true, help: "Say a great deal. ".repeat(8).trim() },
  });
  const lines = help.split("\n");
  assert.deepEqual(lines.slice(0, 5), ["Usage: thing [options]", "", "Does a thing.", "", "Options:"]);
  assert.ok(lines.every((l) => l.length <= 100));
  // Descriptions start in one column, two spaces after the longest option.
  assert.match(help, /\n {2}--input <path> {3}The input\.\n/);
  assert.match(help, /\n {2}--max-steps <n> {2}At most this many steps\. \(default: 3\)\n/);
  assert.match(help, /\n {2}--label <text> {3}A label\. \(default: none\)\n/);
  assert.match(help, /\n {2}--tag <text> {5}A tag; repeat it for more\.\n/);
  assert.match(help, /\n {2}--dry-run {8}Change nothing\.\n/);
  // A long description continues under its own column.
  assert.match(help, /\n {2}--verbose {8}Say a great deal\.[^\n]*\n {19}great deal\./);
  assert.equal(lines.at(-1), "  -h, --help       Show this text.");
});
