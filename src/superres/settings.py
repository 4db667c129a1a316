"""Kedro settings of the project."""

from superres.hooks import LineageHook, TrackingStoreHook

HOOKS = (TrackingStoreHook(), LineageHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # The parameters are the root params.yaml, the very file DVC reads (relative to conf/<env>/):
    # no second copy of any parameter.
    "config_patterns": {"parameters": ["../../params.yaml"]},
    # Kedro skips config whose resolved path has a component starting with a dot, and
    # `dvc exp run --temp` runs the project inside .dvc/tmp/exps/: do not skip those.
    "ignore_hidden": False,
}
