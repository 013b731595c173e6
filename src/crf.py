"""Linear-chain CRF for sequence labelling, trained jointly with the encoder.

A tag path y over the real positions 0..L-1 of a sequence scores
    start[y_0] + sum_t emissions[t, y_t] + sum_{t>=1} transitions[y_{t-1}, y_t] + end[y_{L-1}];
the loss is the negative log-likelihood logZ - score(gold) and decoding is the Viterbi argmax path.

Both recursions are written as products of per-position [T, T] score matrices in a semiring (log-sum-exp for logZ,
max for Viterbi). Products are associative, so they are combined pairwise in log2(S) rounds instead of S sequential
steps: the graph stays small (an unrolled S=256 loop took 10-23 s to compile and a decode of S=256 exceeded
MindSpore's call-depth limit), it runs in GRAPH mode under autodiff, and it exports to MindIR and ONNX.
The price is O(B * S * T^3) memory per round instead of O(B * S * T^2).
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import Uniform, initializer

# log-space "zero" off the diagonal of the semiring identity: finite, so ONNX constants and gradients stay finite,
# and far below any real path score
_NEG = -1e9


class CRF(nn.Cell):
    """Linear-chain CRF over ``num_tags`` tags.

    ``transitions[i, j]`` scores tag i followed by tag j; ``start_transitions`` / ``end_transitions`` score the first
    and the last real tag. ``mask`` marks real positions with 1: a contiguous prefix starting at position 0, which is
    always scored (it is the [CLS] position). A padded position acts as the identity, so it changes nothing.
    """

    def __init__(self, num_tags):
        super().__init__()
        if int(num_tags) < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        self.num_tags = int(num_tags)
        self.transitions = Parameter(initializer(Uniform(0.1), (self.num_tags, self.num_tags), ms.float32),
                                     name="transitions")
        self.start_transitions = Parameter(initializer(Uniform(0.1), (self.num_tags,), ms.float32),
                                           name="start_transitions")
        self.end_transitions = Parameter(initializer(Uniform(0.1), (self.num_tags,), ms.float32),
                                         name="end_transitions")
        self.log_identity = Tensor(np.where(np.eye(self.num_tags, dtype=bool), 0.0, _NEG), ms.float32)
        self.index_identity = Tensor(np.arange(self.num_tags), ms.int32)
        self.on_value = Tensor(1.0, ms.float32)
        self.off_value = Tensor(0.0, ms.float32)
        # primitives rather than functional ops, and no negative slice indices: the forms that survive ONNX export
        self.one_hot = ops.OneHot()
        self.argmax_with_value = ops.ArgMaxWithValue(axis=2)
        self.argmax = ops.Argmax(axis=-1, output_type=ms.int32)
        self.gather_d = ops.GatherD()
        self.reduce_max = ops.ReduceMax()

    def _check_shapes(self, emissions, mask, tags=None):
        # static dimensions only: the batch may be dynamic in an exported graph, the sequence length may not
        if len(emissions.shape) != 3 or emissions.shape[2] != self.num_tags:
            raise ValueError(f"emissions must be [batch, seq_len, {self.num_tags}], got {emissions.shape}")
        if len(mask.shape) != 2 or mask.shape[1] != emissions.shape[1]:
            raise ValueError(f"mask must be [batch, seq_len={emissions.shape[1]}], got {mask.shape}")
        if tags is not None and (len(tags.shape) != 2 or tags.shape[1] != emissions.shape[1]):
            raise ValueError(f"tags must be [batch, seq_len={emissions.shape[1]}], got {tags.shape}")

    def construct(self, emissions, tags, mask):
        """Negative log-likelihood per sequence, float32 [B]."""
        self._check_shapes(emissions, mask, tags)
        mask = ops.cast(mask, ms.float32)
        return self._log_partition(emissions, mask) - self._path_score(emissions, tags, mask)

    def _path_score(self, emissions, tags, mask):
        """Score of the given tag paths, [B]; one-hot products instead of gathers keep it loop-free."""
        seq_len = mask.shape[1]
        tags_one_hot = self.one_hot(tags, self.num_tags, self.on_value, self.off_value)       # [B, S, T]
        emission_score = (tags_one_hot * emissions).sum(axis=2)                             # [B, S]
        # transitions[y_{t-1}, y_t] = (one_hot(y_{t-1}) @ transitions) . one_hot(y_t)
        transition_score = (ops.matmul(tags_one_hot[:, :seq_len - 1], self.transitions)
                            * tags_one_hot[:, 1:]).sum(axis=2)                              # [B, S-1]
        start_score = (tags_one_hot[:, 0] * self.start_transitions).sum(axis=1)
        # 1 at the last real position of each (prefix) mask, 0 elsewhere
        is_last = mask - ops.concat((mask[:, 1:], ops.zeros_like(mask[:, :1])), axis=1)
        end_score = ((tags_one_hot * self.end_transitions).sum(axis=2) * is_last).sum(axis=1)
        return (start_score + (emission_score * mask).sum(axis=1)
                + (transition_score * mask[:, 1:]).sum(axis=1) + end_score)

    def _step_matrices(self, emissions, mask):
        """[B, S-1, T, T]: step t >= 1 scores transitions[i, j] + emissions[t, j]; the identity where padded."""
        steps = self.transitions + emissions[:, 1:].expand_dims(2)
        is_real = mask[:, 1:].expand_dims(2).expand_dims(3)
        return is_real * steps + (1.0 - is_real) * self.log_identity

    def _log_partition(self, emissions, mask):
        """Forward algorithm, [B]: logZ = logsumexp((start + e_0) (x) M_1 (x) ... (x) M_{S-1} + end)."""
        seq_len = mask.shape[1]
        alpha = self.start_transitions + emissions[:, 0]                                   # [B, T]
        if seq_len > 1:
            matrices = self._step_matrices(emissions, mask)
            count = seq_len - 1
            size = 1
            while size < count:
                size *= 2
            if size > count:  # pad with identities to a power of two (size - count < count)
                padding = ops.zeros_like(matrices[:, :size - count]) + self.log_identity
                matrices = ops.concat((matrices, padding), axis=1)
            while size > 1:  # multiply neighbours pairwise: size halves each round
                size //= 2
                pairs = matrices.reshape(-1, size, 2, self.num_tags, self.num_tags)
                # [.., i, j, 1] + [.., 1, j, k], reduced over j
                matrices = ops.logsumexp(pairs[:, :, 0].expand_dims(4) + pairs[:, :, 1].expand_dims(2), 3)
            alpha = ops.logsumexp(alpha.expand_dims(2) + matrices[:, 0], 1)
        return ops.logsumexp(alpha + self.end_transitions, 1)

    def decode(self, emissions, mask):
        """Viterbi best paths, int32 [B, S]; padded positions are 0.

        An inclusive prefix scan (Hillis-Steele) of max-plus products gives the Viterbi scores of every position at
        once; the back-pointers follow in one argmax, and composing back-pointer maps by pointer doubling traces every
        position back from the best last tag.
        """
        self._check_shapes(emissions, mask)
        seq_len = mask.shape[1]
        int_mask = ops.cast(mask, ms.int32)
        alpha_0 = self.start_transitions + emissions[:, 0]                                 # [B, T]
        if seq_len == 1:
            return self.argmax(alpha_0 + self.end_transitions).expand_dims(1) * int_mask
        # prefix[t - 1] = M_1 (x) ... (x) M_t after the scan
        prefix = self._step_matrices(emissions, ops.cast(mask, ms.float32))                # [B, S-1, T, T]
        shift = 1
        while shift < seq_len - 1:
            earlier = ops.concat((ops.zeros_like(prefix[:, :shift]) + self.log_identity,
                                  prefix[:, :seq_len - 1 - shift]), axis=1)
            # max-plus product earlier (x) prefix: [.., i, j, 1] + [.., 1, j, k], max over j
            prefix = self.reduce_max(earlier.expand_dims(4) + prefix.expand_dims(2), 3)
            shift *= 2
        alpha = self.reduce_max(alpha_0.expand_dims(1).expand_dims(3) + prefix, 2)           # [B, S-1, T]: t = 1..S-1
        alpha = ops.concat((alpha_0.expand_dims(1), alpha), axis=1)                         # [B, S, T]
        best_last = self.argmax(alpha[:, seq_len - 1] + self.end_transitions)               # [B]
        # back-pointer of step t: for each tag j at t, the best tag at t-1; a padded step points to itself
        back_pointers, _ = self.argmax_with_value(alpha[:, :seq_len - 1].expand_dims(3) + self.transitions)
        is_real = int_mask[:, 1:].expand_dims(2)
        identity = ops.zeros_like(is_real) + self.index_identity                            # [B, S-1, T]
        back_pointers = is_real * ops.cast(back_pointers, ms.int32) + (1 - is_real) * identity
        # trace[t][j]: tag at position t on the best path that ends in tag j at position S-1. It starts as one
        # step back (t+1 -> t; the identity at S-1) and each round composes it with the trace `shift` steps later.
        trace = ops.concat((back_pointers, identity[:, :1]), axis=1)                         # [B, S, T]
        shift = 1
        while shift < seq_len - 1:
            later = ops.concat((trace[:, shift:], ops.zeros_like(trace[:, :shift]) + self.index_identity), axis=1)
            trace = self.gather_d(trace, 2, later)
            shift *= 2
        best_last = ops.zeros_like(int_mask).expand_dims(2) + best_last.expand_dims(1).expand_dims(2)  # [B, S, 1]
        return self.gather_d(trace, 2, best_last).squeeze(2) * int_mask


def viterbi_decode_numpy(emissions, transitions, start_transitions, end_transitions, lengths):
    """Viterbi on the host: emissions [B, S, T] and lengths [B] -> one best tag list of length lengths[b] per row."""
    emissions = np.asarray(emissions, dtype=np.float64)
    transitions = np.asarray(transitions, dtype=np.float64)
    start_transitions = np.asarray(start_transitions, dtype=np.float64)
    end_transitions = np.asarray(end_transitions, dtype=np.float64)
    lengths = np.asarray(lengths).reshape(-1)
    if emissions.ndim != 3:
        raise ValueError(f"emissions must be [batch, seq_len, num_tags], got shape {emissions.shape}")
    batch, seq_len, num_tags = emissions.shape
    if transitions.shape != (num_tags, num_tags) or start_transitions.shape != (num_tags,) \
            or end_transitions.shape != (num_tags,):
        raise ValueError(f"transition shapes {transitions.shape}, {start_transitions.shape}, "
                         f"{end_transitions.shape} do not match {num_tags} tags")
    if lengths.shape != (batch,) or np.any(lengths < 1) or np.any(lengths > seq_len):
        raise ValueError(f"lengths must be {batch} values in [1, {seq_len}], got {lengths.tolist()}")
    paths = []
    for row, length in zip(emissions, lengths):
        score = start_transitions + row[0]
        back_pointers = []
        for t in range(1, int(length)):
            candidates = score[:, None] + transitions                                          # [T_prev, T_cur]
            back_pointers.append(candidates.argmax(axis=0))
            score = candidates.max(axis=0) + row[t]
        path = [int(np.argmax(score + end_transitions))]
        for pointers in reversed(back_pointers):
            path.append(int(pointers[path[-1]]))
        paths.append(path[::-1])
    return paths
