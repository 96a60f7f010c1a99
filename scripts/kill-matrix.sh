#!/usr/bin/env bash
# The kill matrix: SIGKILL, SIGINT and SIGTERM each of the lab's programs N times (default 50) at a
# random moment, then require that the next run's sweep leaves nothing. Usage and options:
# scripts/soak.sh help (this is `scripts/soak.sh kill-matrix "$@"`).
set -eu -o pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/soak.sh" kill-matrix "$@"
