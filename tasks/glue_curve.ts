/**
 * GLUE average against pretraining budget, from run folders that `deno task eval` evaluated (with and
 * without `--from-scratch`):
 *
 *   deno task glue-curve [--out DIR] [--title TEXT] runs/a runs/b ...
 *
 * prints a Markdown table (preset, masking rate, dataset tokens, minutes, tokens, MLM loss, finetuning learning
 * rate, both GLUE averages, seeds) and writes DIR/glue-budget-minutes.svg and DIR/glue-budget-tokens.svg: a line
 * per preset, and per masking rate, dataset size or finetuning rate where the runs of a preset differ in them.
 *
 * @module
 */
import { type OptionTable, parseCommandLine, runTask, UsageError, usageText } from "../src/args.ts";
import { text } from "../src/arg_values.ts";
import { budgetCurveSvg, budgetTableMarkdown, readBudgetPoint } from "../src/eval/budget_curve.ts";
import { writeFileAtomic } from "../src/fs.ts";

const TABLE = {
  out: { value: "<dir>", default: ".", help: "Where the two SVG plots go.", parse: text },
  title: {
    value: "<text>",
    default: "GLUE average against pretraining budget",
    help: "The plots' title (say what the runs share: machine, data).",
    parse: text,
  },
} as const satisfies OptionTable;

const USAGE = `Usage: deno task glue-curve [options] <run folder>...

Reads each run folder's summary.json, glue.json and glue-from-scratch.json, prints the GLUE average
against the pretraining budget as a Markdown table, and plots it against minutes and against tokens seen:
a line per preset, split where its runs differ in masking rate or dataset size (read from the newest
checkpoint when summary.json predates them) or in the learning rate glue.json's finetuning used.`;

async function main(): Promise<void> {
  const { values, positionals, help } = parseCommandLine(TABLE, Deno.args, { positionals: true });
  if (help) {
    console.log(usageText(USAGE, TABLE));
    return;
  }
  if (positionals.length === 0) throw new UsageError("give at least one run folder (--help for the usage)");
  const points = [];
  for (const run of positionals) points.push(await readBudgetPoint(run.replace(/\/+$/, "")));
  console.log(budgetTableMarkdown(points));
  await Deno.mkdir(values.out, { recursive: true });
  for (const x of ["minutes", "tokens"] as const) {
    const path = `${values.out}/glue-budget-${x}.svg`;
    await writeFileAtomic(
      path,
      new TextEncoder().encode(budgetCurveSvg(points, { x, title: values.title }) + "\n"),
    );
    console.log(`wrote ${path}`);
  }
}

if (import.meta.main) await runTask(main);
