#!/usr/bin/env bash
# Concurrent load: N (default 8) `vclab compare --quick` at once, then N density ramps at once; none
# may fail or collide, nothing may be left. Usage and options: scripts/soak.sh help (this is
# `scripts/soak.sh load "$@"`).
set -eu -o pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/soak.sh" load "$@"
