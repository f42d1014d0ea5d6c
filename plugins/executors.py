"""Built-in executors: serial (default), process (local cores) and ray (clusters, optional extra)."""

from fusebench import ExecutorSpec, ProcessExecutor, RayExecutor, SerialExecutor, hookimpl


@hookimpl
def register_executors(register):
    register(ExecutorSpec(
        name="serial", factory=SerialExecutor,
        description="One run after another in the driver process (default).",
    ))
    register(ExecutorSpec(
        name="process", factory=ProcessExecutor,
        description="Spawned worker processes, one run per core (--workers N, default cores/threads).",
    ))
    register(ExecutorSpec(
        name="ray", factory=RayExecutor,
        description="Ray tasks with per-run CPU/GPU requests (--address auto|HOST:PORT, --gpus); "
                    "needs the extra fusebench[ray].",
    ))
