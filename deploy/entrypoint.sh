#!/bin/sh
# Start one Dagster role of Tributary in the container:
#   code-server  the gRPC server of the code location `tributary` (module pipelines.definitions), port 4000
#   webserver    the Dagster UI on port 3000, reading $DAGSTER_HOME/workspace.yaml
#   daemon       schedules, sensors, the run queue, run monitoring and retries
# Any other command runs as given (e.g. `tributary seed`, `dagster api execute_run ...` for ECS run tasks).
set -eu

role="${1:-code-server}"
[ "$#" -gt 0 ] && shift

case "$role" in
  code-server)
    exec dagster code-server start \
      --host 0.0.0.0 --port "${DAGSTER_CODE_SERVER_PORT:-4000}" \
      --module-name pipelines.definitions --location-name tributary \
      --working-directory /opt/dagster/app "$@"
    ;;
  webserver)
    exec dagster-webserver \
      --host 0.0.0.0 --port "${DAGSTER_WEBSERVER_PORT:-3000}" \
      --workspace "${DAGSTER_HOME}/workspace.yaml" "$@"
    ;;
  daemon)
    exec dagster-daemon run --workspace "${DAGSTER_HOME}/workspace.yaml" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
