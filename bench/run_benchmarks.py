"""ERNIE on MindSpore vs transformers + torch, onnxruntime and tokenizers, side by side on this machine.

    python bench/run_benchmarks.py --sizes tiny base --seq_lens 128 512 --threads 2 --json bench/results.json

Runs each measurement of ``bench/workers.py`` in its own process, with the same thread count for every framework, then
prints one table of the measurements and one of the ratios (ours / theirs: above 1 means ours is faster or, for memory
and CPU seconds per call, larger) and writes both as JSON. ``--only train,infer,tokenize,e2e`` picks row groups. Rows
whose optional package (torch, transformers, onnx, onnxruntime, tokenizers) is missing are marked skipped, with the
reason in the table.

Each of training and inference runs in float32 and in bfloat16 (ours: ``compute_dtype="bfloat16"``, the bf16 GEMM custom
operators of src/kernels, skipped with the reason on a CPU without AVX512_BF16; torch: ``torch.autocast``); ours also in
float32 with the fused CPU kernels (``ms-*-fused``: LayerNorm, softmax and dropout, and AdamWeightDecay with the
clipping in training; the bf16 rows use them too). Every MindSpore row is also compared with torch's best mode on this
CPU (``torch-*-best``: the faster of its fp32 and bf16 rows). The CPU model and its ISA flags that decide these speeds
(avx512f, avx512_bf16, amx_bf16, amx_int8) are in the JSON and the table header. ``train`` and ``infer`` need no
data files (the export row writes a vocabulary of the model's size when ``--vocab_file`` is missing); ``tokenize``
and ``e2e`` need ``--vocab_file`` and ``--text_file``.

While each row runs, the CPU use of every other process on the machine is sampled: a row during which a foreign
process used more than ``--busy_pct`` of a core is marked contended (its timing is not trustworthy). With
``--wait_quiet S`` each row first waits up to S seconds for the machine to be quiet.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from src.fileio import read_json, write_json  # noqa: E402

GROUPS = {
    "train": ("ms-train", "ms-train-fused", "ms-train-bf16", "torch-train", "torch-train-bf16"),
    "infer": ("ms-infer", "ms-infer-fused", "ms-infer-bf16", "export", "ort-fp32-infer", "ort-int8-infer",
              "torch-infer", "torch-infer-bf16"),
    "tokenize": ("tokenize",),
    "e2e": ("e2e",),
}
GROUPS_NEEDING_DATA = ("tokenize", "e2e")  # read --vocab_file and --text_file
TORCH_ROWS = ("torch-train", "torch-infer", "torch-train-bf16", "torch-infer-bf16")
NEEDS = dict({row: ("torch", "transformers") for row in TORCH_ROWS},
             **{"export": ("onnx", "onnxruntime"), "ort-fp32-infer": ("onnxruntime",),
                "ort-int8-infer": ("onnxruntime",)})
ONNX_ROWS = ("ort-fp32-infer", "ort-int8-infer")  # read the export row's files
BF16_ROWS = ("ms-train-bf16", "ms-infer-bf16")  # need AVX512_BF16 (src/kernels)
ISA_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "amx_int8")
# torch's best mode per (size, seq): the faster of these two rows
TORCH_BEST = {"torch-train-best": ("torch-train", "torch-train-bf16"),
              "torch-infer-best": ("torch-infer", "torch-infer-bf16")}
# (group, ours, theirs, field): the ratios table
COMPARISONS = (
    ("train", "ms-train", "torch-train", "samples_per_s"),
    ("train", "ms-train", "torch-train-best", "samples_per_s"),
    ("train", "ms-train-fused", "ms-train", "samples_per_s"),
    ("train", "ms-train-fused", "torch-train-best", "samples_per_s"),
    ("train", "ms-train-bf16", "torch-train-bf16", "samples_per_s"),
    ("train", "ms-train-bf16", "torch-train-best", "samples_per_s"),
    ("train", "ms-train-bf16", "ms-train-fused", "samples_per_s"),
    ("train", "ms-train", "torch-train", "peak_rss_mb"),
    ("train", "ms-train-bf16", "torch-train-best", "peak_rss_mb"),
    ("infer", "ms-infer", "torch-infer", "samples_per_s"),
    ("infer", "ms-infer", "torch-infer-best", "samples_per_s"),
    ("infer", "ms-infer-fused", "ms-infer", "samples_per_s"),
    ("infer", "ms-infer-fused", "torch-infer-best", "samples_per_s"),
    ("infer", "ms-infer-bf16", "torch-infer-bf16", "samples_per_s"),
    ("infer", "ms-infer-bf16", "torch-infer-best", "samples_per_s"),
    ("infer", "ms-infer-bf16", "ms-infer-fused", "samples_per_s"),
    ("infer", "ms-infer", "ort-fp32-infer", "samples_per_s"),
    ("infer", "ms-infer-fused", "ort-fp32-infer", "samples_per_s"),
    ("infer", "ms-infer-bf16", "ort-fp32-infer", "samples_per_s"),
    ("infer", "ort-fp32-infer", "torch-infer-best", "samples_per_s"),
    ("infer", "ort-int8-infer", "torch-infer-best", "samples_per_s"),
    ("infer", "ms-infer", "torch-infer", "peak_rss_mb"),
    ("infer", "ms-infer", "torch-infer-best", "peak_rss_mb"),
    ("infer", "ms-infer-bf16", "torch-infer-best", "peak_rss_mb"),
    ("e2e", "e2e", "ms-train", "samples_per_s"),
    # CPU seconds per call (above 1: ours needs more): the steadier comparison on a shared machine
    ("train", "ms-train", "torch-train", "cpu_s_per_call"),
    ("train", "ms-train-bf16", "torch-train-bf16", "cpu_s_per_call"),
    ("train", "ms-train-fused", "ms-train", "cpu_s_per_call"),
    ("train", "ms-train-bf16", "ms-train", "cpu_s_per_call"),
    ("infer", "ms-infer", "torch-infer", "cpu_s_per_call"),
    ("infer", "ms-infer-bf16", "torch-infer-bf16", "cpu_s_per_call"),
    ("infer", "ms-infer-fused", "ms-infer", "cpu_s_per_call"),
    ("infer", "ms-infer-bf16", "ms-infer", "cpu_s_per_call"),
)


# ---------------------------------------------------------------------------------------------------------------
# Other processes' CPU use, from /proc


def _processes():
    """{pid: (parent pid, utime + stime)} of every process."""
    processes = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                processes[int(pid)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
            except (OSError, IndexError):
                pass
    return processes


def _own_pids(processes):
    """This process and its descendants."""
    own, grew = {os.getpid()}, True
    while grew:
        children = {pid for pid, (parent, _) in processes.items() if parent in own} - own
        own |= children
        grew = bool(children)
    return own


class LoadMonitor:
    """Samples the busiest foreign process's CPU use (% of one core) every ``interval`` seconds in a thread."""

    def __init__(self, interval=1.0):
        self.interval = interval
        self.hz = os.sysconf("SC_CLK_TCK")
        self.samples = []
        self._stop = threading.Event()
        self._thread = None

    def sample(self, seconds):
        """``(busiest foreign pid, its % of a core)`` over the next ``seconds``."""
        before = _processes()
        time.sleep(seconds)
        after = _processes()
        own = _own_pids(after)
        usage = {pid: (ticks - before.get(pid, (0, ticks))[1]) * 100.0 / self.hz / seconds
                 for pid, (_, ticks) in after.items() if pid not in own}
        return max(usage.items(), key=lambda item: item[1], default=(None, 0.0))

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(self.sample(self.interval))

    def __enter__(self):
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def busiest(self):
        return max((pct for _, pct in self.samples), default=0.0)


def _command_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


def wait_quiet(monitor, busy_pct, max_wait):
    start = time.time()
    while True:
        pid, pct = monitor.sample(3.0)
        if pct <= busy_pct or time.time() - start >= max_wait:
            return pct
        print(f"  waiting for a quiet machine: pid {pid} uses {pct:.0f}% ({_command_of(pid)})", flush=True)
        time.sleep(5)


# ---------------------------------------------------------------------------------------------------------------
# Running the rows


def default_steps(size, seq_len):
    """Enough timed calls for a stable median, few enough that the whole base run stays near 30 minutes."""
    if size != "base":
        return 20
    return 5 if seq_len <= 128 else 3


def skip_reason(row, size, seq_len, records, info):
    """Why ``row`` cannot run here (None when it can): a missing package, a CPU without bf16, no ONNX export."""
    missing = [m for m in NEEDS.get(row, ()) if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (see requirements-dev.txt)"
        return reason + ("; without it there is no ONNX export for the onnxruntime rows" if row == "export" else "")
    if row in BF16_ROWS and not info["isa"].get("avx512_bf16"):
        return "this CPU lacks avx512_bf16: bf16 GEMMs would not be faster than float32"
    if row in ONNX_ROWS:
        exported = next((r for r in records if r["row"] == "export" and r["size"] == size and r["seq_len"] == seq_len),
                        None)
        if exported is not None and ("skipped" in exported or "error" in exported):
            return f"no ONNX export to run: the export row {'was skipped' if 'skipped' in exported else 'failed'}"
    return None


def run_row(row, size, seq_len, args, monitor, records=(), info=None):
    base = {"row": row, "size": size, "seq_len": seq_len, "batch": args.batch, "threads": args.threads}
    reason = skip_reason(row, size, seq_len, records, info or machine())
    if reason:
        return dict(base, skipped=reason)
    steps = args.steps or default_steps(size, seq_len)
    command = [sys.executable, os.path.join(HERE, "workers.py"), row, "--size", size,
               "--config", os.path.join(args.work_dir, "configs", f"{size}.json"), "--seq_len", str(seq_len),
               "--batch", str(args.batch), "--threads", str(args.threads), "--steps", str(steps),
               "--warmup", str(args.warmup), "--work_dir", args.work_dir, "--vocab_file", args.vocab_file,
               "--text_file", args.text_file, "--max_texts", str(args.max_texts)]
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3")  # GLOG_v=3: MindSpore logs errors only
    quiet_before = wait_quiet(monitor, args.busy_pct, args.wait_quiet) if args.wait_quiet else None
    start = time.time()
    with monitor:
        process = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in process.stdout.splitlines() if line.startswith("BENCH ")]
    if process.returncode or not lines:
        tail = (process.stderr or process.stdout).strip().splitlines()[-5:]
        return dict(base, error=f"exit {process.returncode}: " + " | ".join(tail))
    record = json.loads(lines[-1][len("BENCH "):])
    record.update(wall_s=time.time() - start, foreign_cpu_pct=monitor.busiest(),
                  contended=monitor.busiest() > args.busy_pct)
    if quiet_before is not None:
        record["foreign_cpu_pct_before"] = quiet_before
    return record


def write_configs(sizes, folder):
    from src.ernie_model import load_config
    os.makedirs(folder, exist_ok=True)
    for size in sizes:
        load_config(size).to_json_file(os.path.join(folder, f"{size}.json"))


def machine():
    """What the numbers came from: the CPU model and the ISA flags that decide which kernels are fast, the
    packages' versions."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version(),
            "cores": os.cpu_count(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as f:
            fields = {}  # the first processor's fields
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
        info["cpu"] = fields["model name"]
        # Virtual machines often report only "AMD EPYC": family, model and clock tell hosts apart (a run on another
        # host with the same name changed our ratios to torch by up to 2x).
        for key in ("cpu family", "model", "cpu MHz"):
            if key in fields:
                info[key.replace(" ", "_")] = fields[key]
        flags = set(fields.get("flags", "").split())
        info["isa"] = {flag: flag in flags for flag in ISA_FLAGS}
        with open("/proc/meminfo") as f:
            info["ram_gib"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except (OSError, KeyError):
        pass
    info.setdefault("isa", {})
    for package in ("mindspore", "numpy", "torch", "transformers", "onnx", "onnxruntime", "tokenizers"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


# ---------------------------------------------------------------------------------------------------------------
# Tables


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def torch_best(found):
    """``{("torch-*-best", size, seq_len): the faster torch row's record}`` with its row name in ``mode_row``."""
    best = {}
    for name, rows in TORCH_BEST.items():
        for (row, size, seq_len), record in found.items():
            if row in rows and record.get("samples_per_s"):
                current = best.get((name, size, seq_len))
                if current is None or record["samples_per_s"] > current["samples_per_s"]:
                    best[(name, size, seq_len)] = dict(record, mode_row=row)
    return best


def ratios(records):
    """``ours / theirs`` for each comparison and (size, seq_len) where both rows ran."""
    found = {(r["row"], r["size"], r["seq_len"]): r for r in records if "error" not in r and "skipped" not in r}
    found.update(torch_best(found))
    out = []
    for group, ours, theirs, field in COMPARISONS:
        for (row, size, seq_len), mine in found.items():
            other = found.get((theirs, size, seq_len))
            if row == ours and other and mine.get(field) and other.get(field):
                name = f"{theirs} = {other['mode_row']}" if "mode_row" in other else theirs
                out.append({"size": size, "seq_len": seq_len, "ours": ours, "theirs": name, "field": field,
                            "ours_value": mine[field], "theirs_value": other[field],
                            "ratio": mine[field] / other[field]})
    tokenize = next((r for r in records if r["row"] == "tokenize" and "ours_chars_per_s" in r), None)
    for theirs in ("hf_chars_per_s", "hf_batch_chars_per_s"):
        if tokenize and tokenize.get(theirs):
            out.append({"size": "-", "seq_len": "-", "ours": "tokenize (ErnieTokenizer.encode)",
                        "theirs": "tokenizers " + ("encode_batch" if "batch" in theirs else "encode"),
                        "field": "chars_per_s", "ours_value": tokenize["ours_chars_per_s"],
                        "theirs_value": tokenize[theirs], "ratio": tokenize["ours_chars_per_s"] / tokenize[theirs]})
    return out


def markdown(records, ratio_rows):
    lines = ["| size | seq | row | samples/s | median s | min s | CPU s per call | first call s | peak RSS MB "
             "| cores used | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if r["row"] == "tokenize":
            continue
        note = r.get("error") or r.get("skipped") or ""
        if r["row"] == "export" and "export_s" in r:
            note = f"export {r['export_s']:.1f} s, int8 quantize {r['quantize_s']:.1f} s"
            if r.get("generated_vocab"):
                note += "; generated vocabulary (--vocab_file missing)"
        elif "max_abs_diff_vs_mindspore" in r:
            note = f"max abs logit diff vs MindSpore {r['max_abs_diff_vs_mindspore']:.1e}"
        elif r["row"] == "e2e" and "pipeline_fraction" in r:
            note = (f"data pipeline alone {1000 * r['pipeline_s_per_batch']:.1f} ms/batch = "
                    f"{100 * r['pipeline_fraction']:.1f}% of a step; setup {r['setup_s']:.1f} s")
        if r.get("contended"):
            note = (note + "; " if note else "") + f"CONTENDED (foreign process at {r['foreign_cpu_pct']:.0f}%)"
        lines.append(f"| {r['size']} | {r['seq_len']} | {r['row']} | {_fmt(r.get('samples_per_s'))} | "
                     f"{_fmt(r.get('median_s'))} | {_fmt(r.get('min_s'))} | {_fmt(r.get('cpu_s_per_call'))} | "
                     f"{_fmt(r.get('first_call_s'))} | {_fmt(r.get('peak_rss_mb'))} | {_fmt(r.get('cpu_util'), 2)} | "
                     f"{note} |")
    tokenize = next((r for r in records if r["row"] == "tokenize"), None)
    if tokenize:
        lines += ["", "| tokenizer | chars/s | note |", "|---|---|---|"]
        if "error" in tokenize:
            lines.append(f"| - | - | {tokenize['error']} |")
        else:
            note = (f"{tokenize['texts']} texts, {tokenize['chars']:,} chars; "
                    f"{tokenize.get('texts_with_different_ids', '-')} texts tokenized differently")
            if tokenize.get("contended"):
                note += f"; CONTENDED (foreign process at {tokenize['foreign_cpu_pct']:.0f}%)"
            lines.append(f"| ours (ErnieTokenizer.encode, 1 thread) | {_fmt(tokenize['ours_chars_per_s'])} | {note} |")
            for key, name in (("hf_chars_per_s", "tokenizers BertWordPiece encode (1 thread)"),
                              ("hf_batch_chars_per_s", "tokenizers BertWordPiece encode_batch (thread pool)")):
                if key in tokenize:
                    lines.append(f"| {name} | {_fmt(tokenize[key])} | |")
    if ratio_rows:
        lines += ["", "| size | seq | ours | theirs | measure | ours | theirs | ours / theirs |",
                  "|---|---|---|---|---|---|---|---|"]
        for q in ratio_rows:
            lines.append(f"| {q['size']} | {q['seq_len']} | {q['ours']} | {q['theirs']} | {q['field']} | "
                         f"{_fmt(q['ours_value'])} | {_fmt(q['theirs_value'])} | {q['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    parser.add_argument("--seq_lens", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="for every framework")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {list(GROUPS)}")
    parser.add_argument("--rows", default=None, help="comma-separated rows of those groups to run (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="timed calls per row (default: by size)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before them (the first: compile)")
    parser.add_argument("--json", default=None, help="write the records, ratios and machine here")
    parser.add_argument("--work_dir", default=os.path.join(HERE, "work"), help="exports and run outputs")
    parser.add_argument("--vocab_file", default=os.path.join(ROOT, "..", "shared", "data", "ernie_1.0", "vocab.txt"))
    parser.add_argument("--text_file", default=os.path.join(ROOT, "..", "shared", "data", "chnsenticorp_ernie",
                                                            "train.tsv"),
                        help="TSV with text_a/text_b columns: tokenizer corpus and e2e training data")
    parser.add_argument("--max_texts", type=int, default=100000, help="texts the tokenizer rows read")
    parser.add_argument("--busy_pct", type=float, default=25.0, help="a foreign process above this marks contention")
    parser.add_argument("--wait_quiet", type=float, default=0, help="seconds each row may wait for a quiet machine")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per row")
    parser.add_argument("--show", default=None, metavar="RESULTS_JSON", help="print the tables of a saved run and stop")
    args = parser.parse_args(argv)
    if args.show:
        saved = read_json(args.show)
        print_summary(saved["machine"], saved["records"], saved["ratios"], saved.get("batch", args.batch),
                      saved.get("threads", args.threads))
        return saved["records"]
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown groups {unknown}; choose from {list(GROUPS)}")
    chosen = set(r.strip() for r in args.rows.split(",")) if args.rows else None
    unknown = sorted((chosen or set()) - {row for g in groups for row in GROUPS[g]})
    if unknown:
        parser.error(f"rows {unknown} are not in the groups {groups}")
    needing_data = [g for g in groups if g in GROUPS_NEEDING_DATA]
    for path in (args.vocab_file, args.text_file) if needing_data else ():
        if not os.path.isfile(path):
            parser.error(f"{path}: not found (the {'/'.join(needing_data)} rows read it; train and infer do not)")
    write_configs(args.sizes, os.path.join(args.work_dir, "configs"))

    monitor = LoadMonitor()
    info = machine()
    records = []
    plan = [(row, "-", 0) for row in GROUPS["tokenize"] if "tokenize" in groups and (chosen is None or row in chosen)]
    plan += [(row, size, seq_len) for size in args.sizes for seq_len in args.seq_lens
             for group in groups if group != "tokenize" for row in GROUPS[group] if chosen is None or row in chosen]
    for row, size, seq_len in plan:
        print(f"{row} {size} seq {seq_len} ...", flush=True)
        record = run_row(row, size if size != "-" else args.sizes[0], seq_len or args.seq_lens[0], args, monitor,
                         records, info)
        records.append(record)
        print("  " + json.dumps(record), flush=True)

    ratio_rows = ratios(records)
    print()
    print_summary(info, records, ratio_rows, args.batch, args.threads)
    if args.json:
        write_json({"command": " ".join([os.path.relpath(__file__, ROOT)] + (argv or sys.argv[1:])),
                    "machine": info, "batch": args.batch, "threads": args.threads, "records": records,
                    "ratios": ratio_rows}, args.json)
    return records


def print_summary(info, records, ratio_rows, batch, threads):
    isa = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in info.get("isa", {}).items())
    host = f"family {info['cpu_family']} model {info['model']}, " if "cpu_family" in info else ""
    print(f"{info.get('cpu', '?')} ({host}{isa or 'ISA flags unknown'}), {info['cores']} cores, "
          f"{info.get('ram_gib', '?')} GiB; batch {batch}, {threads} threads each; mindspore {info.get('mindspore')}, "
          f"torch {info.get('torch')}, transformers {info.get('transformers')}, onnxruntime {info.get('onnxruntime')}")
    print(markdown(records, ratio_rows))
    for r in records:
        if "skipped" in r:
            print(f"\nNOTE: {r['row']} ({r['size']}, seq {r['seq_len']}) skipped: {r['skipped']}")
    contended = [r["row"] for r in records if r.get("contended")]
    if contended:
        print(f"\nWARNING: {len(contended)} rows ran while another process used the CPU: {contended}")


if __name__ == "__main__":
    main()
