#!/bin/bash
# {{sweep}}: data prep, run once before the variants. Written by `sweeplab submit`.
#SBATCH --job-name={{sweep}}-prep
#SBATCH --output={{folder}}/logs/prep-%j.log
{{resources}}
set -euo pipefail
cd {{workdir}}
export KEDRO_DISABLE_TELEMETRY=1 MPLBACKEND=Agg KEDRO_LOGGING_CONFIG={{folder}}/logging.yml
# this submission: its tracking store is made here, before the tasks that share it
export SWEEPLAB_SUBMISSION={{folder}}
# the versions this job writes, for every variant to load exactly these
export SWEEPLAB_SAVED_VERSIONS={{folder}}/prep_versions.txt
{{run}} --pipelines={{family}}_prep {{run_options}}
