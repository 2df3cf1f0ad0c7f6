#!/bin/bash
# {{sweep}}: one variant per array task; line {{first}} + N + 1 of {{variants}} names task N's
# variant (a sweep larger than the cluster's array limit is several arrays).
# Written by `sweeplab submit`. A requeued task continues from the variant's last checkpoint,
# and its log keeps every attempt.
#SBATCH --job-name={{sweep}}-train
#SBATCH --output={{folder}}/logs/train-%A_%a.log
#SBATCH --array=0-{{last_index}}{{max_parallel}}
#SBATCH --requeue
#SBATCH --open-mode=append
{{resources}}
set -euo pipefail
cd {{workdir}}
export KEDRO_DISABLE_TELEMETRY=1 MPLBACKEND=Agg KEDRO_LOGGING_CONFIG={{folder}}/logging.yml
# this submission, for what its tasks share: the variants that finished (<sweep>.fail_fast), and
# the MLflow parent run of their runs
export SWEEPLAB_SUBMISSION={{folder}} SWEEPLAB_FAIL_FAST={{folder}}/finished
export SWEEPLAB_WORKERS=1
variant=$(sed -n "$((SLURM_ARRAY_TASK_ID + {{first}} + 1))p" {{folder}}/{{variants}})
versions=$(paste -sd, {{folder}}/prep_versions.txt)
echo "task $SLURM_ARRAY_TASK_ID: {{sweep}}.$variant, data prep $versions"
{{run}} --pipelines={{sweep}}_train --namespaces={{sweep}}."$variant" --load-versions="$versions" {{run_options}}
