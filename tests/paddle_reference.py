"""Reference ERNIE 1.0 forward passes in PaddlePaddle, saved with Paddle's own checkpoint APIs.

Run by tests/test_convert_checkpoint.py in a subprocess (paddle must not share a process with mindspore):

    python tests/paddle_reference.py {static,pdparams} CONFIG.json INPUTS.npz OUT_DIR

``static`` builds ERNIE 1.0's static-graph program as ERNIE's ``ernie_v1.py`` / ``transformer_encoder.py`` do (same
variable names, fc weights [in, out], (mask . mask^T - 1) * 10000 attention bias on query and key positions) with the
pre-training heads and a ``cls_out`` classifier, and writes ``OUT_DIR/params/`` with ``paddle.static.save_vars`` (the
release format, optimizer state included) plus ``ernie_config.json``. ``pdparams`` builds PaddleNLP's dygraph
``ErnieForPretraining`` module tree from ``paddle.nn`` pieces and writes ``model_state.pdparams`` with ``paddle.save``
plus PaddleNLP's older nested ``model_config.json``. Both write the reference outputs to ``OUT_DIR/reference.npz``.
Dropout is left out: it is the identity at inference, which is all these passes run.
"""
import json
import os
import sys

os.environ["FLAGS_enable_pir_api"] = "0"  # the legacy static graph, where static.nn.embedding and save_vars work

import numpy as np  # noqa: E402
import paddle  # noqa: E402


def random_value(name, shape, rng):
    """Values far from the initializers' (ones, zeros) so a wrong mapping or transpose changes the outputs."""
    if len(shape) == 1:
        centre = 1.0 if "scale" in name or name.endswith("norm1.weight") or name.endswith("norm2.weight") or \
            "layer_norm.weight" in name else 0.0
        return (centre + 0.2 * rng.standard_normal(shape)).astype("float32")
    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype("float32")


def static_reference(config, inputs, out_dir):
    paddle.enable_static()
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    batch, seq_len = inputs["input_ids"].shape
    act = config["hidden_act"]
    main, startup = paddle.static.Program(), paddle.static.Program()
    attr = paddle.ParamAttr
    with paddle.static.program_guard(main, startup):
        src_ids = paddle.static.data("src_ids", [batch, seq_len], "int64")
        pos_ids = paddle.static.data("pos_ids", [batch, seq_len], "int64")
        sent_ids = paddle.static.data("sent_ids", [batch, seq_len], "int64")
        input_mask = paddle.static.data("input_mask", [batch, seq_len, 1], "float32")
        mask_pos = paddle.static.data("mask_pos", [None], "int64")
        mask_label = paddle.static.data("mask_label", [None, 1], "int64")
        labels = paddle.static.data("labels", [batch, 1], "int64")

        def fc(x, size, name, num_flatten_dims=2, activation=None):
            return paddle.static.nn.fc(x, size, num_flatten_dims=num_flatten_dims, activation=activation,
                                       weight_attr=attr(name=name + ".w_0"), bias_attr=attr(name=name + ".b_0"))

        def layer_norm(x, name):
            return paddle.static.nn.layer_norm(x, begin_norm_axis=len(x.shape) - 1,
                                               param_attr=attr(name=name + "_layer_norm_scale"),
                                               bias_attr=attr(name=name + "_layer_norm_bias"))

        emb = paddle.static.nn.embedding(src_ids, [config["vocab_size"], hidden],
                                         param_attr=attr(name="word_embedding"))
        emb = emb + paddle.static.nn.embedding(pos_ids, [config["max_position_embeddings"], hidden],
                                               param_attr=attr(name="pos_embedding"))
        emb = emb + paddle.static.nn.embedding(sent_ids, [config["type_vocab_size"], hidden],
                                               param_attr=attr(name="sent_embedding"))
        x = layer_norm(emb, "pre_encoder")

        def matmul_t(a, b):  # a . b^T; paddle.matmul accepts only PIR values in 3.x, the @ operator still works
            perm = list(range(len(b.shape)))
            return a @ paddle.transpose(b, perm[:-2] + perm[:-3:-1])

        attn_bias = paddle.scale(matmul_t(input_mask, input_mask), scale=10000.0, bias=-1.0, bias_after_scale=False)
        attn_bias = paddle.stack([attn_bias] * heads, axis=1)
        d_key = hidden // heads
        for i in range(config["num_hidden_layers"]):
            name = f"encoder_layer_{i}"

            def split(t):
                return paddle.transpose(paddle.reshape(t, [0, 0, heads, d_key]), [0, 2, 1, 3])

            q = split(fc(x, hidden, name + "_multi_head_att_query_fc"))
            k = split(fc(x, hidden, name + "_multi_head_att_key_fc"))
            v = split(fc(x, hidden, name + "_multi_head_att_value_fc"))
            scores = matmul_t(paddle.scale(q, scale=d_key ** -0.5), k) + attn_bias
            context = paddle.nn.functional.softmax(scores) @ v
            context = paddle.reshape(paddle.transpose(context, [0, 2, 1, 3]), [0, 0, hidden])
            attn_out = layer_norm(fc(context, hidden, name + "_multi_head_att_output_fc") + x, name + "_post_att")
            ffn = fc(attn_out, 4 * hidden, name + "_ffn_fc_0", activation=act)
            x = layer_norm(fc(ffn, hidden, name + "_ffn_fc_1") + attn_out, name + "_post_ffn")
        sequence_output = x

        first = paddle.slice(sequence_output, axes=[1], starts=[0], ends=[1])
        pooled = fc(first, hidden, "pooled_fc", num_flatten_dims=1, activation="tanh")

        mask_feat = paddle.gather(paddle.reshape(sequence_output, [-1, hidden]), mask_pos)
        mask_trans = layer_norm(fc(mask_feat, hidden, "mask_lm_trans_fc", num_flatten_dims=1, activation=act),
                                "mask_lm_trans")
        word_embedding = main.global_block().var("word_embedding")
        mlm_bias = paddle.static.create_parameter([config["vocab_size"]], "float32",
                                                  attr=attr(name="mask_lm_out_fc.b_0"), is_bias=True)
        mlm_logits = matmul_t(mask_trans, word_embedding) + mlm_bias
        nsp_logits = fc(pooled, 2, "next_sent_fc", num_flatten_dims=1)
        cls_logits = paddle.static.nn.fc(pooled, config["num_labels"], weight_attr=attr(name="cls_out_w"),
                                         bias_attr=attr(name="cls_out_b"))
        test_program = main.clone(for_test=True)

        # A training step's optimizer state, so the saved directory looks like a real training checkpoint.
        loss = paddle.nn.functional.cross_entropy(mlm_logits, mask_label) + \
            paddle.nn.functional.cross_entropy(nsp_logits, labels)
        paddle.optimizer.Adam(learning_rate=1e-3).minimize(loss)

    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    rng = np.random.default_rng(1)
    scope = paddle.static.global_scope()
    for param in main.global_block().all_parameters():
        scope.find_var(param.name).get_tensor().set(random_value(param.name, param.shape, rng), paddle.CPUPlace())

    input_ids = inputs["input_ids"].astype("int64")
    positions = inputs["masked_lm_positions"].astype("int64")
    flat_positions = (positions + seq_len * np.arange(batch)[:, None]).reshape(-1)
    feed = {"src_ids": input_ids, "pos_ids": np.tile(np.arange(seq_len), (batch, 1)),
            "sent_ids": inputs["token_type_ids"].astype("int64"),
            "input_mask": inputs["attention_mask"].astype("float32")[:, :, None], "mask_pos": flat_positions,
            "mask_label": np.zeros((flat_positions.size, 1), "int64"), "labels": np.zeros((batch, 1), "int64")}
    outputs = exe.run(test_program, feed=feed, fetch_list=[sequence_output, pooled, mlm_logits, nsp_logits,
                                                           cls_logits])
    params_dir = os.path.join(out_dir, "params")
    paddle.static.save_vars(exe, params_dir, main_program=main, predicate=paddle.static.io.is_persistable)
    with open(os.path.join(out_dir, "ernie_config.json"), "w", encoding="utf-8") as f:
        json.dump({k: v for k, v in config.items() if k not in ("intermediate_size", "num_labels")}, f, indent=2)
    sequence, pooled_out, mlm, nsp, cls = outputs
    np.savez(os.path.join(out_dir, "reference.npz"), sequence_output=sequence, pooled_output=pooled_out,
             mlm_logits=mlm.reshape(batch, -1, config["vocab_size"]), nsp_logits=nsp, classifier_logits=cls)


class PaddleNLPEmbeddings(paddle.nn.Layer):
    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        self.word_embeddings = paddle.nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = paddle.nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = paddle.nn.Embedding(config["type_vocab_size"], hidden)
        self.layer_norm = paddle.nn.LayerNorm(hidden)  # epsilon 1e-5, Paddle's default

    def forward(self, input_ids, token_type_ids):
        positions = paddle.arange(input_ids.shape[1], dtype="int64").unsqueeze(0)
        return self.layer_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions)
                               + self.token_type_embeddings(token_type_ids))


class PaddleNLPPooler(paddle.nn.Layer):
    def __init__(self, hidden):
        super().__init__()
        self.dense = paddle.nn.Linear(hidden, hidden)

    def forward(self, sequence_output):
        return paddle.tanh(self.dense(sequence_output[:, 0]))


class PaddleNLPErnieModel(paddle.nn.Layer):
    def __init__(self, config):
        super().__init__()
        hidden = config["hidden_size"]
        self.embeddings = PaddleNLPEmbeddings(config)
        layer = paddle.nn.TransformerEncoderLayer(hidden, config["num_attention_heads"], config["intermediate_size"],
                                                  dropout=0.0, activation=config["hidden_act"], attn_dropout=0.0,
                                                  act_dropout=0.0, normalize_before=False)
        self.encoder = paddle.nn.TransformerEncoder(layer, config["num_hidden_layers"])
        self.pooler = PaddleNLPPooler(hidden)

    def forward(self, input_ids, token_type_ids, attention_mask):
        # PaddleNLP's convention: a 0/1 mask becomes an additive -1e4 bias on padded keys.
        bias = ((1.0 - attention_mask.astype("float32")) * -1e4).unsqueeze([1, 2])
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids), bias)
        return sequence_output, self.pooler(sequence_output)


class PaddleNLPLMPredictionHead(paddle.nn.Layer):
    def __init__(self, config, embedding_weights):
        super().__init__()
        hidden = config["hidden_size"]
        self.transform = paddle.nn.Linear(hidden, hidden)
        self.activation = getattr(paddle.nn.functional, config["hidden_act"])
        self.layer_norm = paddle.nn.LayerNorm(hidden)
        self.decoder_weight = embedding_weights
        self.decoder_bias = self.create_parameter([config["vocab_size"]], is_bias=True)

    def forward(self, hidden_states):
        hidden_states = self.layer_norm(self.activation(self.transform(hidden_states)))
        return paddle.matmul(hidden_states, self.decoder_weight, transpose_y=True) + self.decoder_bias


class PaddleNLPPretrainingHeads(paddle.nn.Layer):
    def __init__(self, config, embedding_weights):
        super().__init__()
        self.predictions = PaddleNLPLMPredictionHead(config, embedding_weights)
        self.seq_relationship = paddle.nn.Linear(config["hidden_size"], 2)


class PaddleNLPErnieForPretraining(paddle.nn.Layer):
    def __init__(self, config):
        super().__init__()
        self.ernie = PaddleNLPErnieModel(config)
        self.cls = PaddleNLPPretrainingHeads(config, self.ernie.embeddings.word_embeddings.weight)

    def forward(self, input_ids, token_type_ids, attention_mask, masked_positions):
        sequence_output, pooled_output = self.ernie(input_ids, token_type_ids, attention_mask)
        masked = paddle.take_along_axis(sequence_output, masked_positions.unsqueeze(-1), axis=1)
        return sequence_output, pooled_output, self.cls.predictions(masked), self.cls.seq_relationship(pooled_output)


def pdparams_reference(config, inputs, out_dir):
    paddle.disable_static()
    paddle.seed(0)
    model = PaddleNLPErnieForPretraining(config)
    model.eval()
    rng = np.random.default_rng(2)
    for name, param in model.named_parameters():
        param.set_value(random_value(name, param.shape, rng))
    with paddle.no_grad():
        outputs = model(*(paddle.to_tensor(inputs[key].astype("int64")) for key in (
            "input_ids", "token_type_ids", "attention_mask", "masked_lm_positions")))
    paddle.save(model.state_dict(), os.path.join(out_dir, "model_state.pdparams"))
    encoder_args = {k: v for k, v in config.items() if k != "num_labels"}
    with open(os.path.join(out_dir, "model_config.json"), "w", encoding="utf-8") as f:
        json.dump({"init_args": [dict(encoder_args, init_class="ErnieModel")], "init_class": "ErnieForPretraining"},
                  f, indent=2)
    names = ("sequence_output", "pooled_output", "mlm_logits", "nsp_logits")
    np.savez(os.path.join(out_dir, "reference.npz"), **{k: v.numpy() for k, v in zip(names, outputs)})


if __name__ == "__main__":
    mode, config_path, inputs_path, out_dir = sys.argv[1:]
    with open(config_path, encoding="utf-8") as f:
        model_config = json.load(f)
    model_inputs = dict(np.load(inputs_path))
    {"static": static_reference, "pdparams": pdparams_reference}[mode](model_config, model_inputs, out_dir)
