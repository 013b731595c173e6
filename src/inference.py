"""CPU stand-in for ``ascend310_infer/out/main`` (the seed's command, kept for ``scripts/run_infer_310.sh``): runs a
MindIR on ``preprocess.py``'s ``.bin`` files and writes the result files the app writes.

    python -m src.inference --mindir_path m.mindir --input0_path 00_data --input1_path 01_data \\
        --input2_path 02_data --result_path ./result_files
"""
import argparse

from .cli import run_cli
from .runtime import init_runtime
from .serving.ascend310 import run_mindir_on_bins


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m src.inference",
        description="CPU stand-in for ascend310_infer/out/main: run a MindIR on preprocess.py's .bin files",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--mindir_path", required=True, help="the exported .mindir (its sidecar JSON beside it)")
    parser.add_argument("--input0_path", required=True, help="input_ids folder (00_data)")
    parser.add_argument("--input1_path", required=True, help="input_mask folder (01_data)")
    parser.add_argument("--input2_path", required=True, help="token_type_id folder (02_data)")
    parser.add_argument("--result_path", default="./result_files", help="where the result .bin files go")
    parser.add_argument("--device_target", default="CPU", help="MindSpore device")
    parser.add_argument("--device_id", type=int, default=0, help="device id (not used on CPU)")
    return parser


def run_on_bins(argv=None):
    args = build_parser().parse_args(argv)
    init_runtime(args.device_target, args.device_id if args.device_target != "CPU" else None)
    latency = run_mindir_on_bins(args.mindir_path, [args.input0_path, args.input1_path, args.input2_path],
                                 args.result_path)
    print(f"NN inference cost average time: {latency:.3f} ms (MindSpore {args.device_target} stand-in)")


def main(argv=None):
    return run_cli(run_on_bins, argv)


if __name__ == "__main__":
    main()
