"""Task models on top of the ERNIE encoder (their losses are in ``losses.py``).

Each task model holds the encoder as ``ernie`` and adds a few parameters, so its parameter names are the Hugging Face
task-model keys (``ernie.*``, ``classifier.*``, ``qa_outputs.*``, ``cls.predictions.*``, ``cls.seq_relationship.*``).
Models return logits.
"""
import mindspore as ms
from mindspore import Parameter, nn, ops
from mindspore.common.initializer import initializer

from .crf import CRF
from .ernie_model import ErnieModel
from .layers import Dense, LayerNorm, activation, dropout


class ErnieForSequenceClassification(nn.Cell):
    """Pooled [CLS] output -> dropout -> linear: ``[B, num_labels]`` logits."""

    def __init__(self, config, num_labels):
        super().__init__()
        self.num_labels = num_labels
        self.ernie = ErnieModel(config)
        self.dropout = dropout(config.hidden_dropout_prob)
        self.classifier = Dense(config.hidden_size, num_labels, config.initializer_range)

    def construct(self, input_ids, token_type_ids, attention_mask):
        # The encoder's tuple is indexed, not unpacked: unpacking into `_, pooled_output` leaves a tuple_getitem node
        # whose value nothing uses, which MindSpore's auto-monad pass reports on every compile as the WARNING
        # "ClearIsolatedNodes] Some side effect nodes were eliminated by mistake" (same in the heads below).
        pooled_output = self.ernie(input_ids, token_type_ids, attention_mask)[1]
        return self.classifier(self.dropout(pooled_output))


class ErnieForTokenClassification(nn.Cell):
    """Per-token emissions ``[B, S, num_labels]``; with ``use_crf`` a linear-chain CRF (``crf``) scores tag paths."""

    def __init__(self, config, num_labels, use_crf=False):
        super().__init__()
        self.num_labels = num_labels
        self.use_crf = use_crf
        self.ernie = ErnieModel(config, add_pooling_layer=False)
        self.dropout = dropout(config.hidden_dropout_prob)
        self.classifier = Dense(config.hidden_size, num_labels, config.initializer_range)
        if use_crf:
            self.crf = CRF(num_labels)

    def construct(self, input_ids, token_type_ids, attention_mask):
        sequence_output = self.ernie(input_ids, token_type_ids, attention_mask)[0]  # not unpacked: see above
        return self.classifier(self.dropout(sequence_output))


class ErnieForQuestionAnswering(nn.Cell):
    """Span extraction: ``(start_logits [B, S], end_logits [B, S])``."""

    def __init__(self, config):
        super().__init__()
        self.ernie = ErnieModel(config, add_pooling_layer=False)
        self.dropout = dropout(config.hidden_dropout_prob)
        self.qa_outputs = Dense(config.hidden_size, 2, config.initializer_range)

    def construct(self, input_ids, token_type_ids, attention_mask):
        sequence_output = self.ernie(input_ids, token_type_ids, attention_mask)[0]  # not unpacked: see above
        logits = self.qa_outputs(self.dropout(sequence_output))
        return logits[:, :, 0], logits[:, :, 1]


class ErniePredictionHeadTransform(nn.Cell):
    def __init__(self, config):
        super().__init__()
        self.dense = Dense(config.hidden_size, config.hidden_size, config.initializer_range)
        self.transform_act_fn = activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)

    def construct(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class ErnieLMPredictionHead(nn.Cell):
    """Masked-LM head; the decoder is the word-embedding table (tied, as in ERNIE) plus its own bias."""

    def __init__(self, config):
        super().__init__()
        self.transform = ErniePredictionHeadTransform(config)
        self.bias = Parameter(initializer("zeros", (config.vocab_size,), ms.float32), name="bias")
        self.decoder = ops.MatMul(transpose_b=True)

    def construct(self, hidden_states, word_embeddings):
        batch, positions, hidden = hidden_states.shape
        flat = ops.reshape(self.transform(hidden_states), (batch * positions, hidden))
        logits = self.decoder(flat, word_embeddings) + self.bias
        return ops.reshape(logits, (batch, positions, -1))


class ErniePreTrainingHeads(nn.Cell):
    def __init__(self, config):
        super().__init__()
        self.predictions = ErnieLMPredictionHead(config)
        self.seq_relationship = Dense(config.hidden_size, 2, config.initializer_range)


class ErnieForPretraining(nn.Cell):
    """``(mlm_logits [B, P, vocab], nsp_logits [B, 2])`` for the masked positions ``masked_lm_positions [B, P]``."""

    def __init__(self, config):
        super().__init__()
        self.ernie = ErnieModel(config)
        self.cls = ErniePreTrainingHeads(config)

    def construct(self, input_ids, token_type_ids, attention_mask, masked_lm_positions):
        sequence_output, pooled_output = self.ernie(input_ids, token_type_ids, attention_mask)
        index = ops.broadcast_to(ops.expand_dims(masked_lm_positions, -1),
                                 (masked_lm_positions.shape[0], masked_lm_positions.shape[1], sequence_output.shape[2]))
        masked_output = ops.gather_elements(sequence_output, 1, index)
        mlm_logits = self.cls.predictions(masked_output, self.ernie.embeddings.word_embeddings.weight)
        return mlm_logits, self.cls.seq_relationship(pooled_output)
