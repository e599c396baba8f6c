/**
 * `deno task eval --checkpoint runs/x --glue-dir <dir>`: GLUE finetuning of a pretrained run with our
 * WebGPU engine, ONNX export, and scoring with onnxruntime-web and WebGPU (src/eval/run.ts). Prints
 * progress on stderr and the Markdown table on stdout; writes into the run folder (or --out), each file
 * atomically:
 *
 *   glue.json                    the summary (glue-from-scratch.json with --from-scratch), rewritten after
 *                                every task (with the tasks still pending) so that --resume can go on
 *   glue/<task>-seed<n>.onnx     every finetuned model (glue-from-scratch/ with --from-scratch)
 *   mlm.onnx                     the pretrained MLM model
 *   glue-features/<task>.json    with --write-features: the tokenized examples and recipe, for the peer
 *   glue-trace/<task>-seed<n>.json  with --trace: a run's trace, for the peer's lockstep replay
 *
 * Exits 1 with `error: <message>` on bad input, and after writing its output when ONNX and WebGPU logits
 * differ by 1e-4 or more.
 *
 * @module
 */
import { runTask } from "../src/args.ts";
import { evalHelpText, parseEvalOptions } from "../src/eval/options.ts";
import { glueMarkdown } from "../src/eval/report.ts";
import { LOGIT_TOLERANCE, runEvaluation } from "../src/eval/run.ts";

/** Runs the command line; the exit code. */
async function main(): Promise<number> {
  const options = parseEvalOptions(Deno.args);
  if (options.help) {
    console.log(evalHelpText());
    return 0;
  }
  const log = (line: string) => console.error(line);
  const { summary, maxLogitDifference, summaryPath, onnxDir } = await runEvaluation(options, log);
  console.log(glueMarkdown(summary));
  log(`wrote ${summaryPath}${onnxDir ? ` and the ONNX models in ${onnxDir}/` : ""}`);
  if (options.onnx && !(maxLogitDifference < LOGIT_TOLERANCE)) {
    console.error(
      `error: ONNX and WebGPU logits differ by up to ${maxLogitDifference.toExponential(2)}, ` +
        `the limit is ${LOGIT_TOLERANCE}`,
    );
    return 1;
  }
  return 0;
}

if (import.meta.main) await runTask(main);
