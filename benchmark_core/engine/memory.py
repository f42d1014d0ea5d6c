"""Peak memory of a block of work: what a run's record reports for training, data loading and
the whole run.  Its own module because the data stage (loading) and the training stage both
measure with it, and neither may import the other for it."""

from __future__ import annotations

from typing import Any

import torch


class PeakMemory:
    """Peak resident memory of this process during a block (Linux: resets VmHWM), or the
    CUDA allocator peak on GPU."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        else:
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
            except OSError:
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        self.peak_mb = int(line.split()[1]) / 1024
        except OSError:
            import resource

            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
