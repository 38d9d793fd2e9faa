#!/bin/bash
# msmae extract submitted to a running Ray cluster with `ray job submit` (a cluster made with `ray up`, KubeRay,
# or by hand: `ray start --head` on one machine, `ray start --address HEAD:6379` on the others). The job's driver
# runs on the head node and joins the cluster with --ray_address auto.
#
#   RAY_ADDRESS=http://HEAD:8265 examples/cluster/ray_job.sh /shared/videos s3://bucket/poses
#
# (The job API on port 8265 needs the dashboard: start the head with `ray start --head --include-dashboard=true`;
# keep that port inside your private network. With token authentication set RAY_AUTH_TOKEN here too.)
set -euo pipefail
VIDEOS=${1:?usage: ray_job.sh VIDEOS OUTPUT_DIR}
OUTPUT_DIR=${2:?usage: ray_job.sh VIDEOS OUTPUT_DIR}
ray job submit --no-wait -- \
  msmae extract "$VIDEOS" --output_dir "$OUTPUT_DIR" --engine ray --ray_address auto --num_workers 0 --no_progress
echo "Follow it with: ray job logs --follow <submission id>; re-submit the same command to resume."
