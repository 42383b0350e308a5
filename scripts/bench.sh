#!/usr/bin/env bash
# `make bench`: every benchmark, in release mode, each printing its table rows.
set -euo pipefail
cd "$(dirname "$0")/.."
export MEISA_TEST_PG=${MEISA_TEST_PG:-postgres://postgres:postgres@127.0.0.1:5432}
echo "== building release binaries (a few minutes the first time)"
cargo build --release -q --bin contacts --bin gateway --bin meisa-bench
target/release/meisa-bench
if [ -f services/mailer/benches/throughput.rs ]; then
  echo; echo "== mailer: render + enqueue + deliver"
  cargo bench -q -p meisa-mailer --bench throughput
fi
if [ -f services/automations/benches/latency.rs ]; then
  echo; echo "== automations: contact created → welcome email accepted by SMTP, 200 upserts/s"
  cargo bench -q -p meisa-automations --bench latency
fi
