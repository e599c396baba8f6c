#!/usr/bin/env bash
# Builds <repo>/.device-npm/ for running `tasks/eval.ts` (ONNX export + onnxruntime-web scoring) on an
# offline machine without npm access:
#   .device-npm/imports.json   import map: the bare specifiers of the ONNX half -> their npm: specifiers
#                              (taken from deno.json)
#   .device-npm/deno-dir/      a pruned DENO_DIR: only the npm packages those two need, only the files
#                              they load at runtime, plus every package's registry.json/package.json
#
# Usage: .ci/device_npm.sh [repo]   (default: the repo holding this script)
# Env:   SRC_DENO_DIR  the full Deno cache to copy from (default ~/.cache/deno; filled from the npm
#                      registry if a package is missing, which needs network)
# Run on the offline machine, from the repo root:
#   DENO_DIR=$PWD/.device-npm/deno-dir deno run -A --cached-only --no-config \
#     --import-map .device-npm/imports.json tasks/eval.ts --checkpoint runs/x --glue-dir ../shared/data/glue
set -euo pipefail

REPO=$(cd "${1:-$(dirname "$0")/..}" && pwd)
SRC=${SRC_DENO_DIR:-$HOME/.cache/deno}
OUT=$REPO/.device-npm
SPECS=(onnx-proto onnxruntime-web)   # the bare specifiers src/ imports for the ONNX half

git -C "$REPO" check-ignore -q .device-npm/x || { echo "error: .device-npm is not git-ignored in $REPO" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. imports.json from deno.json's import map.
jq '{imports: (.imports | with_entries(select(.key as $k | $ARGS.positional | index($k))))}' \
  "$REPO/deno.json" --args "${SPECS[@]}" > "$tmp/imports.json"
for s in "${SPECS[@]}"; do
  jq -e --arg s "$s" '.imports[$s] | startswith("npm:")' "$tmp/imports.json" > /dev/null ||
    { echo "error: deno.json maps no npm: specifier for $s" >&2; exit 1; }
done

# 2. The resolved npm package graph (name@version -> folder in $SRC), as Deno itself resolves it
#    without deno.json/deno.lock (how the offline run resolves it too).
for s in "${SPECS[@]}"; do echo "import \"$s\";"; done > "$tmp/entry.ts"
DENO_DIR=$SRC deno info --json --no-config --import-map "$tmp/imports.json" "$tmp/entry.ts" \
  2> "$tmp/info.err" > "$tmp/info.json" || { cat "$tmp/info.err" >&2; exit 1; }
mapfile -t PKGS < <(jq -r '.npmPackages | to_entries[] | "\(.value.name)\t\(.value.version)\t\(.value.localPath)"' "$tmp/info.json")
[ "${#PKGS[@]}" -gt 0 ] || { echo "error: deno info found no npm package" >&2; exit 1; }

NEW=$tmp/.device-npm
REG=$NEW/deno-dir/npm/registry.npmjs.org
mkdir -p "$REG"

# Copies the given paths (files or folders, relative to the package folder; missing ones are skipped)
# from $src to $dst, leaving out type declarations, docs and tests.
keep() {
  local src=$1 dst=$2; shift 2
  mkdir -p "$dst"
  (cd "$src" && for p in "$@"; do
     [ -e "$p" ] || continue
     find "$p" -type f ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' ! -name '*.md' \
       ! -name '*.d.ts.map' ! -name '.npmignore' ! -name '.scripts-warned-*' ! -name '.deno*' \
       ! -path '*/tests/*' ! -path '*/test/*' ! -path '*/bench/*' ! -name 'tsconfig.json' ! -name '*.jsdoc' -print0 |
       xargs -0 -r cp --parents -t "$dst"
   done)
}

for row in "${PKGS[@]}"; do
  IFS=$'\t' read -r name version dir <<< "$row"
  [ -f "$dir/package.json" ] || { echo "error: $name@$version is not in $SRC (run online once)" >&2; exit 1; }
  dst=$REG/$name/$version
  cp "$(dirname "$dir")/registry.json" "$(dirname "$dst")/" 2>/dev/null ||
    { mkdir -p "$(dirname "$dst")"; cp "$(dirname "$dir")/registry.json" "$(dirname "$dst")/"; }
  # Every package in the graph keeps its folder (Deno checks that each is installed) and package.json.
  common=(package.json LICENSE LICENSE.md LICENSE.txt license)
  case "$name" in
    onnxruntime-web)
      # Deno resolves the "node" export: dist/ort.node.min.mjs (which bundles flatbuffers, guid-typescript,
      # platform, protobufjs 7, long); the wasm backend with threads loads ort-wasm-simd-threaded.{mjs,wasm}
      # in the main thread and in each worker. Source maps: Deno reads them for stack traces.
      keep "$dir" "$dst" "${common[@]}" dist/ort.node.min.mjs dist/ort.node.min.mjs.map \
        dist/ort-wasm-simd-threaded.mjs dist/ort-wasm-simd-threaded.wasm ;;
    onnxruntime-common) keep "$dir" "$dst" "${common[@]}" dist/esm ;;
    onnx-proto) keep "$dir" "$dst" "${common[@]}" dist/onnx.js ;;
    protobufjs)
      case "$version" in
        6.*) keep "$dir" "$dst" "${common[@]}" index.js light.js minimal.js src ;;  # onnx-proto's: minimal.js
        *) keep "$dir" "$dst" "${common[@]}" ;;                                  # bundled into ort
      esac ;;
    flatbuffers|guid-typescript|platform|@types/*|undici-types)
      keep "$dir" "$dst" "${common[@]}" ;;  # bundled into ort, or type declarations only
    long|@protobufjs/*)
      keep "$dir" "$dst" . ;;  # small; protobufjs 6 may load them (long through inquire)
    *)
      echo "warning: no pruning rule for $name@$version, copying it whole" >&2
      keep "$dir" "$dst" . ;;
  esac
done
cp "$tmp/imports.json" "$NEW/imports.json"

rm -rf "$OUT"
mv "$NEW" "$OUT"
echo "built $OUT: ${#PKGS[@]} npm packages, $(du -sh "$OUT" | cut -f1)" >&2
