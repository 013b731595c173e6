"""AdamWeightDecay's update in one pass per parameter, and a gradient's sum of squares, as MindSpore AOT custom
operators on CPU (csrc/adam_weight_decay.cc): MindSpore 2.10's 201 AdamWeightDecay kernels of an ERNIE-base step
take 0.47 s on a 2-core AMD EPYC, the gradient clipping's Square / ReduceSum / Mul about 0.1 s more
(bench/profile_step.py).
"""
from mindspore import ops
from mindspore.ops import signature as sig

from .build import aot_op


class _InPlaceAdamWeightDecay(ops.Custom):
    """The custom operator with ``param``, ``m`` and ``v`` declared written, as ``ops.Assign`` declares its
    variable: MindSpore then orders every other read of those parameters before it and passes their own memory."""

    __mindspore_signature__ = (
        sig.make_sig("param", sig.sig_rw.RW_WRITE),
        sig.make_sig("m", sig.sig_rw.RW_WRITE),
        sig.make_sig("v", sig.sig_rw.RW_WRITE),
        sig.make_sig("grad"),
        sig.make_sig("hyper"),
    )


def adam_weight_decay_op():
    """``(param, m, v, grad, hyper [6]) -> done [1]``: updates ``param``, ``m`` and ``v`` in place with
    ``hyper = (lr, beta1, beta2, eps, weight_decay, gradient factor)`` (MindSpore's AdamWeightDecay rule)."""
    op = aot_op("ErnieAdamWeightDecay", lambda *shapes: [1], lambda *types: types[0], _InPlaceAdamWeightDecay)
    op.add_prim_attr("side_effect_mem", True)
    return op


def sum_of_squares_op():
    """``x -> [1]``: the sum of the squares of all elements (float32, accumulated in double)."""
    return aot_op("ErnieSumOfSquares", lambda x: [1], lambda x: x)
