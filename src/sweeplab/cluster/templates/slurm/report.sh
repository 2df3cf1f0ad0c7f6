#!/bin/bash
# {{sweep}}: the report, after every variant has ended (completed or failed). Written by
# `sweeplab submit`.
#SBATCH --job-name={{sweep}}-report
#SBATCH --output={{folder}}/logs/report-%j.log
{{resources}}
set -euo pipefail
cd {{workdir}}
export KEDRO_DISABLE_TELEMETRY=1 MPLBACKEND=Agg KEDRO_LOGGING_CONFIG={{folder}}/logging.yml
# this submission, for what its tasks share: the variants that finished (<sweep>.fail_fast), and
# the MLflow parent run of their runs
export SWEEPLAB_SUBMISSION={{folder}} SWEEPLAB_FAIL_FAST={{folder}}/finished
# with --retries: the tasks the scheduler killed go round again, and a new report job waits
# for them (exit status 10); this one then ends without a report
set +e; {{follow_up}}; code=$?; set -e
if [ $code = 10 ]; then exit 0; elif [ $code != 0 ]; then exit $code; fi
{{run}} --pipelines={{sweep}}_report {{run_options}}
