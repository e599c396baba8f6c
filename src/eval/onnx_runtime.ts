/**
 * Runs exported models with onnxruntime-web's WebAssembly backend, so the scores come from an inference
 * engine other than our own kernels. Threads are on: Deno's workers and SharedArrayBuffer carry
 * onnxruntime-web's threaded build, and it finds its .wasm next to its own module in the npm cache, so
 * read permission is all it needs.
 *
 * @module
 */
import * as ort from "onnxruntime-web";
import { describe } from "../data/errors.ts";
import type { TokenBatch } from "./features.ts";

/** An ONNX model that could not be loaded or run; the message is one line. */
export class OnnxRuntimeError extends Error {
  override name = "OnnxRuntimeError";
}

/** A loaded model with inputs `input_ids` and `attention_mask` and output `logits`. */
export interface OnnxModel {
  /** The logits of `batch` (float32, row-major) and their shape. */
  run(batch: TokenBatch): Promise<{ logits: Float32Array; dims: number[] }>;
  /** Frees the session's WebAssembly memory. */
  release(): Promise<void>;
}

/** Options of {@linkcode loadOnnx}. */
export interface LoadOnnxOptions {
  /** Names the model in error messages, e.g. its file name. */
  name: string;
  /**
   * WebAssembly threads (default: the number of cores). onnxruntime-web reads this once, when its first
   * session is created; later values are ignored.
   */
  threads?: number;
}

/** Loads ONNX model bytes into an onnxruntime-web session on the wasm backend. */
export async function loadOnnx(bytes: Uint8Array, options: LoadOnnxOptions): Promise<OnnxModel> {
  ort.env.wasm.numThreads = options.threads ?? navigator.hardwareConcurrency;
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (e) {
    throw new OnnxRuntimeError(`cannot load ONNX model ${options.name}: ${describe(e)}`);
  }
  for (const name of ["input_ids", "attention_mask"]) {
    if (!session.inputNames.includes(name)) {
      await session.release();
      throw new OnnxRuntimeError(`ONNX model ${options.name} has no input ${name}`);
    }
  }
  if (!session.outputNames.includes("logits")) {
    await session.release();
    throw new OnnxRuntimeError(`ONNX model ${options.name} has no output logits`);
  }
  return {
    async run(batch) {
      const { batch: rows, seq } = batch;
      const tensor = (values: Int32Array, what: string) => {
        if (values.length !== rows * seq) {
          throw new RangeError(
            `${what}: expected ${rows * seq} values for [${rows}, ${seq}], got ${values.length}`,
          );
        }
        return new ort.Tensor("int64", BigInt64Array.from(values, BigInt), [rows, seq]);
      };
      const feeds = {
        input_ids: tensor(batch.inputIds, "input_ids"),
        attention_mask: tensor(batch.attentionMask, "attention_mask"),
      };
      let output: ort.Tensor;
      try {
        output = (await session.run(feeds)).logits;
      } catch (e) {
        throw new OnnxRuntimeError(
          `ONNX model ${options.name} failed on a [${rows}, ${seq}] batch: ${describe(e)}`,
        );
      }
      if (output.type !== "float32") {
        throw new OnnxRuntimeError(`ONNX model ${options.name}: logits are ${output.type}, expected float32`);
      }
      return { logits: output.data as Float32Array, dims: [...output.dims] };
    },
    release: () => session.release(),
  };
}
