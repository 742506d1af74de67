#!/usr/bin/env bash
# Instructions per gateway request for a fixed request mix, counted by callgrind
# (deterministic, unlike times), compared with the committed baseline: fails when the count
# grew by more than 10 %. The mix and why it counts the gateway alone:
# tests/bench/examples/gateway_instructions.rs. Build profile: dev (the one the tests are
# built with, so CI compiles nothing extra for it); the counts are a dev build's, several
# times a release build's, and are only compared with each other.
#
#   bash tests/bench/instructions.sh            # compare with the baseline
#   bash tests/bench/instructions.sh --update   # write the measured count as the baseline
set -euo pipefail
cd "$(dirname "$0")/../.."
BASELINE=tests/bench/instructions.baseline
command -v valgrind >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}
cargo build -q -p crm-bench --example gateway_instructions
BIN=${CARGO_TARGET_DIR:-target}/debug/examples/gateway_instructions
OUT=$(mktemp -d)
trap 'rm -rf "${OUT}"' EXIT
# Requests per round: the mix's four.
PER_ROUND=4
count() {
  valgrind --tool=callgrind --callgrind-out-file="${OUT}/callgrind.$1" "${BIN}" "$1" \
    >"${OUT}/stdout.$1" 2>"${OUT}/stderr.$1" || { cat "${OUT}/stderr.$1"; exit 1; }
  awk '/^summary:/ { print $2; exit }' "${OUT}/callgrind.$1"
}
FEW=3
MANY=13
low=$(count ${FEW})
high=$(count ${MANY})
per_request=$(( (high - low) / ((MANY - FEW) * PER_ROUND) ))
echo "gateway instructions per request (dev build, fixed mix): ${per_request}"
if [ "${1:-}" = "--update" ]; then
  echo "${per_request}" > "${BASELINE}"
  echo "baseline written to ${BASELINE}"
  exit 0
fi
baseline=$(cat "${BASELINE}")
limit=$(( baseline + baseline / 10 ))
echo "baseline ${baseline}; limit (+10 %) ${limit}; change $(( (per_request - baseline) * 100 / baseline )) %"
if [ "${per_request}" -gt "${limit}" ]; then
  echo "the gateway's instructions per request grew by more than 10 % over the baseline"
  exit 1
fi
if [ "${per_request}" -lt $(( baseline - baseline / 10 )) ]; then
  echo "more than 10 % fewer than the baseline: run with --update to keep the gain"
fi
