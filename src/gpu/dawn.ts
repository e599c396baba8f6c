/**
 * Dawn, Chromium's WebGPU, as a second backend: the npm package `webgpu` (Dawn's Node binding, a native
 * addon) loaded only when asked for, so that the built-in path imports no npm package. Dawn offers what
 * Deno's built-in WebGPU does not: subgroup matrices (`chromium-experimental-subgroup-matrix`), which
 * reach the tensor cores from WGSL.
 *
 * @module
 */
import { envVar } from "../args.ts";

/** The npm package and version that {@linkcode loadDawn} imports when `DAWN_WEBGPU` is not set. */
export const DAWN_PACKAGE = "npm:webgpu@0.6.2";

/**
 * Dawn toggles: `allow_unsafe_apis` exposes the experimental subgroup matrices;
 * `vulkan_enable_f16_on_nvidia` un-hides shader-f16, which Dawn withholds on NVIDIA's Vulkan driver
 * otherwise (measured on driver 580 with H100 and H200); `disable_robustness` drops the bounds clamp Dawn
 * adds to every storage access, which made the tensor-core products 1.6-1.9x faster on an H100 (every
 * kernel bounds its own accesses, and the wrappers check extents before dispatch; set
 * `CRAM_DAWN_ROBUSTNESS=1` to keep the clamps). The environment variable `CRAM_DAWN_TOGGLES`
 * adds more, comma-separated, for experiments.
 */
const DAWN_TOGGLES = ["allow_unsafe_apis", "vulkan_enable_f16_on_nvidia"];
const FAST_TOGGLES = ["disable_robustness"];
/**
 * Toggles turned off: `timestamp_quantization` rounds every GPU timestamp down to a multiple of 65,536 ns
 * (a browser's defence against timing attacks), which made a 5 µs dispatch read as 0 or 65.5 µs in our
 * benchmarks and profiles (measured under Dawn on lavapipe and on an H100).
 */
const DISABLED_TOGGLES = ["timestamp_quantization"];

interface DawnModule {
  create(options: string[]): GPU;
}

/**
 * The one Dawn instance of this process. Kept for the life of the process: adapters and devices refer to
 * their instance, and a collected instance under a live device would take the device with it.
 */
let instance: Promise<GPU> | undefined;

/**
 * Dawn's `navigator.gpu` equivalent. Imports the module named by the environment variable `DAWN_WEBGPU`
 * (a path to the package's `index.js`, for machines without network) or else {@linkcode DAWN_PACKAGE}
 * (downloaded into Deno's cache on first use, about 51 MB). Rejects with the import's error.
 */
export function loadDawn(): Promise<GPU> {
  instance ??= (async () => {
    const path = envVar("DAWN_WEBGPU");
    const specifier = path ? new URL(path, `file://${Deno.cwd()}/`).href : DAWN_PACKAGE;
    const dawn = await import(specifier) as DawnModule;
    const toggles = [
      ...DAWN_TOGGLES,
      ...(envVar("CRAM_DAWN_ROBUSTNESS") === "1" ? [] : FAST_TOGGLES),
      ...(envVar("CRAM_DAWN_TOGGLES")?.split(",") ?? []),
    ];
    return dawn.create([
      `enable-dawn-features=${toggles.join(",")}`,
      `disable-dawn-features=${DISABLED_TOGGLES.join(",")}`,
      "backend=vulkan",
    ]);
  })();
  return instance;
}

/** Whether this process has asked for Dawn yet (whatever came of it). */
export function dawnRequested(): boolean {
  return instance !== undefined;
}
