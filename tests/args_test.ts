import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { nearestOption, parseArgsMessage } from "../src/args.ts";

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
  assert.equal(parseArgsMessage(new Error("first line\nsecond line")), "first line");
});
