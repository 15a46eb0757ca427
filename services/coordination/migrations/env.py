from kyosei_coordination.meetings import projection as _meetings  # noqa: F401  (its tables)
from kyosei_coordination.projections import metadata
from kyosei_platform.migrate import run_env

run_env(metadata)
