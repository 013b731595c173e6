"""bf16 matrix products with fp32 accumulation on CPU, as MindSpore AOT custom operators (csrc/bf16_gemm.cc).

MindSpore 2.10's CPU MatMul has no bf16 kernel; these operators round their float32 inputs to bf16 and run oneDNN's
``dnnl_gemm_bf16bf16f32`` (fp32 accumulation), so the network and its parameters stay float32 and only the products
lose precision (bf16 keeps 8 significant bits: relative errors of about 1e-3 to 1e-2 against float32).

``Bf16Linear`` is ``x @ weight.T + bias`` for a 2-D ``x`` with its backward also in bf16 GEMMs:
``dx = dy @ weight``, ``dweight = dy.T @ x`` (fp32 results) and ``dbias = sum(dy)`` in float32.
"""
from mindspore import nn, ops

from .build import aot_op, check_bf16_cpu


def _custom(function, out_shape):
    return aot_op(function, out_shape, lambda *types: types[0])


def linear_op():
    """``(x [M,K], weight [N,K], bias [N]) -> bf16(x) @ bf16(weight).T + bias`` (float32 in and out)."""
    return _custom("ErnieBf16Linear", lambda x, weight, bias: [x[0], weight[0]])


def matmul_op():
    """``(a [M,K], b [K,N]) -> bf16(a) @ bf16(b)``."""
    return _custom("ErnieBf16MatMul", lambda a, b: [a[0], b[1]])


def matmul_transpose_a_op():
    """``(a [K,M], b [K,N]) -> bf16(a).T @ bf16(b)``."""
    return _custom("ErnieBf16MatMulTA", lambda a, b: [a[1], b[1]])


class Bf16Linear(nn.Cell):
    """``x @ weight.T + bias`` for a 2-D float32 ``x`` in bf16 GEMMs (fp32 accumulation), forward and backward.
    Raises KernelUnavailable (with the reason) where the CPU lacks AVX512_BF16 or the kernels cannot be built."""

    def __init__(self):
        super().__init__()
        check_bf16_cpu()
        self.linear = linear_op()
        self.input_grad = matmul_op()
        self.weight_grad = matmul_transpose_a_op()

    def construct(self, x, weight, bias):
        return self.linear(x, weight, bias)

    def bprop(self, x, weight, bias, out, dout):
        return self.input_grad(dout, weight), self.weight_grad(dout, x), ops.reduce_sum(dout, 0)
