/**
 * `deno task pretrain`: a budgeted cramming run (src/train/pretrain.ts). Parses the options, runs, and
 * prints the summary as JSON on stdout (progress goes to stderr). Ctrl-C, SIGTERM (schedulers, `timeout`,
 * `docker stop`) and SIGHUP (a closed terminal) save a checkpoint and stop; a second one quits at once;
 * `--resume` continues.
 *
 * This is the training path: it imports no npm package, so it runs where there is no node_modules.
 *
 * @module
 */
import { runTask } from "../src/args.ts";
import { helpText, parseOptions } from "../src/train/options.ts";
import { pretrain } from "../src/train/pretrain.ts";
import { formatRunEnd, Progress } from "../src/train/progress.ts";

/** The signals that save a checkpoint and stop a run (Windows knows only SIGINT and SIGBREAK). */
const STOP_SIGNALS: Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP"];

/** Listens for the signals that stop a run: the first asks for a checkpoint, a second quits at once. */
function listenForStop(progress: Progress) {
  let requested = false;
  const onSignal = () => {
    if (requested) Deno.exit(130);
    requested = true;
    progress.message("interrupted: saving a checkpoint (interrupt again to quit without it)");
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  return {
    requested: () => requested,
    close: () => STOP_SIGNALS.forEach((signal) => Deno.removeSignalListener(signal, onSignal)),
  };
}

/** Runs the command line `args`; the exit code. */
async function main(args: string[]): Promise<number> {
  const parsed = parseOptions(args);
  if (parsed.help) {
    console.log(helpText());
    return 0;
  }
  const progress = new Progress();
  const result = await pretrain(parsed, { progress, listenForStop: () => listenForStop(progress) });
  if (!result.trained) {
    console.log(result.message);
    return 0;
  }
  const { summary, options } = result;
  progress.message(formatRunEnd(summary, options.out));
  // The summary as JSON on stdout, for scripts.
  console.log(JSON.stringify(summary));
  if (summary.stopped !== "non-finite") return 0;
  console.error(
    `error: stopped: ${options.maxNonfinite} steps in a row had non-finite gradients; the last good ` +
      `checkpoint in ${options.out}/checkpoints is intact (try a lower --peak-lr)`,
  );
  return 1;
}

if (import.meta.main) await runTask(() => main(Deno.args));
