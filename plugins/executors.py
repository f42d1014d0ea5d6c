"""Built-in executors."""

from benchmark_core import ExecutorSpec, hookimpl
from benchmark_core.executors import SerialExecutor


@hookimpl
def register_executors(register):
    register(ExecutorSpec(
        name="serial", factory=SerialExecutor,
        description="One run after another in the driver process (default).",
    ))
