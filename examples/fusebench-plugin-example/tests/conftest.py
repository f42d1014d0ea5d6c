# FuseBench's fixtures for plugin authors: fusebench_env, fusebench_registry,
# fusebench_make_registry, fusebench_budget, fusebench_tracking_uri, fusebench_cli.
pytest_plugins = ["fusebench.testing"]
