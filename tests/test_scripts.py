"""The model zoo's shell wrappers as a user runs them: under sh (dash, as on Debian/Ubuntu/EulerOS) and bash, from
the repository root and from scripts/, with paths containing spaces, on a tiny task-data folder in ERNIE's layout.

Training runs are few and tiny; most checks use DRY_RUN=1, under which a script prints the command it would run
(shell-quoted) instead of running it, so the exact argument vector can be compared."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
VOCAB = os.path.join(REPO, "tests", "fixtures", "tiny_vocab.txt")
SQUAD = os.path.join(REPO, "tests", "fixtures", "mrc_squad.json")
CHARS = list("一三上下不个中么九也书了京亲人什他价你全公共务包北华去台名吗含和哪喝四回国在城多大太学宫家少开很心怎我房把推放政故料明是有服来校格歌")
DASH = shutil.which("dash")
BASH = shutil.which("bash")
SHELLS = [pytest.param(DASH, id="dash", marks=pytest.mark.skipif(DASH is None, reason="dash is not installed")),
          pytest.param(BASH, id="bash", marks=pytest.mark.skipif(BASH is None, reason="bash is not installed"))]
needs_dash = pytest.mark.skipif(DASH is None, reason="dash (the sh of Debian/Ubuntu) is not installed")
TINY_RUN = "--config tiny --max_seq_len 16 --batch_size 8 --epoch_num 2 --progress_bar false"
ALL_SCRIPTS = sorted(name for name in os.listdir(SCRIPTS) if name.endswith(".sh") and not name.startswith("_"))


@pytest.fixture
def task_data(tmp_path):
    """A work folder whose name contains a space, holding `my data/chnsenticorp/{train,dev,test}.tsv`."""
    work = tmp_path / "work dir"
    rng = np.random.default_rng(0)
    folder = work / "my data" / "chnsenticorp"
    folder.mkdir(parents=True)
    for split, rows in (("train", 48), ("dev", 16), ("test", 16)):
        with open(folder / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("label\ttext_a\n")
            for _ in range(rows):
                label = int(rng.integers(0, 2))
                words = list(rng.choice(CHARS, 6))
                words[2] = "好" if label else "错"
                f.write(f"{label}\t{''.join(words)}\n")
    return work


@pytest.fixture
def spaced_repo(tmp_path):
    """The repository seen through a path with a space in it."""
    link = tmp_path / "the repo"
    link.symlink_to(REPO, target_is_directory=True)
    return link


def script_env(work, **env):
    base = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
            "DATA_DIR": str(work / "my data"), "SAVE_DIR": str(work / "save dir"), "VOCAB_FILE": VOCAB,
            "PRETRAINED_DIR": str(work / "no pretrained"), "DEVICE_TARGET": "CPU", "EXTRA_ARGS": TINY_RUN}
    for name in ("DRY_RUN", "DATASET_FORMAT", "MINDRECORD_DIR", "EVAL_SPLIT", "NODE_NUM", "NODE_RANK", "WORKER_NUM",
                 "LOCAL_WORKER_NUM", "SERVER_ID", "CONFIG", "ERNIE_CONFIG", "ERNIE_INPUT", "EVAL_JSON_PATH"):
        base.pop(name, None)
    base.update({key: str(value) for key, value in env.items() if value is not None})
    for key in [key for key, value in env.items() if value is None]:
        base.pop(key, None)
    return base


def run(script, args, work, shell=DASH, cwd=None, expect=0, **env):
    """Runs scripts/SCRIPT ARGS with SHELL (an absolute path, or relative to cwd as a user types it)."""
    result = subprocess.run([shell or BASH, script, *map(str, args)], cwd=cwd or work,
                            env=script_env(work, **env), capture_output=True, text=True, timeout=300)
    if expect is not None:
        assert result.returncode == expect, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def dry_commands(result):
    """The argument vectors of the "dry run:" lines (environment assignments first, as written)."""
    return [shlex.split(line[len("dry run: "):]) for line in result.stdout.splitlines()
            if line.startswith("dry run: ")]


def flag(argv, name):
    assert argv.count(name) == 1, (name, argv)
    return argv[argv.index(name) + 1]


@needs_dash
def test_standalone_finetune_then_eval_under_sh_with_spaces_in_every_path(task_data, spaced_repo):
    script = spaced_repo / "scripts" / "run_standalone_finetune.sh"
    out = run(script, ["chnsenticorp"], task_data)
    assert "training starts from random weights" in out.stderr
    assert os.path.exists(task_data / "save dir" / "chnsenticorp-best.ckpt")
    out = run(spaced_repo / "scripts" / "run_finetune_eval.sh", ["chnsenticorp"], task_data)
    assert "acc_num" in out.stdout and "total_num 16" in out.stdout
    assert json.load(open(task_data / "save dir" / "test_metrics.json"))["total_num"] == 16


@needs_dash
def test_mindrecord_conversion_and_training_under_sh(task_data):
    run(os.path.join(SCRIPTS, "convert_finetune_datasets.sh"), [task_data / "my data", "mind record", "chnsenticorp"],
        task_data)
    assert sorted(f for f in os.listdir(task_data / "mind record") if f.endswith(".mindrecord")) == [
        "chnsenticorp_dev.mindrecord", "chnsenticorp_test.mindrecord", "chnsenticorp_train.mindrecord"]
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["chnsenticorp"], task_data,
              DATASET_FORMAT="mindrecord", MINDRECORD_DIR=task_data / "mind record")
    assert "total_num 16" in out.stdout


@needs_dash
def test_mrc_from_mindrecord_passes_the_eval_json_in_standalone_and_eval_scripts(tmp_path):
    """Issue 11 item 2: drcd from MindRecord stopped with "MRC evaluation from MindRecord needs --eval_json_path"."""
    work = tmp_path / "w"
    folder = work / "my data" / "drcd"
    folder.mkdir(parents=True)
    for split in ("train", "dev"):
        shutil.copy(SQUAD, folder / f"{split}.json")
    run(os.path.join(SCRIPTS, "convert_finetune_datasets.sh"), [work / "my data", work / "mr", "drcd"], work,
        MAX_SEQ_LEN=48, MAX_QUERY_LEN=16, DOC_STRIDE=16)
    env = dict(DATASET_FORMAT="mindrecord", MINDRECORD_DIR=work / "mr",
               EXTRA_ARGS="--config tiny --max_seq_len 48 --max_query_len 16 --doc_stride 16 --batch_size 4 "
                          "--epoch_num 1 --progress_bar false")
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["drcd"], work, **env)
    assert "MRC evaluation from MindRecord needs" not in out.stdout + out.stderr
    assert json.load(open(work / "save dir" / "drcd_dev_metrics.json"))["total"] == 4  # every dev question scored
    out = run(os.path.join(SCRIPTS, "run_finetune_eval.sh"), ["drcd"], work, EVAL_SPLIT="dev", **env)
    assert "total 4" in out.stdout
    for script, args in (("run_standalone_finetune.sh", ["drcd"]), ("run_finetune_eval.sh", ["drcd"]),
                         ("run_distribute_finetune.sh", ["msrun", "drcd"])):
        argv = dry_commands(run(os.path.join(SCRIPTS, script), args, work, DRY_RUN=1, EVAL_SPLIT="dev", **env))[-1]
        assert flag(argv, "--eval_json_path") == str(folder / "dev.json"), script
        assert flag(argv, "--eval_data_file_path") == str(work / "mr" / "drcd_dev.mindrecord"), script


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("from_scripts", [False, True], ids=["from_root", "from_scripts"])
def test_every_script_runs_under_the_shell_from_root_and_scripts(tmp_path, shell, from_scripts):
    """Issue 11 item 1: `sh script.sh` stopped at `set: Illegal option -o pipefail` under dash."""
    work = tmp_path / "w"
    work.mkdir()
    cwd = SCRIPTS if from_scripts else REPO
    prefix = "" if from_scripts else "scripts/"
    out = run(prefix + "run_standalone_finetune.sh", ["chnsenticorp"], work, shell=shell, cwd=cwd, DRY_RUN=1)
    [argv] = dry_commands(out)
    assert argv[:2] == ["python", "run_ernie_classifier.py"] and flag(argv, "--task_type") == "chnsenticorp"
    assert flag(argv, "--task_data_dir") == str(work / "my data")
    assert flag(argv, "--vocab_file_path") == VOCAB and flag(argv, "--output_dir") == str(work / "save dir")
    assert argv[-len(TINY_RUN.split()):] == TINY_RUN.split()
    out = run(prefix + "run_distributed_pretrain.sh", [work], work, shell=shell, cwd=cwd, DRY_RUN=1,
              CONFIG="tiny", EXTRA_ARGS="")
    [argv] = dry_commands(out)
    assert argv[0] == "msrun" and "run_ernie_pretrain.py" in argv and flag(argv, "--data_dir") == str(work)
    for name in ALL_SCRIPTS:
        result = run(prefix + name, ["--help"], work, shell=shell, cwd=cwd)
        assert "Usage: sh scripts/" in result.stdout, name
        assert "Illegal option" not in result.stderr and "not found" not in result.stderr, name


@needs_dash
def test_help_and_usage_errors(task_data):
    """Issue 11 item 16: every script prints its usage with -h (exit 0); a wrong argument count exits 2."""
    for name in ALL_SCRIPTS + ["../ascend310_infer/build.sh"]:
        out = run(os.path.join(SCRIPTS, name), ["-h"], task_data)
        assert out.stdout.strip() and not out.stderr, name
    for name in ("run_standalone_finetune.sh", "run_distribute_finetune.sh", "run_finetune_eval.sh", "export.sh",
                 "convert_finetune_datasets.sh", "run_standalone_pretrain.sh", "run_infer_310.sh"):
        out = run(os.path.join(SCRIPTS, name), [], task_data, expect=2)
        assert out.stderr.strip(), name


@needs_dash
def test_unknown_task_is_refused_in_one_line(task_data):
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["sst2"], task_data, expect=None)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1
    assert lines[0].startswith("error: unknown task 'sst2': choose one of chnsenticorp, xnli, dbqa, msra_ner, drcd")


@needs_dash
def test_missing_weights_vocabulary_or_data_stop_up_front(task_data):
    """Issue 11 item 9: no quiet random base-size model; say what is missing and which commands provide it."""
    started = time.perf_counter()
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["msra_ner"], task_data, expect=1,
              EXTRA_ARGS="--epoch_num 1")
    assert time.perf_counter() - started < 10
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: no pre-trained weights: ") and str(task_data / "no pretrained" / "ernie.ckpt") in line
    assert "download_pretrained_models.sh" in line and "migrate_pretrained_models.sh" in line
    assert "--config" in line and "VOCAB_FILE" in line and not out.stdout
    out = run(os.path.join(SCRIPTS, "run_distribute_finetune.sh"), ["msrun", "msra_ner"], task_data, expect=1,
              EXTRA_ARGS="")
    assert "error: no pre-trained weights" in out.stderr
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["msra_ner"], task_data, expect=1,
              VOCAB_FILE=task_data / "missing vocab.txt")
    assert "error: vocabulary " + str(task_data / "missing vocab.txt") + " not found: set VOCAB_FILE" in out.stderr
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["xnli"], task_data, expect=1)
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: xnli train data {task_data / 'my data' / 'xnli' / 'train.tsv'} not found: set DATA_DIR to a folder in "
        "ERNIE's task_data layout ('sh scripts/download_datasets.sh finetune' writes ./data)")
    out = run(os.path.join(SCRIPTS, "run_standalone_finetune.sh"), ["chnsenticorp"], task_data, expect=1,
              DATASET_FORMAT="mindrecord", MINDRECORD_DIR=task_data / "mr")
    assert f"error: {task_data / 'mr' / 'chnsenticorp_train.mindrecord'} not found: write it with 'sh scripts/" \
           "convert_finetune_datasets.sh" in out.stderr


@needs_dash
def test_migrated_weights_and_paths_with_spaces_are_passed_as_single_arguments(task_data, spaced_repo):
    """Issue 13 item 12: pretrained_args was unquoted and split paths with spaces."""
    pretrained = task_data / "pre trained"
    pretrained.mkdir()
    (pretrained / "ernie.ckpt").write_bytes(b"")
    shutil.copy(VOCAB, pretrained / "vocab.txt")
    for script, args in (("run_standalone_finetune.sh", ["xnli"]), ("run_distribute_finetune.sh", ["msrun", "xnli"])):
        out = run(spaced_repo / "scripts" / script, args, task_data, DRY_RUN=1, PRETRAINED_DIR=pretrained,
                  VOCAB_FILE=None, EXTRA_ARGS="")
        argv = dry_commands(out)[-1]
        assert flag(argv, "--load_pretrain_checkpoint_path") == str(pretrained / "ernie.ckpt")
        assert flag(argv, "--vocab_file_path") == str(pretrained / "vocab.txt")
        assert flag(argv, "--task_data_dir") == str(task_data / "my data")
    out = run(spaced_repo / "scripts" / "export.sh", [task_data / "save dir", task_data / "ex port", "xnli"], task_data,
              DRY_RUN=1)
    [argv] = dry_commands(out)
    assert argv[1] == str(spaced_repo / "export.py") and flag(argv, "--file_name") == str(task_data / "ex port" / "xnli")


@needs_dash
def test_relative_paths_are_taken_from_the_calling_folder(task_data):
    out = run(os.path.join(SCRIPTS, "run_finetune_eval.sh"), ["chnsenticorp", "save dir/x.ckpt"], task_data,
              DRY_RUN=1, DATA_DIR="my data")
    [argv] = dry_commands(out)
    assert flag(argv, "--load_finetune_checkpoint_path") == str(task_data / "save dir" / "x.ckpt")
    assert flag(argv, "--task_data_dir") == str(task_data / "my data")


@needs_dash
def test_eval_script_passes_only_what_the_user_set(task_data):
    """Issue 11 item 4: max_seq_len, labels and CRF come from the trained folder's task.json, not script defaults."""
    for task in ("cmrc", "msra_ner", "xnli"):
        out = run(os.path.join(SCRIPTS, "run_finetune_eval.sh"), [task], task_data, DRY_RUN=1, EXTRA_ARGS="")
        [argv] = dry_commands(out)
        for model_flag in ("--max_seq_len", "--use_crf", "--label2id_file_path", "--num_class", "--config",
                           "--max_query_len", "--doc_stride"):
            assert model_flag not in argv, (task, model_flag)
        assert flag(argv, "--eval_split") == ("dev" if task == "cmrc" else "test")
    out = run(os.path.join(SCRIPTS, "run_finetune_eval.sh"), ["msra_ner"], task_data, DRY_RUN=1,
              EXTRA_ARGS="--max_seq_len 64")
    assert flag(dry_commands(out)[0], "--max_seq_len") == "64"


@needs_dash
def test_seed_script_names_forward_to_the_one_implementation(task_data):
    """Issue 12 item 6: the seed's names run the same script with the same arguments."""
    pairs = (("convert_pretraining_datasets.sh", "convert_pretrain_datasets.sh", [task_data, task_data / "out"]),
             ("run_standalone_pretrain_ascend.sh", "run_standalone_pretrain.sh", ["0", "1", task_data]),
             ("run_distributed_pretrain_ascend.sh", "run_distributed_pretrain.sh", [task_data, "msrun"]))
    for seed_name, ours, args in pairs:
        seed = run(os.path.join(SCRIPTS, seed_name), args, task_data, DRY_RUN=1, CONFIG="tiny")
        assert dry_commands(seed) == dry_commands(run(os.path.join(SCRIPTS, ours), args, task_data, DRY_RUN=1,
                                                      CONFIG="tiny"))
        assert dry_commands(seed)
        assert run(os.path.join(SCRIPTS, seed_name), ["-h"], task_data).stdout.startswith(
            open(os.path.join(SCRIPTS, ours), encoding="utf-8").readlines()[1][2:].rstrip())


@needs_dash
def test_migrate_after_a_failed_download_names_the_folder_and_takes_a_config(tmp_path):
    """Issue 11 item 10: an empty download folder is named as such; --config can be passed (argument or env)."""
    empty = tmp_path / "dl dir"
    empty.mkdir()
    out = run(os.path.join(SCRIPTS, "migrate_pretrained_models.sh"), [empty], tmp_path, expect=1)
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {empty} is empty: the download failed or did not run")
    assert "download_pretrained_models.sh" in line
    (empty / "ERNIE_stable-1.0.1.tar.gz.part").write_bytes(b"12")
    out = run(os.path.join(SCRIPTS, "migrate_pretrained_models.sh"), [empty], tmp_path, expect=1)
    assert "incomplete download (ERNIE_stable-1.0.1.tar.gz.part)" in out.stderr and str(empty) in out.stderr
    release = tmp_path / "release"
    (release / "params").mkdir(parents=True)
    out = run(os.path.join(SCRIPTS, "migrate_pretrained_models.sh"), [release], tmp_path, expect=1)
    assert f"no ernie_config.json in {release}" in out.stderr and "ERNIE_CONFIG" in out.stderr
    config = tmp_path / "my config.json"
    for args, env in (([release, "out.ckpt", "paddle_static", "my config.json"], {}),
                      ([release, "out.ckpt"], {"ERNIE_CONFIG": config})):
        argv = dry_commands(run(os.path.join(SCRIPTS, "migrate_pretrained_models.sh"), args, tmp_path, DRY_RUN=1,
                                **env))[0]
        assert flag(argv, "--config") == str(config) and flag(argv, "--input") == str(release)
        assert flag(argv, "--output") == str(tmp_path / "out.ckpt")


def test_entry_script_follows_the_task_kind_and_the_shell_keeps_no_task_table():
    """One registry in Python (src/tasks/registry.py): the entry script each run_ernie_*.py declares by its kind."""
    import re

    from src.tasks.registry import TASKS, entry_script
    for task, spec in TASKS.items():
        source = open(os.path.join(REPO, entry_script(task)), encoding="utf-8").read()
        assert re.search(r'main\("(\w+)"\)', source)[1] == spec.kind, task
    with pytest.raises(ValueError, match="unknown task 'sst2': choose one of chnsenticorp, xnli, dbqa, msra_ner"):
        entry_script("sst2")
    task_case = re.compile(r"^\s*(" + "|".join(TASKS) + r")\s*[|)]", re.M)
    for name in os.listdir(SCRIPTS):
        assert not task_case.search(open(os.path.join(SCRIPTS, name), encoding="utf-8").read()), name
