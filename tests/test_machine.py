"""What a run records about its machine, and the switches that make it repeatable there."""

from __future__ import annotations

import subprocess
import sys

import torch

from superres.machine import describe_machine, machine_tags

PROBE = """
import sys, torch
from superres.machine import make_deterministic
make_deterministic(torch.device("cpu"), compiled={compiled})
print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
      "torch._dynamo" in sys.modules,
      sys.modules["torch._inductor.config"].deterministic if "torch._inductor.config" in sys.modules else None)
"""


def probe(compiled: bool) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(compiled=compiled)], capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


def test_an_eager_run_is_deterministic_without_loading_the_compiler():
    assert probe(compiled=False) == ["True", "True", "False", "None"]


def test_a_compiled_run_also_makes_inductor_deterministic():
    assert probe(compiled=True) == ["True", "True", "True", "True"]


def test_the_machine_record_names_the_cpu_the_threads_and_torch():
    record = describe_machine(torch.device("cpu"))
    assert record["cpu"] and record["threads"] == torch.get_num_threads() and record["torch"] == torch.__version__
    assert machine_tags(record)["superres.machine.device"] == "cpu"
