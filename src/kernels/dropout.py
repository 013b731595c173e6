"""Dropout with a counter-based mask (csrc/dropout.cc) as a MindSpore cell on CPU: MindSpore 2.10's CPU Dropout and
DropoutGrad take 0.19 s of an ERNIE-base bf16 training step (bench/profile_step.py) and draw different masks from run
to run even with a fixed seed; these masks depend only on a seed and how many dropout calls came before in the
process, both set by ``set_state`` (the Trainer sets them from its seed and step).
"""
import ctypes

import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops

from .build import aot_op, kernel_library


def dropout_op():
    """``(x, keep [1] int32) -> (y, mask uint8)``."""
    return aot_op("ErnieDropout", lambda x, keep: (x, x), lambda x, keep: (x, ms.uint8))


def dropout_grad_op():
    """``(dy, mask, keep) -> dx``."""
    return aot_op("ErnieDropoutGrad", lambda dy, mask, keep: dy, lambda dy, mask, keep: dy)


class _MaskedScale(nn.Cell):
    def __init__(self):
        super().__init__()
        self.forward = dropout_op()
        self.backward = dropout_grad_op()

    def construct(self, x, keep):
        return self.forward(x, keep)

    def bprop(self, x, keep, out, dout):
        return self.backward(dout[0], out[1], keep), ops.zeros_like(keep)


class FusedDropout(nn.Cell):
    """``nn.Dropout(p)`` for float32 input in training mode; the identity in inference mode and for ``p == 0``."""

    def __init__(self, p):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)
        # the keep probability in units of 2^-24: an element is kept when 24 bits of its hash fall below it
        self.keep = Tensor(np.array([int(round((1.0 - p) * (1 << 24)))], np.int32))
        self.masked_scale = _MaskedScale()

    def construct(self, x):
        if not self.training or self.p == 0.0:
            return x
        return self.masked_scale(x, self.keep)[0]


def calls_per_step(cell):
    """How many fused dropout calls one training forward of ``cell`` makes (its FusedDropout cells with p > 0)."""
    return sum(1 for _, sub in cell.cells_and_names() if isinstance(sub, FusedDropout) and sub.p > 0)


def set_state(seed, calls):
    """Sets the process's dropout seed and call counter, from which every later call's mask follows."""
    ctypes.CDLL(kernel_library()).ErnieDropoutSetState(ctypes.c_uint32(seed % (1 << 32)),
                                                        ctypes.c_uint32(calls % (1 << 32)))
