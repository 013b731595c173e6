"""The house rules, checked on the source: which layer may import which, no import cycle (lazy imports included),
no switch on the task kind outside src/tasks/, library code that raises instead of exiting, small files, and a
training loop that reads top to bottom."""
import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(REPO, "src")

MODEL = {"src.ernie_model", "src.layers", "src.heads", "src.losses", "src.crf"}
TRAINING = {"src.trainer", "src.optimization", "src.dataset", "src.checkpoint", "src.runtime"}
DRIVERS = {"src.finetune", "src.pretrain"}
LEAVES = {"src.fileio", "src.tokenizer", "src.assessment_method", "src.progress"}  # helpers every layer may use


def module_name(path):
    relative = os.path.relpath(path, REPO)[:-len(".py")].replace(os.sep, ".")
    return relative[:-len(".__init__")] if relative.endswith(".__init__") else relative


def source_files():
    for root, _, names in os.walk(SRC):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def imports_of(path):
    """The ``src`` modules a file imports, anywhere in it (inside functions too)."""
    module = module_name(path)
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("src") and os.path.exists(os.path.join(REPO, *name.split(".")) + ".py"):
                found.add(name)
            elif name.startswith("src") and os.path.isdir(os.path.join(REPO, *name.split("."))):
                found.add(name)
    found.discard(module)
    return found


GRAPH = {module_name(path): imports_of(path) for path in source_files()}


def in_layer(module, prefix_or_set):
    if isinstance(prefix_or_set, set):
        return module in prefix_or_set
    return module == prefix_or_set or module.startswith(prefix_or_set + ".")


@pytest.mark.parametrize("layer, allowed", [
    (MODEL, lambda m: in_layer(m, MODEL) or in_layer(m, "src.kernels") or m == "src.fileio"),
    ("src.data", lambda m: in_layer(m, "src.data") or in_layer(m, LEAVES)),
    ("src.tasks", lambda m: not (in_layer(m, "src.serving") or in_layer(m, DRIVERS) or m == "src.cli")),
    (TRAINING, lambda m: not (in_layer(m, "src.data") or in_layer(m, "src.tasks") or in_layer(m, "src.serving")
                              or in_layer(m, DRIVERS) or m == "src.cli")),
    ("src.serving", lambda m: not (in_layer(m, DRIVERS) or m == "src.cli")),
    (LEAVES, lambda m: m == "src.fileio"),
])
def test_layers_import_only_downwards(layer, allowed):
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() if in_layer(module, layer)
                   for target in targets if target != "src" and not allowed(target))
    assert not wrong


def test_nothing_in_src_imports_a_driver_or_an_entry_script():
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() for target in targets
                   if in_layer(target, DRIVERS) and module not in DRIVERS)
    assert not wrong


def test_no_import_cycle():
    modules = {m for m in GRAPH if m != "src"}
    graph = {m: {t for t in GRAPH[m] if t in modules} for m in modules}
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module)


def test_tasks_never_use_argparse():
    for path in source_files():
        if module_name(path).startswith("src.tasks"):
            assert "argparse" not in open(path, encoding="utf-8").read(), path


def test_no_switch_on_the_task_kind_outside_src_tasks():
    pattern = re.compile(r"kind\s*(==|!=)")
    offenders = []
    for root in ("src", "bench", "scripts", "."):
        folder = os.path.join(REPO, root)
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or not name.endswith((".py", ".sh")):
                continue
            for lineno, line in enumerate(open(path, encoding="utf-8"), 1):
                if pattern.search(line):
                    offenders.append(f"{os.path.relpath(path, REPO)}:{lineno}")
    for path in source_files():
        if not module_name(path).startswith("src.tasks"):
            offenders += [f"{os.path.relpath(path, REPO)}:{n}" for n, line in enumerate(open(path, encoding="utf-8"), 1)
                          if pattern.search(line)]
    assert not sorted(set(offenders))


def test_library_code_raises_instead_of_exiting():
    """No ``raise SystemExit`` outside src/cli.py; ``sys.exit`` only in a CLI's ``main`` or ``__main__`` block."""
    offenders = []
    for path in source_files():
        tree = ast.parse(open(path, encoding="utf-8").read())
        cli_nodes = set()
        for node in ast.walk(tree):
            is_main_block = isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
            if is_main_block or (isinstance(node, ast.FunctionDef) and node.name in ("main", "_main")):
                cli_nodes |= {id(child) for child in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    getattr(node.exc.func, "id", "") == "SystemExit" and module_name(path) != "src.cli":
                offenders.append(f"{module_name(path)}:{node.lineno}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "exit" and \
                    getattr(node.func.value, "id", "") == "sys" and id(node) not in cli_nodes and \
                    module_name(path) != "src.cli":
                offenders.append(f"{module_name(path)}:{node.lineno}")
    assert not offenders


def test_files_stay_small_and_the_training_loop_reads_top_to_bottom():
    sizes = {module_name(path): sum(1 for _ in open(path, encoding="utf-8")) for path in source_files()}
    assert not {module: size for module, size in sizes.items() if size > 520}
    tree = ast.parse(open(os.path.join(SRC, "trainer.py"), encoding="utf-8").read())
    trainer = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Trainer")
    loop = next(node for node in trainer.body if isinstance(node, ast.FunctionDef) and node.name == "_train")
    assert loop.end_lineno - loop.lineno + 1 <= 60
