"""MindSpore building blocks of the ERNIE encoder and its heads, with Hugging Face parameter names.

Each block is here rather than in ``ernie_model.py`` because it works around a measured cost of MindSpore 2.10 on CPU
(the comments give the numbers) or fixes a parameter name; the model file then reads as the paper's parts.
"""
import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import TruncatedNormal, initializer


_CPU_KERNELS = {"fused": False}


def use_fused_cpu_kernels(enabled=True):
    """Opt-in, off by default: ``LayerNorm``, ``Softmax`` and ``dropout`` cells built afterwards on CPU run the fused
    float32 custom kernels of ``src.kernels`` (forward and backward). MindSpore 2.10's CPU LayerNorm and its gradient
    take about 5x and 8x the fused kernel's time on ERNIE-base activations; its Dropout takes 0.19 s of a bf16
    training step and draws different masks from run to run even with a fixed seed, where the fused one's follow the
    training's seed and step; the fused softmax keeps one score-sized tensor per attention layer for its backward
    where exp(log_softmax) keeps two. Building such a cell raises ``KernelUnavailable`` where g++ cannot build the
    kernels. Export such a model by building it again with this off: the parameters are the same."""
    _CPU_KERNELS["fused"] = bool(enabled)


def _fused_on_cpu():
    return _CPU_KERNELS["fused"] and ms.get_context("device_target") == "CPU"


def dropout(p):
    """``nn.Dropout(p=p)``, or the fused CPU kernel's after ``use_fused_cpu_kernels()``."""
    if _fused_on_cpu():
        from .kernels.dropout import FusedDropout
        return FusedDropout(p)
    return nn.Dropout(p=p)


class Softmax(nn.Cell):
    """Softmax over the last axis (float32): the fused CPU kernel after ``use_fused_cpu_kernels()``, whose backward
    needs only its output. Otherwise, in training, exp(log_softmax): the softmax within float32 rounding, but
    MindSpore's CPU Softmax holds about five score-sized tensors per attention layer until the backward pass and these
    ops two (ERNIE-base, batch 8 x 512: 3.5 GB less); in inference the single, faster Softmax kernel."""

    def __init__(self):
        super().__init__()
        self.fused = _fused_on_cpu()
        if self.fused:
            from .kernels.softmax import FusedSoftmax
            self.softmax = FusedSoftmax()

    def construct(self, x):
        if self.fused:
            return self.softmax(x)
        if self.training:
            return ops.exp(ops.log_softmax(x, -1))
        return ops.softmax(x, -1)


def _normal(shape, sigma):
    return initializer(TruncatedNormal(sigma), shape, ms.float32)


def activation(name):
    return {"relu": nn.ReLU(), "gelu": nn.GELU(approximate=False), "gelu_new": nn.GELU(approximate=True),
            "tanh": nn.Tanh()}[name]


class Embedding(nn.Cell):
    """A lookup table whose parameter is called ``weight`` (HF / Paddle naming)."""

    def __init__(self, num_embeddings, embedding_dim, sigma=0.02):
        super().__init__()
        self.weight = Parameter(_normal((num_embeddings, embedding_dim), sigma), name="weight")
        self.gather = ops.Gather()

    def construct(self, ids):
        return self.gather(self.weight, ids, 0)


class LayerNorm(nn.Cell):
    """LayerNorm over the last axis with ``weight``/``bias`` parameters and an explicit epsilon (the fused CPU kernel
    after ``use_fused_cpu_kernels()``)."""

    def __init__(self, hidden_size, eps):
        super().__init__()
        self.weight = Parameter(initializer("ones", (hidden_size,), ms.float32), name="weight")
        self.bias = Parameter(initializer("zeros", (hidden_size,), ms.float32), name="bias")
        self.fused = _fused_on_cpu()
        if self.fused:
            from .kernels.layer_norm import FusedLayerNorm
            self.layer_norm = FusedLayerNorm(eps)
        else:
            self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)

    def construct(self, x):
        if self.fused:
            shape = x.shape
            out = self.layer_norm(ops.reshape(x, (-1, shape[-1])), self.weight, self.bias)[0]
            return ops.reshape(out, shape)
        return self.layer_norm(x, self.weight, self.bias)[0]


class _Linear(nn.Cell):
    """``x @ weight.T + bias`` for a 2-D ``x``, with its backward written out. MindSpore's own backward of BiasAdd
    (BiasAddGrad) takes 10 ms for a [1024, 3072] gradient on a 2-core CPU, a ReduceSum over the rows 1.3 ms: 8% of an
    ERNIE-base training step."""

    def __init__(self):
        super().__init__()
        self.matmul = ops.MatMul(transpose_b=True)
        self.bias_add = ops.BiasAdd()
        self.input_grad = ops.MatMul()
        self.weight_grad = ops.MatMul(transpose_a=True)

    def construct(self, x, weight, bias):
        return self.bias_add(self.matmul(x, weight), bias)

    def bprop(self, x, weight, bias, out, dout):
        return self.input_grad(dout, weight), self.weight_grad(dout, x), ops.reduce_sum(dout, 0)


def _bf16_on_cpu(compute_dtype):
    return compute_dtype == ms.bfloat16 and ms.get_context("device_target") == "CPU"


class Dense(nn.Dense):
    """``nn.Dense`` computing in ``compute_dtype`` and returning float32 (LayerNorm and softmax stay float32), followed
    by the activation named ``activation_name`` (one of ``activation``'s names) when given.

    bfloat16 on CPU (opt-in; float32 is the default) runs the bf16 GEMM custom operators of ``src.kernels`` (oneDNN,
    fp32 accumulation) with float32 parameters: MindSpore 2.10's CPU MatMul has no bf16 kernel; a ReLU then runs
    inside them. Raises ``src.kernels.build.KernelUnavailable`` with the reason where the CPU lacks AVX512_BF16 or g++
    cannot build them.
    """

    def __init__(self, in_channels, out_channels, sigma=0.02, compute_dtype=ms.float32, activation_name=None):
        super().__init__(in_channels, out_channels, weight_init=_normal((out_channels, in_channels), sigma),
                         bias_init="zeros")
        self.compute_dtype = compute_dtype
        cpu_bf16 = _bf16_on_cpu(compute_dtype)
        self.reduced = compute_dtype != ms.float32 and not cpu_bf16
        fused_relu = cpu_bf16 and activation_name == "relu"
        if cpu_bf16:
            from .kernels.bf16_matmul import Bf16Linear
            self.linear = Bf16Linear(relu=fused_relu)
        else:
            self.linear = _Linear()
        self.activation_fn = activation(activation_name) if activation_name and not fused_relu else None

    def construct(self, x):
        if self.reduced:
            out = ops.cast(super().construct(ops.cast(x, self.compute_dtype)), ms.float32)
        else:
            shape = x.shape
            out = self.linear(ops.reshape(x, (-1, shape[-1])), self.weight, self.bias)
            out = ops.reshape(out, shape[:-1] + (out.shape[-1],))
        if self.activation_fn is not None:
            out = self.activation_fn(out)
        return out


def swap_axes_1_2(x):
    """``[B, M, N, D] -> [B, N, M, D]`` done as a row gather, bit-identical to ``ops.transpose(x, (0, 2, 1, 3))``.

    Why not the transpose: MindSpore's CPU Transpose is a view op whose input and output both stay allocated until
    the graph finishes; with four per layer that is 0.5 GB of ERNIE-base's training peak (batch 8 x 128) and 0.3 GB
    of its inference peak. A Gather is an ordinary kernel, so its memory is reused.
    """
    batch, m, n, d = x.shape
    # Output row (b, j, i) of the [B * N * M, D] result reads input row (b, i, j) = b * M * N + i * N + j.
    source = (ops.reshape(ops.arange(0, batch, dtype=ms.int32) * (m * n), (-1, 1, 1))
              + ops.reshape(ops.arange(0, n, dtype=ms.int32), (1, -1, 1))
              + ops.reshape(ops.arange(0, m, dtype=ms.int32) * n, (1, 1, -1)))
    rows = ops.gather(ops.reshape(x, (-1, d)), ops.reshape(source, (-1,)), 0)
    return ops.reshape(rows, (batch, n, m, d))


class AttentionScores(nn.Cell):
    """``(query [B,S,H,d], key [B,T,H,d]) -> query @ key^T`` as ``[B,H,S,T]``, per batch and head. With bfloat16 on CPU
    the bf16 custom operator of ``src.kernels`` reads the heads in place, forward and backward (the transposed
    copies, their gradients and MindSpore's float32 BatchMatMul took 0.17 s of an ERNIE-base bf16 training step);
    elsewhere float32 ``BatchMatMul`` on transposed copies, whatever ``compute_dtype`` is. Raises like ``Dense``."""

    def __init__(self, compute_dtype=ms.float32):
        super().__init__()
        self.bf16 = _bf16_on_cpu(compute_dtype)
        if self.bf16:
            from .kernels.bf16_matmul import Bf16AttentionScores
            self.product = Bf16AttentionScores()
        else:
            self.product = ops.BatchMatMul(transpose_b=True)

    def construct(self, query, key):
        if self.bf16:
            return self.product(query, key)
        return self.product(swap_axes_1_2(query), swap_axes_1_2(key))


class AttentionContext(nn.Cell):
    """``(probs [B,H,S,T], value [B,T,H,d]) -> probs @ value`` as ``[B,S,H,d]``, per batch and head; computed as
    ``AttentionScores`` is."""

    def __init__(self, compute_dtype=ms.float32):
        super().__init__()
        self.bf16 = _bf16_on_cpu(compute_dtype)
        if self.bf16:
            from .kernels.bf16_matmul import Bf16AttentionContext
            self.product = Bf16AttentionContext()
        else:
            self.product = ops.BatchMatMul()

    def construct(self, probs, value):
        if self.bf16:
            return self.product(probs, value)
        return swap_axes_1_2(self.product(probs, swap_axes_1_2(value)))
