"""experiments/knowledge_masking.py --smoke: the whole pipeline (corpus, vocabulary, both maskings, pre-training, entity
cloze, random-init and pre-trained CRF fine-tunes, table) through the project's entry points, at a tiny budget."""
import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.real_data
def test_smoke_run_writes_the_table(tmp_path, shared_data):
    if not os.path.isdir(os.path.join(shared_data, "msra_ner")):
        pytest.skip(f"{shared_data}/msra_ner (the MSRA NER train/test splits) is absent")
    work_dir = tmp_path / "km"
    result = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "knowledge_masking.py"), "--smoke",
                             "--work_dir", str(work_dir), "--data_dir", shared_data], cwd=REPO, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads((work_dir / "results.json").read_text(encoding="utf-8"))
    rows = results["rows"]
    assert set(rows) == {"scratch", "char", "ernie"}
    for model, row in rows.items():
        assert 0.0 <= row["ner_f1"]["mean"] <= 1.0 and len(row["ner_f1"]["values"]) == 1
        if model != "scratch":
            assert row["cloze_entities"] > 0
            for key in ("mlm_accuracy", "cloze_char_accuracy", "cloze_entity_exact"):
                assert 0.0 <= row[key]["mean"] <= 1.0
    assert 0.0 < results["unigram_baseline_mlm_accuracy"] < 1.0
    cloze = results["pretrained"]["char/seed1"]  # python -m src.cloze's JSON: what the model predicts at entities
    assert 0 < sum(count for _, count in cloze["top_predictions"]) <= cloze["cloze_chars"]
    assert all(math.isfinite(d["mean"]) for d in results["differences"].values())
    assert {"pretrain_char_seed1", "pretrain_ernie_seed1", "cloze_ernie_seed1",
            "finetune_msra_ner_scratch_seed1"} <= set(results["step_times"])
    assert results["corpus"]["pd_heldout_documents"] > 0
    assert "| random initialisation |" in (work_dir / "results.md").read_text(encoding="utf-8")
    # a second run finds every step done and rebuilds the same table without running anything
    again = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "knowledge_masking.py"), "--smoke",
                            "--work_dir", str(work_dir), "--data_dir", shared_data], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((work_dir / "results.json").read_text(encoding="utf-8"))
    assert rerun["step_times"] == {} and rerun["rows"] == rows
