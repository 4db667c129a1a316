"""dvc.yaml declares everything each stage runs, so that `dvc status` cannot call stale results up to date.

For every stage (``foreach``/``matrix`` resolved by DVC itself) the test parses its command
(``kedro run --pipelines=X --namespaces=... --tags=...``) with Kedro's own ``run`` command, builds
that pipeline from the project's registry and filters it as ``kedro run`` does. The code the
stage runs is then the import closure, within the ``superres`` package, of:

- the module of every node function (``functools.partial`` unwrapped) and the package that
  wires it (a module's parent packages are imported with it);
- the custom dataset classes (``type: superres....``) of the catalog entries the nodes use;
- the project settings and hooks (``superres.settings``), and ``superres.cli`` when there is one;
- the registry ``pipeline_registry.py`` itself: it decides which nodes ``--pipelines=X`` holds. Its
  imports are not followed: it imports every pipeline, and those of other stages are not this
  stage's code.

The closure is static (``ast``): ``import superres.x``, ``from superres.x import y`` (``y`` a
submodule or not), relative imports and imports inside functions, and string literals naming a
module of the package (``importlib.import_module("superres.x")``,
``importlib.resources.files("superres.reference")``). A package in the closure brings its data files
(``reference/*.csv``). To that come the configuration Kedro reads (the catalog and globals files of
the base and run environments, ``conf/logging.yml``) and ``requirements.lock``: every stage's
numbers depend on the library versions (torch, NumPy, Pillow, scikit-image's sample photographs,
pandas, SciPy...). A dependency folder covers every file under it.
"""

from __future__ import annotations

import ast
import collections
import functools
import importlib
import inspect
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from dvc.repo import Repo
from kedro.pipeline import Pipeline

SRC = ROOT / "src"
PACKAGE = "superres"
CONF = ROOT / "conf"
LOCK = ROOT / "requirements.lock"
CONFIG_SUFFIXES = {".yml", ".yaml", ".json"}


# --- static import closure of the package -------------------------------------------------------


def module_file(src: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``src`` (a package's ``__init__.py``), or None."""
    base = src.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(src: Path, path: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(src: Path, path: Path, package: str) -> set[str]:
    """Every dotted name of ``package`` that the module at ``path`` may import, anywhere in it.
    ``from a import b`` yields ``a`` and ``a.b`` (b may be a submodule); names that are no
    module are dropped later."""
    name = module_name(src, path)
    current = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = current.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)  # importlib.import_module("superres.x"), resources.files("superres.y")
    return {n for n in found if n == package or n.startswith(package + ".")}


def parent_packages(name: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``: importing a module runs its parent packages first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def as_module(src: Path, name: str) -> str | None:
    """The module that ``name`` is or lies in: ``superres.models.REGISTRY`` -> ``superres.models``."""
    while name and module_file(src, name) is None:
        name = name.rpartition(".")[0]
    return name or None


def package_data(init: Path) -> list[Path]:
    return sorted(p for p in init.parent.iterdir()
                  if p.is_file() and p.suffix not in {".py", ".pyc"} and not p.name.startswith("."))


def import_closure(src: Path, roots: dict[str, str], package: str = PACKAGE) -> dict[Path, str]:
    """The files the modules ``roots`` (name -> why) import within ``package``, transitively,
    each with the reason it is there (the root's reason, its importer, or the module it is the
    package of). Breadth first, so each reason is a shortest chain."""
    why: dict[Path, str] = {}
    queue: collections.deque[tuple[str, str]] = collections.deque()

    def visit(name: str | None, reason: str) -> None:
        if name is not None:
            queue.append((name, reason))
            queue.extend((parent, f"package of {name}") for parent in parent_packages(name))

    for root, reason in roots.items():
        visit(as_module(src, root), reason)
    while queue:
        name, reason = queue.popleft()
        path = module_file(src, name)
        if path in why:
            continue
        why[path] = reason
        importer = f"imported by {path.relative_to(src.parent).as_posix()}"
        for found in sorted(imported_names(src, path, package)):
            visit(as_module(src, found), importer)
        if path.name == "__init__.py":
            for data in package_data(path):
                why.setdefault(data, f"data of the package {name}")
    return why


# --- what a stage runs -----------------------------------------------------------------------------


def kedro_run_command():
    """The ``run`` command Kedro would use: the project's own CLI's when it defines one."""
    try:
        project_cli = importlib.import_module(f"{PACKAGE}.cli")
    except ModuleNotFoundError as exc:
        if exc.name != f"{PACKAGE}.cli":
            raise
        project_cli = None
    group = getattr(project_cli, "cli", None)
    command = getattr(group, "commands", {}).get("run")
    if command is None:
        from kedro.framework.cli.project import run as command
    return command


def kedro_run_options(cmd: str) -> dict | None:
    """The options of a ``kedro run ...`` command line, parsed by Kedro's own command; None when the
    line is something else."""
    words = shlex.split(cmd)
    if words[:1] in (["python"], ["python3"]) and words[1:3] == ["-m", "kedro"]:
        words = words[2:]
    if words[:2] != ["kedro", "run"]:
        return None
    with kedro_run_command().make_context("run", words[2:]) as ctx:
        return dict(ctx.params)


def function_modules(pipeline: Pipeline) -> dict[str, str]:
    modules: dict[str, str] = {}
    for node in pipeline.nodes:
        func = node.func
        while True:
            func = inspect.unwrap(func)
            if not isinstance(func, functools.partial):
                break
            func = func.func
        modules.setdefault(func.__module__, f"function of node {node.name}")
    return modules


def dataset_types(config: dict) -> Iterable[str]:
    """The class paths in a catalog entry: its ``type`` and a nested ``dataset`` (partitions)."""
    if isinstance(config.get("type"), str):
        yield config["type"]
    nested = config.get("dataset")
    if isinstance(nested, str):
        yield nested
    elif isinstance(nested, dict):
        yield from dataset_types(nested)


@dataclass
class Kedro:
    """The project as ``kedro run`` sees it."""

    pipelines: dict[str, Pipeline]
    config_loader: object
    base_env: str
    default_run_env: str

    def catalog_resolver(self):
        from kedro.io.catalog_config_resolver import CatalogConfigResolver

        return CatalogConfigResolver(self.config_loader["catalog"], default_runtime_patterns={})

    def conf_files(self, env: str | None) -> dict[Path, str]:
        """The configuration files a run reads: catalog and globals of the base and run
        environments (the parameters are params.yaml, a DVC params file), and the logging file."""
        files: dict[Path, str] = {}
        for env_name in dict.fromkeys([self.base_env, env or self.default_run_env]):
            folder = CONF / env_name
            for key in ("catalog", "globals"):
                for pattern in self.config_loader.config_patterns[key]:
                    for path in folder.glob(pattern):
                        if path.is_file() and path.suffix in CONFIG_SUFFIXES:
                            files[path] = f"Kedro {key} configuration"
        for path in sorted(CONF.glob("logging.*")):
            if path.suffix in CONFIG_SUFFIXES:
                files[path] = "Kedro logging configuration"
                break
        return files


@pytest.fixture(scope="module")
def kedro() -> Kedro:
    """The project bootstrapped as ``kedro run`` does it, from the project root (the registry reads
    ``seeds`` from the project's params.yaml)."""
    from kedro.framework.project import pipelines, settings
    from kedro.framework.startup import bootstrap_project

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        bootstrap_project(ROOT)
        registered = dict(pipelines.items())
        args = dict(settings.CONFIG_LOADER_ARGS)
        loader = settings.CONFIG_LOADER_CLASS(conf_source=str(ROOT / settings.CONF_SOURCE), **args)
    return Kedro(registered, loader, args.get("base_env", "base"), args.get("default_run_env", "local"))


def required_files(kedro: Kedro, options: dict) -> dict[Path, str]:
    """Every file a ``kedro run`` with these options runs or reads, each with why."""
    names = options.get("pipelines") or ([options["pipeline"]] if options.get("pipeline") else ["__default__"])
    pipeline = sum((kedro.pipelines[name] for name in names), Pipeline([]))
    pipeline = pipeline.filter(
        tags=tuple(options.get("tags") or ()),
        from_nodes=options.get("from_nodes"),
        to_nodes=options.get("to_nodes"),
        node_names=tuple(options.get("node_names") or ()),
        from_inputs=options.get("from_inputs"),
        to_outputs=options.get("to_outputs"),
        node_namespaces=options.get("namespaces"),
    )
    roots = function_modules(pipeline)
    resolver = kedro.catalog_resolver()
    for dataset in sorted(pipeline.datasets()):
        if dataset.startswith("params:") or dataset == "parameters":
            continue
        for cls in dataset_types(resolver.resolve_pattern(dataset)):
            if cls.startswith(PACKAGE + "."):
                roots.setdefault(cls.rpartition(".")[0], f"dataset type of catalog entry {dataset}")
    roots[f"{PACKAGE}.settings"] = "Kedro settings and hooks"
    if module_file(SRC, f"{PACKAGE}.cli"):
        roots[f"{PACKAGE}.cli"] = "the project's Kedro CLI"
    files = import_closure(SRC, roots)
    registry = module_file(SRC, f"{PACKAGE}.pipeline_registry")
    if registry is not None:
        files.setdefault(registry, "the pipeline registry")
    files.update(kedro.conf_files(options.get("env")))
    files[LOCK] = "the pinned environment (library versions)"
    return files


def dvc_stages() -> list[tuple[str, list[str], set[Path]]]:
    """(name, commands, dependency paths) of every stage, as DVC resolves dvc.yaml."""
    with Repo(str(ROOT)) as repo:
        return [(stage.addressing, stage.cmd if isinstance(stage.cmd, list) else [stage.cmd],
                 {Path(dep.fs_path).resolve() for dep in stage.deps})
                for stage in repo.index.stages if stage.cmd]


def covered(path: Path, deps: set[Path]) -> bool:
    return any(path == dep or dep in path.parents for dep in deps)


def missing_deps(kedro: Kedro, stages: list[tuple[str, list[str], set[Path]]]) -> list[str]:
    """One readable line per problem: a stage this test cannot analyse, or a file it runs that
    its deps miss. Instances of a foreach/matrix stage that miss the same files share a line."""
    problems: list[str] = []
    misses: dict[tuple[str, tuple[Path, ...]], list[tuple[str, dict[Path, str]]]] = {}
    for name, commands, deps in stages:
        files: dict[Path, str] = {}
        for cmd in commands:
            options = kedro_run_options(cmd)
            if options is None:
                problems.append(f"stage {name}: cannot tell what `{cmd}` runs (only `kedro run ...` is analysed); "
                                f"teach tests/test_dvc_graph.py what it runs")
                continue
            files.update(required_files(kedro, options))
        lacking = {path: why for path, why in sorted(files.items()) if not covered(path.resolve(), deps)}
        if lacking:
            misses.setdefault((name.partition("@")[0], tuple(lacking)), []).append((name, lacking))
    for group in misses.values():
        names = [name for name, _ in group]
        lines = [f"    {path.relative_to(ROOT).as_posix()}  ({why})" for path, why in group[0][1].items()]
        subject = f"{', '.join(names)} ({len(names)} stages) run" if len(names) > 1 else f"{names[0]} runs"
        problems.append(f"{subject} what its deps miss:\n" + "\n".join(lines))
    return problems


# --- tests -------------------------------------------------------------------------------------------


def test_every_stage_depends_on_the_code_and_configuration_it_runs(kedro):
    stages = dvc_stages()
    assert stages, "dvc.yaml has no stage"
    problems = missing_deps(kedro, stages)
    if problems:
        pytest.fail("dvc.yaml: add these to the deps of the stage (a folder covers what is under it):\n"
                    + "\n".join(problems), pytrace=False)


def test_a_dependency_left_out_is_named_with_its_stage(kedro):
    """The check above can fail: take the models folder and the lock out of one stage and the
    message names that stage, the files and why they are needed."""
    stages = dvc_stages()
    name, commands, deps = next(s for s in stages if s[0].startswith("train@"))
    models = (SRC / PACKAGE / "models").resolve()
    pruned = {d for d in deps if d != models and models not in d.parents and d != LOCK.resolve()}
    problems = missing_deps(kedro, [(name, commands, pruned)])
    assert len(problems) == 1 and problems[0].startswith(f"{name} runs what its deps miss:\n"), problems
    imported_when_importing = {"matconvnet.py", "official.py", "safe_pickle.py"}  # not by a training run
    for module in sorted(m for m in models.glob("*.py") if m.name not in imported_when_importing):
        line = rf"^    src/superres/models/{re.escape(module.name)}  \((imported by|package of) \S+\)$"
        assert re.search(line, problems[0], re.M), module.name
    assert "\n    requirements.lock  (the pinned environment (library versions))" in problems[0]
    assert "src/superres/training" not in problems[0]  # still declared


def test_a_command_that_is_not_a_kedro_run_is_reported(kedro):
    problems = missing_deps(kedro, [("custom", ["python scripts/make_stuff.py"], set())])
    assert problems == ["stage custom: cannot tell what `python scripts/make_stuff.py` runs (only `kedro run ...` "
                        "is analysed); teach tests/test_dvc_graph.py what it runs"]


def test_kedro_run_options_are_parsed_as_kedro_does():
    options = kedro_run_options("kedro run --pipelines=edsr --namespaces=edsr.seed0 --tags=train,evaluate")
    assert options["pipelines"] == ["edsr"]
    assert options["namespaces"] == ["edsr.seed0"]
    assert options["tags"] == ["train", "evaluate"]
    assert kedro_run_options("dvc repro") is None


def test_import_closure_follows_every_kind_of_import(tmp_path):
    """Function-level, relative, ``from package import submodule``, string-named modules, parent
    packages and package data are followed; other packages and names that are no module are not."""
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "import os\nfrom pkg.b import helper\n\ndef f():\n    from . import c\n    import pkg.sub.d\n",
        "pkg/b.py": "from .e import CONSTANT\n\ndef helper():\n    return CONSTANT\n",
        "pkg/c.py": "import importlib\nMOD = importlib.import_module('pkg.g')\n",
        "pkg/e.py": "CONSTANT = 1\n",
        "pkg/g.py": "",
        "pkg/unused.py": "import pkg.a\n",
        "pkg/sub/__init__.py": "from ..data import TABLE\n",
        "pkg/sub/d.py": "",
        "pkg/data/__init__.py": "TABLE = 'table.csv'\n",
        "pkg/data/table.csv": "x\n1\n",
    }
    src = tmp_path / "src"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    closure = import_closure(src, {"pkg.a": "root"}, package="pkg")
    assert sorted(p.relative_to(src).as_posix() for p in closure) == sorted(set(files) - {"pkg/unused.py"})
    assert closure[src / "pkg/a.py"] == "root"
    assert closure[src / "pkg/e.py"] == "imported by src/pkg/b.py"
    assert closure[src / "pkg/data/table.csv"] == "data of the package pkg.data"
