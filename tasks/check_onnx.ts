/**
 * Runs the official ONNX checker (`onnx.checker.check_model(..., full_check=True)`, from Debian's
 * python3-onnx) on exported models. With no files, exports the tiny test model as a classifier, as a
 * regression classifier with learned positions and GELU-GLU (the other ops), and as an MLM model to a
 * temporary directory and checks them; otherwise checks the files given.
 *
 *   deno task check:onnx [--python /usr/bin/python3] [model.onnx ...]
 *
 * Needs read, write (the temporary files) and run (python3) permissions; tests get only read, hence a task.
 *
 * @module
 */
import { type OptionTable, parseCommandLine, runTask, usageText } from "../src/args.ts";
import { text } from "../src/arg_values.ts";
import { type ModelConfig, tiny } from "../src/model/config.ts";
import { initParams } from "../src/model/init.ts";
import { exportClassifierOnnx, exportMaskedLmOnnx } from "../src/export/onnx.ts";
import { headLayout } from "../src/model/head_layout.ts";

const CHECK = "import onnx, sys\n" +
  "for p in sys.argv[1:]:\n" +
  "    onnx.checker.check_model(onnx.load(p), full_check=True)\n" +
  "    print('ok', p)\n";

const TABLE = {
  python: {
    value: "<path>",
    default: "/usr/bin/python3",
    help: "The Python that has the onnx package (Debian's python3-onnx).",
    parse: text,
  },
} as const satisfies OptionTable;

const USAGE = `Usage: deno task check:onnx [options] [model.onnx ...]

Runs the official ONNX checker on the models given, or on the tiny test model exported as a classifier,
a regression classifier with learned positions and GELU-GLU, a classifier on mean-pooled states, and an MLM
model.`;

async function main(): Promise<void> {
  const { values, positionals, help } = parseCommandLine(TABLE, Deno.args, { positionals: true });
  if (help) {
    console.log(usageText(USAGE, TABLE));
    return;
  }
  let files = positionals;
  let temp: string | undefined;
  if (files.length === 0) {
    temp = await Deno.makeTempDir({ prefix: "cram-onnx-" });
    const variant: ModelConfig = { ...tiny, positions: "learned", ffn: "gelu-glu" };
    const head = (config: ModelConfig, labels: number) =>
      new Float32Array(headLayout(config, labels).totalSize).fill(0.01);
    const models: [string, Uint8Array][] = [
      ["tiny-classifier", exportClassifierOnnx(tiny, initParams(tiny, { seed: 1 }), head(tiny, 3), 3)],
      [
        "tiny-glu-regression",
        exportClassifierOnnx(variant, initParams(variant, { seed: 1 }), head(variant, 1), 1),
      ],
      [
        "tiny-mean-pooled",
        exportClassifierOnnx(tiny, initParams(tiny, { seed: 1 }), head(tiny, 2), 2, { pooling: "mean" }),
      ],
      ["tiny-mlm", exportMaskedLmOnnx(tiny, initParams(tiny, { seed: 1 }))],
    ];
    files = [];
    for (const [name, bytes] of models) {
      files.push(`${temp}/${name}.onnx`);
      await Deno.writeFile(files.at(-1)!, bytes);
    }
  }
  try {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(values.python, { args: ["-c", CHECK, ...files] }).output();
    } catch (e) {
      throw new Error(
        `cannot run ${values.python}: ${(e as Error).message} (apt-get install -y python3-onnx)`,
      );
    }
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n");
    if (!output.success) throw new Error(`ONNX checker: ${stderr.at(-1)}`);
    console.log(stdout.trim());
  } finally {
    if (temp) await Deno.remove(temp, { recursive: true });
  }
}

if (import.meta.main) await runTask(main);
