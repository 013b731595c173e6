#!/bin/sh
# Builds ascend310_infer/out/main. Needs an Ascend toolkit (CANN: ASCEND_HOME_PATH or /usr/local/Ascend) and the
# MindSpore C++ inference library of the Ascend wheel (include/api/model.h, lib/libmindspore.so), found through
# MINDSPORE_PATH or the mindspore package that python3 imports.
# Exit status: 0 built; 2 no Ascend toolkit or no MindSpore C++ library (run the CPU stand-in instead:
# python -m src.inference, as scripts/run_infer_310.sh does); anything else: the build failed. POSIX sh.
case "${1:-}" in
  -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
esac
cd "$(dirname "$0")" || exit 1

ascend_home=${ASCEND_HOME_PATH:-/usr/local/Ascend}
if [ ! -d "$ascend_home" ]; then
  echo "error: no Ascend toolkit found (ASCEND_HOME_PATH is not set and /usr/local/Ascend does not exist)." >&2
  echo "The 310 app needs CANN and an Ascend device. Elsewhere, run the MindIR on the same .bin files with the" >&2
  echo "CPU stand-in: python -m src.inference --mindir_path M --input0_path D0 --input1_path D1 --input2_path D2" >&2
  exit 2
fi

ms_path=${MINDSPORE_PATH:-$(python3 -c "import mindspore, os; print(os.path.dirname(mindspore.__file__))" 2>/dev/null)}
if [ -z "$ms_path" ] || [ ! -f "$ms_path/include/api/model.h" ] || ! ls "$ms_path"/lib/libmindspore.so* >/dev/null 2>&1; then
  echo "error: no MindSpore C++ inference library at '${ms_path:-<mindspore not importable>}' (include/api/model.h and" >&2
  echo "lib/libmindspore.so; the Ascend wheel of mindspore ships them, the CPU wheel does not). Install the Ascend" >&2
  echo "wheel or set MINDSPORE_PATH to its package folder." >&2
  exit 2
fi

for tool in cmake make; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done
rm -rf build out
cmake -S . -B build -DMINDSPORE_PATH="$ms_path" && cmake --build build -j "$(nproc)" || exit 1
echo "built $(pwd)/out/main"
