"""dvc.yaml's `deps` follow the imports: every wmlib file a stage's code can import is listed (so changing it
makes the stage stale), and every wmlib file listed is imported (so nothing else does).

A stage's code is what its commands run: the notebook papermill executes, or the module `python -m` runs. Its
imports are followed statically through wmlib (every `import` statement, at module level or inside functions,
and the `__init__.py` of every package on the way), which over-approximates what one run executes.
"""
import ast
import json
import re

import pytest
import yaml

from wmlib.experiments.mujoco.job import LEARNERS
from wmlib.paths import ROOT

# Left out of every stage on purpose: figures only, so a figure tweak does not retrain anything
# (rerun one stage with `dvc repro -f -s STAGE`).
UNTRACKED = {"wmlib/plotting.py"}


def module_file(module: str) -> str | None:
    """'wmlib.a.b' -> 'wmlib/a/b.py' or 'wmlib/a/b/__init__.py' (relative to the repository), None if neither."""
    base = module.replace(".", "/")
    for rel in (f"{base}.py", f"{base}/__init__.py"):
        if (ROOT / rel).is_file():
            return rel
    return None


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """The wmlib modules `source` (the code of `module`) imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}")}
    return {m for m in found if m == "wmlib" or m.startswith("wmlib.")}


def closure(modules: set[str]) -> set[str]:
    """Every wmlib file that importing `modules` can execute: the modules, what they import, their packages."""
    todo, files = list(modules), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            rel = module_file(".".join(parts[:i]))
            if rel is None:
                raise AssertionError(f"import of {name}: no file for {'.'.join(parts[:i])}")
            if rel not in files:
                files.add(rel)
                mod = ".".join(parts[:i])
                todo += imported_modules((ROOT / rel).read_text(), mod, rel.endswith("__init__.py"))
    return files


def notebook_imports(path) -> set[str]:
    cells = json.loads((ROOT / path).read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    return imported_modules(code, "__notebook__", False)


def stage_code(cmds) -> set[str]:
    """The wmlib modules a stage's commands run: notebooks executed by papermill, `python -m wmlib....`."""
    modules = set()
    for cmd in [cmds] if isinstance(cmds, str) else cmds:
        for nb in re.findall(r"papermill .*?(notebooks/\S+\.ipynb)", cmd):
            modules |= notebook_imports(nb)
        modules |= set(re.findall(r"python -m (wmlib[\w.]*)", cmd))
        if "python -m wmlib.experiments.mujoco.job" in cmd:  # the job imports its learner's module by name
            modules |= {LEARNERS[learner][0] for learner in re.findall(r"--learner (\w+)", cmd)}
    return modules


def stages() -> dict[str, dict]:
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s.get("do", s) for name, s in raw.items()}


def listed(deps, path: str) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


STAGES = stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_every_wmlib_file_it_imports(name):
    stage = STAGES[name]
    code = stage_code(stage["cmd"])
    deps = [d for d in stage.get("deps", []) if d.startswith("wmlib")]
    missing = sorted(f for f in closure(code) - UNTRACKED if not listed(deps, f))
    assert not missing, f"dvc.yaml stage {name}: imports {missing}, not in its deps"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_only_wmlib_files_it_imports(name):
    stage = STAGES[name]
    files = closure(stage_code(stage["cmd"]))
    deps = [d for d in stage.get("deps", []) if d.startswith("wmlib")]
    unused = [d for d in deps if not any(listed([d], f) for f in files)]
    assert not unused, f"dvc.yaml stage {name}: deps {unused} are never imported by its code"


def test_the_analysis_follows_relative_imports_functions_and_packages():
    """The checker itself: a module's lazy import inside a function, a relative import and the packages on the way
    are all found (the Doom benchmark imports the Doom controller, which imports V's module)."""
    files = closure({"wmlib.benchmarks.doom"})
    assert {"wmlib/__init__.py", "wmlib/experiments/__init__.py", "wmlib/experiments/doom/__init__.py",
            "wmlib/experiments/doom/controller.py", "wmlib/models/vae.py", "wmlib/envs/takecover.py"} <= files
    assert "wmlib/experiments/carracing/controller.py" not in files
