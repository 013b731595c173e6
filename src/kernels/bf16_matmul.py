"""bf16 matrix products with fp32 accumulation on CPU, as MindSpore AOT custom operators (csrc/bf16_gemm.cc).

MindSpore 2.10's CPU MatMul has no bf16 kernel; these operators round their float32 inputs to bf16 and run oneDNN's
``dnnl_gemm_bf16bf16f32`` (fp32 accumulation), so the network and its parameters stay float32 and only the products
lose precision (bf16 keeps 8 significant bits: relative errors of about 1e-3 to 1e-2 against float32).

``Bf16Linear`` is ``x @ weight.T + bias`` for a 2-D ``x`` with its backward also in bf16 GEMMs, one operator for the
three gradients: ``dx = dy @ weight``, ``dweight = dy.T @ x`` (fp32 results) and ``dbias = sum(dy)`` in float32.
``Bf16AttentionScores`` and ``Bf16AttentionContext`` are the attention's two products per batch and head in the same
bf16 GEMMs, forward and backward, on the [B, S, H, d] layout of the projections (no transposed copies).
"""
from mindspore import nn

from .build import aot_op, check_bf16_cpu


def linear_op(relu=False):
    """``(x [M,K], weight [N,K], bias [N]) -> bf16(x) @ bf16(weight).T + bias`` (float32 in and out), then
    ``max(., 0)`` when ``relu``."""
    return aot_op("ErnieBf16LinearRelu" if relu else "ErnieBf16Linear", lambda x, weight, bias: [x[0], weight[0]],
                  lambda x, weight, bias: x)


def linear_grad_op(relu=False):
    """``(dy [M,N], x [M,K], weight [N,K]) -> (bf16(dy) @ bf16(weight), bf16(dy).T @ bf16(x), dy summed over rows)``:
    the gradients of ``linear_op`` with respect to x, weight and bias (dy rounded to bf16 once for both GEMMs). With
    ``relu`` the inputs are ``(dy, y, x, weight)``, y being the forward's output, and dy counts where y > 0 only."""
    if relu:
        return aot_op("ErnieBf16LinearReluGrad", lambda dy, y, x, weight: ([x[0], x[1]], list(weight), [weight[0]]),
                      lambda dy, y, x, weight: (dy, dy, dy))
    return aot_op("ErnieBf16LinearGrad", lambda dy, x, weight: ([x[0], x[1]], list(weight), [weight[0]]),
                  lambda dy, x, weight: (dy, dy, dy))


class Bf16Linear(nn.Cell):
    """``x @ weight.T + bias`` for a 2-D float32 ``x`` in bf16 GEMMs (fp32 accumulation), forward and backward, with
    a ReLU after it in the same operators when ``relu`` (MindSpore's ReLU and its gradient took 38 ms of an
    ERNIE-base bf16 training step). Raises KernelUnavailable (with the reason) where the CPU lacks AVX512_BF16 or the
    kernels cannot be built."""

    def __init__(self, relu=False):
        super().__init__()
        check_bf16_cpu()
        self.relu = relu
        self.linear = linear_op(relu)
        self.linear_grad = linear_grad_op(relu)

    def construct(self, x, weight, bias):
        return self.linear(x, weight, bias)

    def bprop(self, x, weight, bias, out, dout):
        if self.relu:
            return self.linear_grad(dout, out, x, weight)
        return self.linear_grad(dout, x, weight)


def heads_nt_op():
    """``(a [B,S,H,d], b [B,T,H,d]) -> [B,H,S,T]``: ``bf16(a) @ bf16(b)^T`` for each batch and head."""
    return aot_op("ErnieBf16HeadsNT", lambda a, b: [a[0], a[2], a[1], b[1]], lambda a, b: a)


def items_nn_op():
    """``(a [B,H,S,T], b [B,T,H,d]) -> [B,S,H,d]``: ``bf16(a) @ bf16(b)`` for each batch and head."""
    return aot_op("ErnieBf16ItemsNN", lambda a, b: [a[0], a[2], a[1], b[3]], lambda a, b: a)


def items_tn_op():
    """``(a [B,H,T,S], b [B,T,H,d]) -> [B,S,H,d]``: ``bf16(a)^T @ bf16(b)`` for each batch and head."""
    return aot_op("ErnieBf16ItemsTN", lambda a, b: [a[0], a[3], a[1], b[3]], lambda a, b: a)


class Bf16AttentionScores(nn.Cell):
    """``(query [B,S,H,d], key [B,T,H,d]) -> query @ key^T [B,H,S,T]`` per batch and head, with the heads read where
    the projections wrote them (no transposed copies), in bf16 GEMMs forward and backward."""

    def __init__(self):
        super().__init__()
        check_bf16_cpu()
        self.scores = heads_nt_op()
        self.items_nn = items_nn_op()
        self.items_tn = items_tn_op()

    def construct(self, query, key):
        return self.scores(query, key)

    def bprop(self, query, key, out, dout):
        return self.items_nn(dout, key), self.items_tn(dout, query)


class Bf16AttentionContext(nn.Cell):
    """``(probs [B,H,S,T], value [B,T,H,d]) -> probs @ value [B,S,H,d]`` per batch and head, written where the output
    projection reads it, in bf16 GEMMs forward and backward."""

    def __init__(self):
        super().__init__()
        check_bf16_cpu()
        self.context = items_nn_op()
        self.heads_nt = heads_nt_op()
        self.items_tn = items_tn_op()

    def construct(self, probs, value):
        return self.context(probs, value)

    def bprop(self, probs, value, out, dout):
        return self.heads_nt(dout, value), self.items_tn(probs, dout)
