"""Which package may import which, read from the source with `ast` (nothing is imported or run).

    semclip_train  ->  triplegen (its library, not its commands)
    semclip_train  ->  semclip_core
    semclip_train.evaluation  -/->  semclip_train.training   (training -> evaluation only inside functions)
    triplegen      ->  semclip_core           (an arrow: "may import")
    triplegen.rules   -/->  the run (triplegen.orchestration), backends, commands   (may not import)
    triplegen.io      -/->  the run, backends, commands

`semclip_core` is what both products share, so it imports neither of them; `triplegen` installs and
runs without torch and knows nothing of training; `semclip_train` may use triplegen's library but not
its commands; the rules grammar (`triplegen.rules`) does not know how a run is executed, nor do the
file readers and writers (`triplegen.io`, which the run and `semclip_train` both use). And no two
modules import each other at module level, directly or round a loop: an import cycle works or breaks
depending on which module is imported first. In `semclip_train`, evaluation knows nothing of training
(both use the model and the triples reader at the package's top), and training runs evaluations during
a run (`--eval`) by importing them inside the function that does it, so `semclip-train` loads no
benchmark code it does not use.

Each rule is also run against a small synthetic source that breaks it, so a rule that could never
fail (a typo in a package name, an import form the parser misses) shows up here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = {"semclip_core": REPO / "semclip_core", "triplegen": REPO / "triplegen",
                   "semclip_train": REPO / "semclip_train", "triplegen.prompts": REPO / "prompts"}


@dataclass(frozen=True)
class Import:
    target: str  # the module imported, as written (`from a.b import c` is `a.b.c`, see `resolve`)
    line: int
    module_level: bool  # runs when the importing module is imported (not in a function, not TYPE_CHECKING)


@dataclass(frozen=True)
class Module:
    name: str
    is_package: bool
    imports: tuple[Import, ...]


def read_module(name: str, source: str, is_package: bool = False) -> Module:
    """The imports of one module's source, absolute, each marked whether it runs at import time."""
    found: list[Import] = []
    package = name if is_package else name.rpartition(".")[0]

    def visit(nodes, module_level: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(Import(alias.name, node.lineno, module_level) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module, node.level, package)
                found.extend(Import(f"{base}.{alias.name}", node.lineno, module_level) for alias in node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(ast.iter_child_nodes(node), False)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, False)
                visit(node.orelse, module_level)
            else:  # a class body, `try`, `if`, `with` run at import time
                visit(ast.iter_child_nodes(node), module_level)

    visit(ast.parse(source).body, True)
    return Module(name, is_package, tuple(found))


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{module}" if module else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def project_modules() -> dict[str, Module]:
    modules = {}
    for package, folder in PACKAGE_FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = read_module(name, path.read_text(encoding="utf-8"), is_package)
    return modules


def resolve(target: str, known: set[str]) -> str:
    """`a.b.c` is the module `a.b.c` when there is one, else the name `c` of the module `a.b`."""
    return target if target in known or "." not in target else target.rpartition(".")[0]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(modules: dict[str, Module], importer: str, forbidden: tuple[str, ...],
               module_level_only: bool = False) -> list[str]:
    """`module:line imports target` for every import in `importer`'s modules of a forbidden package."""
    return [f"{module.name}:{imp.line} imports {imp.target}"
            for module in modules.values() if within(module.name, importer)
            for imp in module.imports
            if (imp.module_level or not module_level_only) and any(within(imp.target, f) for f in forbidden)]


def import_cycle(modules: dict[str, Module]) -> list[str] | None:
    """One cycle of module-level imports between the given modules (as a path a -> b -> a), or None."""
    known = set(modules)
    graph = {name: sorted({resolve(imp.target, known) for imp in module.imports if imp.module_level} & known - {name})
             for name, module in modules.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in graph[name]:
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


RUN_MODULES = ("triplegen.orchestration", "triplegen.backends", "triplegen.commands", "triplegen.cli")

RULES = {  # (importer, forbidden packages, module level only)
    "semclip_core shares, so it imports neither product nor torch":
        ("semclip_core", ("triplegen", "semclip_train", "torch"), False),
    "triplegen knows nothing of training": ("triplegen", ("semclip_train",), False),
    "triplegen installs without torch (imported only inside the functions that need it)":
        ("triplegen", ("torch",), True),
    "semclip_train uses triplegen's library, not its commands":
        ("semclip_train", ("triplegen.commands", "triplegen.cli"), False),
    "the rules grammar knows nothing of how a run is executed": ("triplegen.rules", RUN_MODULES, False),
    "triplegen.io reads and writes files, knowing nothing of how a run is executed":
        ("triplegen.io", RUN_MODULES, False),
    "evaluation knows nothing of training": ("semclip_train.evaluation", ("semclip_train.training",), False),
    "training imports evaluation only inside the functions that run it":
        ("semclip_train.training", ("semclip_train.evaluation",), True),
}


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return project_modules()


def test_every_module_of_the_three_packages_is_read(modules):
    assert {"semclip_core.files", "semclip_core.cli_errors", "triplegen.orchestration.run", "triplegen.backends.openai",
            "triplegen.commands.generate", "triplegen.rules.negation", "semclip_train.training.cli",
            "semclip_train.training.trainer", "semclip_train.evaluation.evaluate"} <= set(modules)
    deferred = [imp for name, module in modules.items() if within(name, "triplegen") for imp in module.imports
                if within(imp.target, "torch") and not imp.module_level]
    assert deferred, "triplegen's optional features import torch inside functions; none was found"


@pytest.mark.parametrize("rule", RULES)
def test_layering(modules, rule):
    importer, forbidden, module_level_only = RULES[rule]
    assert violations(modules, importer, forbidden, module_level_only) == [], rule


def test_no_import_cycle(modules):
    assert import_cycle(modules) is None


# each rule, against a source that breaks it
BROKEN = {
    "evaluation knows nothing of training": [
        ("semclip_train.evaluation.eval_data", "def f():\n    from semclip_train.training.data import check_images"),
        ("semclip_train.evaluation.plots", "if TYPE_CHECKING:\n    from ..training import config"),
    ],
    "training imports evaluation only inside the functions that run it": [
        ("semclip_train.training.trainer", "from semclip_train.evaluation.evaluate import EvalSpec"),
        ("semclip_train.training.config", "from ..evaluation import metrics"),
    ],
    "semclip_core shares, so it imports neither product nor torch": [
        ("semclip_core.files", "from triplegen.errors import UserError"),
        ("semclip_core.progress", "def f():\n    import semclip_train.training.trainer"),
        ("semclip_core.parquet", "def f():\n    from torch import nn"),
    ],
    "triplegen knows nothing of training": [("triplegen.io.viewer", "def f():\n    from semclip_train.training import data")],
    "triplegen installs without torch (imported only inside the functions that need it)": [
        ("triplegen.checks.blind", "import torch.nn"),
        ("triplegen.checks.blind", "try:\n    import torch\nexcept ImportError:\n    torch = None"),
        ("triplegen.checks.blind", "class A:\n    import torch"),
    ],
    "semclip_train uses triplegen's library, not its commands": [
        ("semclip_train.training.cli", "from triplegen.commands.entry import Command"),
        ("semclip_train.training.cli", "def f():\n    from triplegen.cli import app"),
        ("semclip_train.evaluation.eval_cli", "from triplegen import cli"),
        ("semclip_train.evaluation.eval_cli", "import triplegen.commands.generate as generate"),
    ],
    "the rules grammar knows nothing of how a run is executed": [
        ("triplegen.rules.negation", "from triplegen.backends.base import Backend"),
        ("triplegen.rules.absent", "def f():\n    from triplegen.orchestration import pipeline"),
        ("triplegen.rules.paraphrase", "from ..orchestration.executors import local"),
        ("triplegen.rules", "import triplegen.orchestration.run"),
        ("triplegen.rules.lexicon", "if TYPE_CHECKING:\n    from triplegen.commands.generate import generate"),
    ],
    "triplegen.io reads and writes files, knowing nothing of how a run is executed": [
        ("triplegen.io.layout", "from triplegen.orchestration.resume import WorkFolder"),
        ("triplegen.io.readers", "def f():\n    from triplegen.backends import make_backend"),
        ("triplegen.io.card", "from ..orchestration import records"),
        ("triplegen.io", "import triplegen.commands.view"),
    ],
}


@pytest.mark.parametrize("rule", RULES)
def test_each_layering_rule_catches_a_source_that_breaks_it(rule):
    importer, forbidden, module_level_only = RULES[rule]
    for name, source in BROKEN[rule]:
        broken = {name: read_module(name, source)}
        assert violations(broken, importer, forbidden, module_level_only), (rule, source)


def test_the_torch_rule_allows_torch_inside_functions_and_for_type_checkers():
    for source in ("def f():\n    import torch", "if TYPE_CHECKING:\n    import torch",
                   "if typing.TYPE_CHECKING:\n    from torch import Tensor"):
        assert violations({"triplegen.x": read_module("triplegen.x", source)}, "triplegen", ("torch",), True) == []


def test_a_cycle_of_module_level_imports_is_found_and_one_inside_a_function_is_not():
    loop = {"p.a": read_module("p.a", "from p.b import x"),
            "p.b": read_module("p.b", "import p.c"),
            "p.c": read_module("p.c", "from p import a"),
            "p": read_module("p", "", is_package=True)}
    assert import_cycle(loop) == ["p.a", "p.b", "p.c", "p.a"]
    relative = {"p.a": read_module("p.a", "from .b import x"), "p.b": read_module("p.b", "from . import a")}
    assert import_cycle(relative) == ["p.a", "p.b", "p.a"]
    deferred = {**loop, "p.c": read_module("p.c", "def f():\n    from p import a")}
    assert import_cycle(deferred) is None
