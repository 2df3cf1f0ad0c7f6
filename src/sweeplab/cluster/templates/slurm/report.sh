#!/bin/bash
# {{sweep}}: the report, after every variant has ended (completed or failed). Written by
# `sweeplab submit`.
#SBATCH --job-name={{sweep}}-report
#SBATCH --output={{folder}}/logs/report-%j.log
{{resources}}
set -euo pipefail
cd {{workdir}}
export KEDRO_DISABLE_TELEMETRY=1 MPLBACKEND=Agg KEDRO_LOGGING_CONFIG={{folder}}/logging.yml
{{run}} --pipelines={{sweep}}_report {{run_options}}
