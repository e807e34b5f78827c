#!/bin/sh
# The deploy files: systemd units pass `systemd-analyze verify`, the cron example and the
# shell snippets parse. (Kubernetes YAML and the Dockerfile are checked by the Rust tests in
# tests/it/ops/deploy.rs, which run in `cargo test`.)
set -eu
cd "$(dirname "$0")/../.."

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "systemd-analyze not found (apt-get install systemd); CI=true, so this fails" >&2
    exit 1
  fi
  echo "!!! SKIPPED deploy unit checks: systemd-analyze not found (apt-get install systemd)"
  exit 0
fi

# verify insists that ExecStart= names an executable: point the units at the binary built
# from this tree instead of /usr/local/bin/cmafleet.
cargo build --locked --quiet --bin cmafleet
binary="$(pwd)/target/debug/cmafleet"
[ -n "${CARGO_TARGET_DIR:-}" ] && binary="$CARGO_TARGET_DIR/debug/cmafleet"
units="$(mktemp -d)"
trap 'rm -rf "$units"' EXIT
for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
  sed "s#/usr/local/bin/cmafleet#$binary#g" "$unit" >"$units/$(basename "$unit")"
done
# Any complaint at all fails the check (verify exits 0 on some warnings).
out="$(cd "$units" && systemd-analyze verify --man=no ./*.service ./*.timer 2>&1)" || {
  echo "$out" >&2
  exit 1
}
if [ -n "$out" ]; then
  echo "$out" >&2
  exit 1
fi
echo "systemd units: $(ls deploy/systemd | tr '\n' ' ')ok"

# The crontab example: every job line has five time fields and a command.
awk '
  /^[[:space:]]*(#|$)/ { next }
  /^[A-Z_]+=/ { next }
  NF < 7 { print FILENAME ":" NR ": a job line needs 5 time fields, a user and a command" > "/dev/stderr"; bad = 1 }
  END { exit bad }
' deploy/cron/cmafleet.cron
echo "cron example: ok"
