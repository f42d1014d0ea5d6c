"""A suite of runs: planning, the single run, executors, claims, estimates, tuning, run_benchmark()."""
