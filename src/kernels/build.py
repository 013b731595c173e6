"""Builds the project's C++ CPU kernels (csrc/*.cc) into one shared library with g++, and says whether this CPU can run
them fast.

    python -m src.kernels.build          # builds csrc/build/libernie_cpu_kernels.so (or says why it cannot)
    python -m src.kernels.build --optional   # the same, but a failed build is a warning and exits 0 (CI, setup)

The library links the oneDNN that ships inside the mindspore wheel (``mindspore/lib/libdnnl.so.3``), so nothing is
downloaded; the build needs only g++. ``kernel_library()`` builds on first use and rebuilds when a source is newer.
"""
import glob
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIR = os.path.join(REPO, "csrc")
BUILD_DIR = os.path.join(SOURCE_DIR, "build")
LIBRARY = os.path.join(BUILD_DIR, "libernie_cpu_kernels.so")
BF16_FLAG = "avx512_bf16"


class KernelUnavailable(RuntimeError):
    """The custom kernels cannot be used here; the message says why."""


def cpu_flags():
    """The ISA flags of the first CPU in /proc/cpuinfo (empty set where that file is missing)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def check_bf16_cpu():
    """Raises KernelUnavailable unless the CPU has AVX512_BF16: without it oneDNN's bf16 GEMM is emulated or refused
    and would be slower than fp32."""
    flags = cpu_flags()
    if BF16_FLAG not in flags:
        raise KernelUnavailable(f"this CPU lacks {BF16_FLAG} (/proc/cpuinfo flags), so bf16 GEMMs would not be faster "
                                f"than float32; use compute_dtype float32")


def onednn_dir():
    import mindspore
    folder = os.path.join(os.path.dirname(mindspore.__file__), "lib")
    if not glob.glob(os.path.join(folder, "libdnnl.so.3")):
        raise KernelUnavailable(f"{folder}/libdnnl.so.3 not found: this mindspore wheel does not bundle oneDNN 3")
    return folder


def _sources():
    return sorted(glob.glob(os.path.join(SOURCE_DIR, "*.cc")))


def _headers():
    return sorted(glob.glob(os.path.join(SOURCE_DIR, "*.h")))


def build(force=False):
    """Compiles csrc/*.cc into LIBRARY unless it is newer than every source and header; returns its path. Raises
    KernelUnavailable with g++'s message when the build fails."""
    sources = _sources()
    if not force and os.path.isfile(LIBRARY) and all(os.path.getmtime(LIBRARY) >= os.path.getmtime(s)
                                                     for s in sources + _headers()):
        return LIBRARY
    lib_dir = onednn_dir()
    os.makedirs(BUILD_DIR, exist_ok=True)
    # Written to a temporary name and renamed: concurrent processes (tests, bench rows) never load a half-written file.
    handle, partial = tempfile.mkstemp(suffix=".so", dir=BUILD_DIR)
    os.close(handle)
    # -fno-math-errno: std::sqrt may then vectorise (the AdamWeightDecay loop: 2x faster).
    command = ["g++", "-O3", "-fopenmp-simd", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC", "-pthread",
               *sources, "-o", partial, f"-L{lib_dir}", "-l:libdnnl.so.3", f"-Wl,-rpath,{lib_dir}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        os.unlink(partial)
        raise KernelUnavailable(f"cannot run g++ to build {LIBRARY}: {error}") from error
    if done.returncode:
        os.unlink(partial)
        raise KernelUnavailable(f"g++ failed to build {LIBRARY}: {done.stderr.strip()[-2000:]}")
    os.replace(partial, LIBRARY)
    return LIBRARY


_built = None


def kernel_library():
    """The path of the built library (built once per process)."""
    global _built
    if _built is None:
        _built = build()
    return _built


def aot_op(function, out_shape, out_dtype, op_class=None):
    """The MindSpore AOT custom operator (``ops.Custom`` or its subclass ``op_class``) running ``function`` of the
    built library; ``out_shape`` / ``out_dtype`` map the inputs' shapes / types to the outputs'."""
    from mindspore import ops
    return (op_class or ops.Custom)(f"{kernel_library()}:{function}", out_shape=out_shape, out_dtype=out_dtype,
                                    func_type="aot")


def main():
    try:
        path = build(force="--force" in sys.argv)
    except KernelUnavailable as error:
        if "--optional" in sys.argv:
            print(f"warning: custom CPU kernels not built, so compute_dtype bfloat16 and --fused_cpu_kernels are "
                  f"unavailable on CPU; everything else runs on MindSpore's stock operators. Reason: {error}",
                  file=sys.stderr)
            return 0
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(path)
    try:
        check_bf16_cpu()
    except KernelUnavailable as error:
        print(f"note: built, but {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
