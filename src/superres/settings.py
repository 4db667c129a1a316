"""Kedro settings of the project.

The parameters are the root ``params.yaml`` (``conf/base/parameters.yml`` links to it), so DVC
and Kedro read one file.
"""

from superres.hooks import TrackingStoreHook

HOOKS = (TrackingStoreHook(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
