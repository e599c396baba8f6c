/**
 * A small builder of ONNX graphs: typed inputs and outputs, initializers from typed arrays, nodes with
 * generated output names, and encoding to the bytes of an ONNX model file through `onnx-proto` (the
 * onnx.proto schema compiled by protobufjs).
 *
 * @module
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** The opset the exporter targets: the newest that Debian's ONNX checker (onnx 1.12) knows. */
export const OPSET = 17;
/** The IR version that goes with opset 17. */
export const IR_VERSION = 8;

/** Element types the exported models use. */
export type ElementType = "float32" | "int64";

const ELEMENT_TYPES: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

/** A node attribute; the key says its ONNX type. */
export type Attribute = { int: number } | { ints: number[] } | { float: number };

/** A dimension: a fixed size, or a name for a dynamic axis (e.g. "batch"). */
export type Dim = number | string;

/** Builds one ONNX graph; every method returns the name of the value it creates. */
export class OnnxGraph {
  readonly #nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly #initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  readonly #inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  readonly #outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  readonly #names = new Set<string>();

  /** Declares a graph input. */
  input(name: string, type: ElementType, dims: Dim[]): string {
    this.#inputs.push(valueInfo(this.#claim(name), type, dims));
    return name;
  }

  /** Declares `name`, a value some node produces, as a graph output. */
  output(name: string, type: ElementType, dims: Dim[]): void {
    this.#outputs.push(valueInfo(name, type, dims));
  }

  /** Adds an initializer holding `data` (row-major, little-endian) with shape `dims`. */
  initializer(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new RangeError(`initializer ${name}: ${data.length} values for shape [${dims.join(", ")}]`);
    }
    this.#initializers.push(onnx.TensorProto.create({
      name: this.#claim(name),
      dims,
      dataType: data instanceof Float32Array ? ELEMENT_TYPES.float32 : ELEMENT_TYPES.int64,
      rawData: littleEndianBytes(data),
    }));
    return name;
  }

  /** An int64 initializer, e.g. a shape or an index; `dims` [] makes a scalar. */
  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.initializer(name, dims, BigInt64Array.from(values, BigInt));
  }

  /** Adds a node with one output, named `output` or generated from the op type. */
  node(
    opType: string,
    inputs: string[],
    attributes: Record<string, Attribute> = {},
    output?: string,
  ): string {
    return this.nodeOutputs(opType, inputs, 1, attributes, output ? [output] : undefined)[0];
  }

  /** Adds a node with `count` outputs (e.g. Split) and returns their names. */
  nodeOutputs(
    opType: string,
    inputs: string[],
    count: number,
    attributes: Record<string, Attribute> = {},
    outputs?: string[],
  ): string[] {
    for (const input of inputs) {
      if (!this.#names.has(input)) throw new RangeError(`${opType} node: unknown input ${input}`);
    }
    const index = this.#nodes.length;
    const names = outputs ??
      Array.from({ length: count }, (_, i) => `${opType}_${index}${count > 1 ? `_${i}` : ""}`);
    this.#nodes.push(onnx.NodeProto.create({
      name: `${opType}_${index}`,
      opType,
      input: inputs,
      output: names.map((name) => this.#claim(name)),
      attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
    }));
    return names;
  }

  /** The model file: this graph at {@linkcode OPSET} with the standard ("") domain only. */
  encode(options: { name: string; producer: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: "", version: OPSET }],
      producerName: options.producer,
      graph: {
        name: options.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  #claim(name: string): string {
    if (this.#names.has(name)) throw new RangeError(`ONNX graph: the name ${name} is used twice`);
    this.#names.add(name);
    return name;
  }
}

function valueInfo(name: string, type: ElementType, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPES[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: Attribute) {
  const { AttributeType } = onnx.AttributeProto;
  if ("int" in value) return onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value.int });
  if ("ints" in value) {
    return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value.ints });
  }
  return onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value.float });
}

/** ONNX raw data is little-endian; so are the typed arrays of every platform Deno runs on, checked here. */
function littleEndianBytes(data: Float32Array | BigInt64Array): Uint8Array {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("big-endian hosts are not supported");
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
