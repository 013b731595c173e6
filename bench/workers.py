"""One benchmark measurement per process; prints one line ``BENCH {json}``.

    python bench/workers.py ROW --size tiny --seq_len 128 --batch 8 --threads 2 [--steps 5 --warmup 2] ...

Rows: ms-train, torch-train (a fine-tuning step: forward, backward, global-norm clipping at 1.0, AdamWeightDecay /
torch's fused AdamW), ms-infer, ort-fp32-infer and ort-int8-infer (our ONNX export in onnxruntime), torch-infer, export
(writes the ONNX files the ort rows read), tokenize (ours vs the tokenizers library), e2e (run_ernie_classifier's
training loop on real text, data pipeline included). ``ms-*-fused`` is ours in float32 with the fused CPU custom
operators (``--fused_cpu_kernels``: ``src.layers.use_fused_cpu_kernels`` and, in training, ``FusedAdamWeightDecay``);
the ``-bf16`` rows are the same measurements in bfloat16: ours with the config's ``compute_dtype="bfloat16"`` (the
bf16 GEMM custom operators of src/kernels on CPU, float32 parameters) and the fused operators, torch's with
``torch.autocast("cpu", dtype=torch.bfloat16)`` around the same transformers model and step. A separate process per
row keeps peak RSS clean and the frameworks apart; torch, transformers and tokenizers are only needed for their own
rows.

Timing: ``warmup`` calls (the first one, reported as ``first_call_s``, includes graph compilation), then the median
of ``steps`` calls; every call ends with the outputs on the host (``asnumpy`` / ``.item()``). ``cpu_util`` is the
process CPU time over wall time during the timed calls: it shows how many cores a framework really used.
``cpu_s_per_call`` is that CPU time per call: on a shared machine, where a neighbour stretches the wall time, it is the
steadier figure of the work a call needs (it still counts time a thread pool spends spinning).
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
NUM_LABELS = 2


def limit_threads(threads):
    """Same cores for every framework: the thread-count variables (read when a thread pool starts, so before numpy,
    torch or onnxruntime are imported) and, when fewer threads than cores are asked for, pinning this process to the
    first ``threads`` cores. The pinning is what limits MindSpore 2.10: its own knobs
    (``device_context.cpu.op_tuning.threads_num``, ``set_context(runtime_num_threads)``, ``runtime.set_cpu_affinity``,
    OMP_NUM_THREADS) all left it using both cores of a 2-core machine when set to 1 (cpu_util 1.85-1.9)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[name] = str(threads)
    if threads < len(os.sched_getaffinity(0)):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])


def peak_rss_mb():
    """VmHWM, the peak RSS of this program. Not getrusage's ru_maxrss: Linux carries that over from the parent
    through fork and exec, so every worker would report at least the launcher's size."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def time_calls(call, warmup, steps):
    """``(first_call_s, [seconds per timed call], (cpu_util, cpu seconds per call))``."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        call()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    cpu_s = time.process_time() - cpu0
    return first, times, (cpu_s / (time.perf_counter() - wall0), cpu_s / steps)


def timing_record(first, times, cpu, items_per_call):
    median = statistics.median(times)
    return {"first_call_s": first, "median_s": median, "min_s": min(times), "samples_per_s": items_per_call / median,
            "cpu_util": cpu[0], "cpu_s_per_call": cpu[1], "steps": len(times), "peak_rss_mb": peak_rss_mb()}


def random_batch(config, batch, seq_len, seed=0):
    """Full-length rows (no padding): ids above the special tokens, two segments, random labels."""
    import numpy as np
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, config.vocab_size, (batch, seq_len)).astype(np.int32)
    mask = np.ones((batch, seq_len), np.int32)
    segments = (np.arange(seq_len) >= seq_len // 2).astype(np.int32)[None].repeat(batch, 0)
    labels = rng.integers(0, NUM_LABELS, batch).astype(np.int32)
    return ids, mask, segments, labels


def ms_setup(args, compute_dtype="float32", fused_kernels=False):
    """Graph mode on CPU (as ``trainer.init_runtime``); returns the model config as an ErnieConfig."""
    import mindspore as ms
    from src.ernie_model import load_config
    from src.layers import use_fused_cpu_kernels
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    use_fused_cpu_kernels(fused_kernels)
    return load_config(args.config, compute_dtype=compute_dtype)


def hf_config(config):
    import transformers
    return transformers.ErnieConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act, max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps, use_task_id=False,
        hidden_dropout_prob=config.hidden_dropout_prob, attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        num_labels=NUM_LABELS)


def torch_setup(threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def ms_train_step(args, compute_dtype="float32", fused_kernels=False):
    """Our fine-tuning step and one random batch for it: ``(call, batch)`` where ``call(*batch)`` trains one step
    and returns ``(loss, ...)``; ``fused_kernels``: the fused LayerNorm, softmax, dropout and AdamWeightDecay CPU
    operators."""
    config = ms_setup(args, compute_dtype, fused_kernels)
    from mindspore import Tensor
    from src.heads import ErnieForSequenceClassification
    from src.losses import SequenceClassificationLoss
    from src.optimization import build_optimizer
    from src.trainer import TrainStep

    loss_net = SequenceClassificationLoss(ErnieForSequenceClassification(config, NUM_LABELS))
    optimizer, _ = build_optimizer(loss_net.trainable_params(), "AdamWeightDecay", 2e-5, total_steps=1000,
                                   fused=fused_kernels)
    step = TrainStep(loss_net, optimizer, max_grad_norm=1.0)
    step.set_train(True)
    ids, mask, segments, labels = random_batch(config, args.batch, args.seq_len)
    batch = [Tensor(a) for a in (ids, segments, mask, labels)]  # the loss cell takes the model's input order
    return step, batch


def ms_train(args, _config, compute_dtype="float32", fused_kernels=False):
    step, batch = ms_train_step(args, compute_dtype, fused_kernels)
    return time_calls(lambda: step(*batch)[0].asnumpy(), args.warmup, args.steps)


def torch_train(args, config, bf16=False):
    torch = torch_setup(args.threads)
    import transformers

    model = transformers.ErnieForSequenceClassification(hf_config(config)).train()
    no_decay = [p for n, p in model.named_parameters() if "LayerNorm" in n or n.endswith("bias")]
    decay = [p for n, p in model.named_parameters() if not ("LayerNorm" in n or n.endswith("bias"))]
    # fused: transformers' Trainer default with torch >= 2.8 ("adamw_torch_fused"), 6x faster than the foreach loop here
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=2e-5, eps=1e-6, fused=True)
    ids, mask, segments, labels = (torch.from_numpy(a).long() for a in random_batch(config, args.batch, args.seq_len))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, token_type_ids=segments, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return time_calls(step, args.warmup, args.steps)


def ms_infer(args, _config, compute_dtype="float32", fused_kernels=False):
    config = ms_setup(args, compute_dtype, fused_kernels)
    from mindspore import Tensor
    from src.heads import ErnieForSequenceClassification

    model = ErnieForSequenceClassification(config, NUM_LABELS)
    model.set_train(False)
    ids, mask, segments, _ = (Tensor(a) for a in random_batch(config, args.batch, args.seq_len))
    return time_calls(lambda: model(ids, segments, mask).asnumpy(), args.warmup, args.steps)


def torch_infer(args, config, bf16=False):
    torch = torch_setup(args.threads)
    import transformers

    model = transformers.ErnieForSequenceClassification(hf_config(config)).eval()
    ids, mask, segments, _ = (torch.from_numpy(a).long() for a in random_batch(config, args.batch, args.seq_len))

    def call():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits.float().numpy()

    return time_calls(call, args.warmup, args.steps)


def onnx_path(args, precision):
    name = f"{args.size}_s{args.seq_len}_b{args.batch}"
    return os.path.join(args.work_dir, "onnx", name, "model.onnx" if precision == "fp32" else "model.int8.onnx")


def export_vocabulary(args, config):
    """``--vocab_file``, or where it is missing (a run without the shared data) a generated one of the config's size
    in the export folder: the exporter copies a vocabulary beside the model, and random weights have no real one."""
    if os.path.isfile(args.vocab_file):
        return args.vocab_file, False
    path = os.path.join(os.path.dirname(onnx_path(args, "fp32")), "generated_vocab.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    special = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(special + [f"[unused{i}]" for i in range(config.vocab_size - len(special))]) + "\n")
    return path, True


def export(args, _config):
    """Exports a random-weight classifier with the project's exporter (and its int8 quantizer), plus a reference
    input and MindSpore's logits for it, so that ort-infer can report how far onnxruntime's outputs are."""
    import numpy as np
    config = ms_setup(args)
    from mindspore import Tensor
    from src.heads import ErnieForSequenceClassification
    from src.serving.export import export_model, quantize_onnx
    from src.tasks.registry import TaskInfo

    model = ErnieForSequenceClassification(config, NUM_LABELS)
    model.set_train(False)
    path = onnx_path(args, "fp32")
    vocab_file, generated = export_vocabulary(args, config)
    info = TaskInfo("chnsenticorp", "classification", ["0", "1"], args.seq_len, vocab_file)
    start = time.perf_counter()
    export_model(model, info, path, "ONNX", args.batch)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    quantize_onnx(path)
    quantize_s = time.perf_counter() - start
    ids, mask, segments, _ = random_batch(config, args.batch, args.seq_len, seed=1)
    logits = model(Tensor(ids), Tensor(segments), Tensor(mask)).asnumpy()
    np.savez(path[:-len(".onnx")] + ".reference.npz", input_ids=ids, input_mask=mask, token_type_id=segments,
             logits=logits)
    return {"export_s": export_s, "quantize_s": quantize_s, "onnx_mb": os.path.getsize(path) / 2 ** 20,
            "int8_mb": os.path.getsize(onnx_path(args, "int8")) / 2 ** 20, "generated_vocab": generated}


def ort_infer(args, config, precision):
    """onnxruntime as ``src.inference.OnnxRuntimeBackend`` runs it (CPU provider, ``intra_op_num_threads``), built
    here so that MindSpore (which that module imports) does not count in this row's memory; one inter-op thread so
    that the row uses exactly ``--threads`` cores."""
    import numpy as np
    import onnxruntime as ort

    path = onnx_path(args, precision)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: run the export row first")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    reference = np.load(onnx_path(args, "fp32")[:-len(".onnx")] + ".reference.npz")
    feeds = {name: reference[name] for name in ("input_ids", "input_mask", "token_type_id")}
    max_diff = float(np.abs(session.run(None, feeds)[0] - reference["logits"]).max())
    ids, mask, segments, _ = random_batch(config, args.batch, args.seq_len)
    feeds = {"input_ids": ids, "input_mask": mask, "token_type_id": segments}
    first, times, cpu = time_calls(lambda: session.run(None, feeds), args.warmup, args.steps)
    return first, times, cpu, {"max_abs_diff_vs_mindspore": max_diff}


def read_texts(path, limit):
    """The text columns of a TSV with a header (text_a, text_b ...), or the lines of a plain text file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = lines[0].split("\t")
    columns = [i for i, name in enumerate(header) if name.startswith("text")]
    if not columns:
        return lines[:limit]
    texts = [fields[i] for line in lines[1:] for fields in [line.split("\t")] for i in columns if i < len(fields)]
    return texts[:limit]


def tokenize(args, _config):
    """chars/s of ``ErnieTokenizer.encode`` (a fresh tokenizer per pass, so its word cache starts empty) and of the
    tokenizers library's BertWordPiece with the same vocabulary: ``encode`` one text at a time (one thread, like
    ours) and ``encode_batch`` (its thread pool). Also counts the texts on which the two give different ids."""
    from src.tokenizer import ErnieTokenizer, load_vocab

    texts = read_texts(args.text_file, args.max_texts)
    chars = sum(len(t) for t in texts)
    result = {"texts": len(texts), "chars": chars}

    def passes(make, run):
        times = []
        for _ in range(args.steps):
            tokenizer = make()
            start = time.perf_counter()
            run(tokenizer)
            times.append(time.perf_counter() - start)
        return chars / statistics.median(times)

    ours = ErnieTokenizer(args.vocab_file)
    result["ours_chars_per_s"] = passes(lambda: ErnieTokenizer(args.vocab_file),
                                        lambda tok: [tok.encode(t) for t in texts])
    try:
        from tokenizers import BertWordPieceTokenizer
    except ImportError:
        return result
    vocab = load_vocab(args.vocab_file)

    def make_hf():
        return BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=True, handle_chinese_chars=True)

    result["hf_chars_per_s"] = passes(make_hf, lambda tok: [tok.encode(t) for t in texts])
    result["hf_batch_chars_per_s"] = passes(make_hf, lambda tok: tok.encode_batch(texts))
    hf = make_hf()
    result["texts_with_different_ids"] = sum(
        ours.encode(t)["input_ids"] != hf.encode(t).ids for t in texts)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def e2e(args, _config):
    """run_ernie_classifier.py's training on real text in this process (so that the thread count can be set),
    ``--log_every 1``: each logged samples/s covers one loop iteration (next batch from the data pipeline, the step,
    the loss read back). Reports their median after the warm-up steps, the time before the first step (reading and
    tokenizing the data, building the model), and the data pipeline alone over the same number of batches."""
    import numpy as np
    ms_setup(args)
    from src.dataset import create_train_dataset
    from src.finetune import main

    out = os.path.join(args.work_dir, f"e2e_{args.size}_s{args.seq_len}_b{args.batch}")
    if os.path.isdir(out):
        shutil.rmtree(out)
    total_steps = args.warmup + args.steps
    start = time.perf_counter()
    main("classification", [
        "--task_type", "chnsenticorp", "--do_train", "true", "--device_target", "CPU", "--config", args.config,
        "--vocab_file_path", args.vocab_file, "--train_data_file_path", args.text_file, "--output_dir", out,
        "--max_seq_len", str(args.seq_len), "--batch_size", str(args.batch), "--max_steps", str(total_steps),
        "--max_train_samples", str(args.batch * total_steps), "--epoch_num", "1", "--log_every", "1",
        "--progress_bar", "false", "--resume", "false"])
    wall = time.perf_counter() - start
    with open(os.path.join(out, "train_log.jsonl"), encoding="utf-8") as f:
        records = [r for r in map(json.loads, f) if r.get("event") == "train"]
    shutil.rmtree(out)  # its checkpoints are 1.6 GB at base
    step_times = [args.batch / r["samples_per_s"] for r in records]
    timed = step_times[args.warmup:] or step_times
    median = statistics.median(timed)

    rng = np.random.default_rng(0)
    names = ("input_ids", "input_mask", "segment_ids", "label_ids")
    columns = {name: rng.integers(5, 100, (args.batch * total_steps, args.seq_len)).astype(np.int32)
               for name in names[:3]}
    columns["label_ids"] = rng.integers(0, NUM_LABELS, args.batch * total_steps).astype(np.int32)
    start = time.perf_counter()
    batches = sum(1 for _ in create_train_dataset(columns, names, args.batch, epoch=0).create_tuple_iterator(
        num_epochs=1, do_copy=False))
    pipeline_s = (time.perf_counter() - start) / batches
    return {"median_s": median, "samples_per_s": args.batch / median, "first_call_s": step_times[0],
            "steps": len(timed), "setup_s": wall - sum(step_times), "wall_s": wall,
            "pipeline_s_per_batch": pipeline_s, "pipeline_fraction": pipeline_s / median, "peak_rss_mb": peak_rss_mb()}


ROWS = {"ms-train": ms_train, "torch-train": torch_train, "ms-infer": ms_infer, "torch-infer": torch_infer,
        "ms-train-fused": lambda args, config: ms_train(args, config, fused_kernels=True),
        "ms-infer-fused": lambda args, config: ms_infer(args, config, fused_kernels=True),
        "ms-train-bf16": lambda args, config: ms_train(args, config, "bfloat16", fused_kernels=True),
        "ms-infer-bf16": lambda args, config: ms_infer(args, config, "bfloat16", fused_kernels=True),
        "torch-train-bf16": lambda args, config: torch_train(args, config, bf16=True),
        "torch-infer-bf16": lambda args, config: torch_infer(args, config, bf16=True),
        "export": export,
        "ort-fp32-infer": lambda args, config: ort_infer(args, config, "fp32"),
        "ort-int8-infer": lambda args, config: ort_infer(args, config, "int8"), "tokenize": tokenize, "e2e": e2e}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=list(ROWS))
    parser.add_argument("--config", required=True, help="model config JSON (ErnieConfig.to_json_file)")
    parser.add_argument("--size", default="tiny", help="the config's name in the results")
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed calls (tokenize: passes over the texts)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first; the first is reported apart")
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "bench", "work"))
    parser.add_argument("--vocab_file", default=os.path.join(ROOT, "..", "shared", "data", "ernie_1.0", "vocab.txt"))
    parser.add_argument("--text_file", default=os.path.join(ROOT, "..", "shared", "data", "chnsenticorp_ernie",
                                                            "train.tsv"))
    parser.add_argument("--max_texts", type=int, default=100000, help="tokenize: texts read from --text_file")
    args = parser.parse_args(argv)
    limit_threads(args.threads)

    with open(args.config, encoding="utf-8") as f:  # not load_config: torch and onnxruntime rows run without MindSpore
        config = argparse.Namespace(**json.load(f))
    result = ROWS[args.row](args, config)
    if isinstance(result, tuple):  # timed rows: (first, times, (cpu_util, cpu_s_per_call)[, extra])
        record = timing_record(*result[:3], args.batch)
        record.update(result[3] if len(result) > 3 else {})
    else:
        record = result
    record.update(row=args.row, size=args.size, seq_len=args.seq_len, batch=args.batch, threads=args.threads)
    print("BENCH " + json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
