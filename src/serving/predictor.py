"""Raw text in, answers out: a ``Predictor`` asks its task to encode the records, runs a backend, and asks the task
to turn the outputs into answers.

Texts longer than the model's sequence length are cut into overlapping windows, never truncated: classification
averages the windows' probabilities, NER takes each token's tag from the window where it has the most context, MRC
uses the reader's own windows. Entity and answer offsets index the original text.
"""
from ..runtime import init_runtime
from ..tasks.base import EvalOptions
from ..tasks.registry import build_task
from ..tokenizer import check_vocab_fits
from .export import read_sidecar, sidecar_info, sidecar_path
from .runtime import CheckpointBackend, MindIRBackend, OnnxRuntimeBackend, load_task_model, resolve_checkpoint


class Predictor:
    """Records are dicts: ``{"text", "text_b" (optional)}`` for classification, ``{"text"}`` for NER, ``{"context",
    "question"}`` for MRC; ``predict(records)`` returns one result dict per record, in order."""

    def __init__(self, task, backend):
        self.task, self.backend = task, backend
        self.info, self.tokenizer = task.info, task.tokenizer

    @classmethod
    def from_path(cls, path, batch_size=8, num_threads=None, device_target="auto", stride=None, n_best_size=20,
                  max_answer_len=100, **checkpoint_options):
        """``path``: an exported ``.onnx`` or ``.mindir`` (with its sidecar), or a fine-tuned ``.ckpt`` / output folder
        (``checkpoint_options``: ``resolve_checkpoint``'s arguments). ``batch_size`` applies where the model's
        batch is not fixed; ``num_threads`` sets onnxruntime's intra-op threads; ``stride`` is how far the windows of
        a long text move (tokens; default half a window, the trained ``doc_stride`` for MRC). MindIR and checkpoint
        models select the MindSpore device (``device_target``) on first use."""
        options = EvalOptions(eval_batch_size=batch_size, window_stride=stride, n_best_size=n_best_size,
                              max_answer_len=max_answer_len)
        if path.endswith((".onnx", ".mindir")):
            given = sorted(k for k, v in checkpoint_options.items() if v not in (None, "") and k != "task_type")
            if given:
                raise ValueError(f"{given} describe a checkpoint; an exported model is described by its sidecar")
            sidecar = read_sidecar(path)
            task = build_task(sidecar_info(sidecar, sidecar_path(path)), options)
            if path.endswith(".onnx"):
                return cls(task, OnnxRuntimeBackend(path, num_threads))
            init_runtime(device_target)
            fixed = sidecar["batch_size"] is not None
            return cls(task, MindIRBackend(path, sidecar["batch_size"] if fixed else batch_size, fixed))
        ckpt_file, info, config = resolve_checkpoint(path, **checkpoint_options)
        task = build_task(info, options)
        check_vocab_fits(task.tokenizer, config.vocab_size, ckpt_file)
        init_runtime(device_target)
        return cls(task, CheckpointBackend(load_task_model(task, ckpt_file, config), batch_size))

    def predict(self, records):
        self.task.check_records(records)
        if not records:
            return []
        columns, state = self.task.encode_records(records)
        return self.task.answer(records, self.backend.run(columns), state)


