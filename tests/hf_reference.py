"""Reference ERNIE forward passes with Hugging Face transformers (torch), run by the tests in a subprocess.

    python tests/hf_reference.py make CONFIG.json INPUTS.npz OUT_DIR
        random-weight ErnieForPreTraining saved with save_pretrained (safetensors) to OUT_DIR/pretraining, its bare
        encoder to OUT_DIR/encoder, reference outputs to OUT_DIR/reference.npz
    python tests/hf_reference.py run MODEL_DIR INPUTS.npz OUT.npz
        loads MODEL_DIR with ErnieForPreTraining.from_pretrained and ErnieModel.from_pretrained and saves their outputs
        and the keys each reported missing or unexpected
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import ErnieConfig, ErnieForPreTraining, ErnieModel


def outputs(model, inputs):
    """sequence/pooled outputs of ``model.ernie`` and the pre-training logits at the masked positions."""
    ids, types, mask = (torch.tensor(inputs[k], dtype=torch.long) for k in ("input_ids", "token_type_ids",
                                                                            "attention_mask"))
    positions = torch.tensor(inputs["masked_lm_positions"], dtype=torch.long)
    with torch.no_grad():
        encoded = model.ernie(input_ids=ids, token_type_ids=types, attention_mask=mask)
        heads = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
    mlm = torch.gather(heads.prediction_logits, 1, positions[:, :, None].expand(-1, -1, model.config.vocab_size))
    return {"sequence_output": encoded.last_hidden_state.numpy(), "pooled_output": encoded.pooler_output.numpy(),
            "mlm_logits": mlm.numpy(), "nsp_logits": heads.seq_relationship_logits.numpy()}


def make(config_path, inputs, out_dir):
    with open(config_path, encoding="utf-8") as f:
        values = json.load(f)
    config = ErnieConfig(**{k: v for k, v in values.items() if k != "num_labels"}, layer_norm_eps=1e-5)
    torch.manual_seed(0)
    model = ErnieForPreTraining(config).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            # Far from the initial ones/zeros so that a wrong mapping changes the outputs.
            if param.dim() == 1:
                centre = 1.0 if "LayerNorm.weight" in name else 0.0
                param.copy_(centre + 0.2 * torch.randn(param.shape, generator=generator))
            else:
                param.copy_(torch.randn(param.shape, generator=generator) / param.shape[1] ** 0.5)
    model.save_pretrained(os.path.join(out_dir, "pretraining"))
    model.ernie.save_pretrained(os.path.join(out_dir, "encoder"))
    np.savez(os.path.join(out_dir, "reference.npz"), **outputs(model, inputs))


def run(model_dir, inputs, out_path):
    model, info = ErnieForPreTraining.from_pretrained(model_dir, output_loading_info=True)
    encoder, encoder_info = ErnieModel.from_pretrained(model_dir, output_loading_info=True)
    results = outputs(model.eval(), inputs)
    with torch.no_grad():
        encoded = encoder.eval()(**{k: torch.tensor(inputs[k], dtype=torch.long) for k in (
            "input_ids", "token_type_ids", "attention_mask")})
    results.update(encoder_sequence_output=encoded.last_hidden_state.numpy(),
                   encoder_pooled_output=encoded.pooler_output.numpy(),
                   missing=np.array(sorted(info["missing_keys"]) + sorted(encoder_info["missing_keys"]), dtype=str),
                   unexpected=np.array(sorted(info["unexpected_keys"]), dtype=str))
    np.savez(out_path, **results)


if __name__ == "__main__":
    mode, path, inputs_path, out = sys.argv[1:]
    {"make": make, "run": run}[mode](path, dict(np.load(inputs_path)), out)
