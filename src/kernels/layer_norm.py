"""Fused float32 LayerNorm over the last axis on CPU, forward and backward, as MindSpore AOT custom operators
(csrc/layer_norm.cc): MindSpore 2.10's CPU LayerNorm / LayerNormGrad take about 25x / 20x torch's time on
ERNIE-base's [1024, 768] activations (bench/layernorm_probe.py).
"""
import numpy as np
from mindspore import Tensor, nn

from .build import aot_op


def layer_norm_op():
    """``(x [R,H], gamma [H], beta [H], eps [1]) -> (y [R,H], mean [R], rstd [R])``."""
    return aot_op("ErnieLayerNorm", lambda x, gamma, beta, eps: ([x[0], x[1]], [x[0]], [x[0]]),
                  lambda x, gamma, beta, eps: (x, x, x))


def layer_norm_grad_op():
    """``(dy [R,H], x [R,H], gamma [H], mean [R], rstd [R]) -> (dx [R,H], dgamma [H], dbeta [H])``."""
    return aot_op("ErnieLayerNormGrad", lambda dy, x, gamma, mean, rstd: ([x[0], x[1]], [x[1]], [x[1]]),
                  lambda dy, x, gamma, mean, rstd: (x, x, x))


class FusedLayerNorm(nn.Cell):
    """``(x [R,H], gamma, beta) -> (y, mean, rstd)`` over the last axis of a 2-D float32 ``x``; its gradient with
    respect to ``x``, ``gamma`` and ``beta`` comes from the fused backward kernel (``mean`` and ``rstd`` are saved for
    it, and are not differentiable outputs). Raises ``KernelUnavailable`` where the kernels cannot be built."""

    def __init__(self, eps):
        super().__init__()
        self.eps = Tensor(np.array([eps], np.float32))
        self.forward = layer_norm_op()
        self.backward = layer_norm_grad_op()

    def construct(self, x, gamma, beta):
        return self.forward(x, gamma, beta, self.eps)

    def bprop(self, x, gamma, beta, out, dout):
        return self.backward(dout[0], x, gamma, out[1], out[2])
