from kyosei_intake.projections import metadata
from kyosei_platform.migrate import run_env

run_env(metadata)
