#!/bin/sh
# The deploy files: the systemd units pass `systemd-analyze verify`, score no worse than the
# exposure deploy/README.md states under `systemd-analyze security`, and their sandbox lets a
# real run through (every system call of a traced run is in their SystemCallFilter=, and a
# run works with /proc as ProtectProc=invisible and ProcSubset=pid leave it); the cron
# example and its script parse. (Kubernetes YAML and the Dockerfile are checked by the Rust
# tests in tests/it/ops/deploy.rs, which run in `cargo test`.)
set -eu
cd "$(dirname "$0")/../.."

# A missing program skips a part loudly, except under CI=true, where it fails.
skip() {
  if [ "${CI:-}" = true ]; then
    echo "$1; CI=true, so this fails" >&2
    exit 1
  fi
  echo "!!! SKIPPED $1"
}

# The crontab example: every job line has five time fields, a user and a command; the script
# it runs parses.
awk '
  /^[[:space:]]*(#|$)/ { next }
  /^[A-Z_]+=/ { next }
  NF < 7 { print FILENAME ":" NR ": a job line needs 5 time fields, a user and a command" > "/dev/stderr"; bad = 1 }
  END { exit bad }
' deploy/cron/cmafleet.cron
sh -n deploy/cron/cmafleet-check.sh
echo "cron example: ok"

if ! command -v systemd-analyze >/dev/null 2>&1; then
  skip "deploy unit checks: systemd-analyze not found (apt-get install systemd)"
  exit 0
fi

# verify insists that ExecStart= names an executable: point the units at the binary built
# from this tree instead of /usr/local/bin/cmafleet.
cargo build --locked --quiet --bin cmafleet
binary="$(pwd)/target/debug/cmafleet"
[ -n "${CARGO_TARGET_DIR:-}" ] && binary="$CARGO_TARGET_DIR/debug/cmafleet"
work="$(mktemp -d)"
sim=""
cleanup() {
  [ -n "$sim" ] && kill "$sim" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
units="$work/units"
mkdir "$units"
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

# The exposure score: deploy/README.md states it ("Security score: 1.1 OK"); a unit scoring
# above it fails (--threshold counts tenths).
stated="$(sed -n 's/^.*Security score: \([0-9][0-9]*\.[0-9]\).*$/\1/p' deploy/README.md | head -n 1)"
if [ -z "$stated" ]; then
  echo "deploy/README.md states no \"Security score: N.N\"" >&2
  exit 1
fi
if ! systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
  skip "unit security scores: this systemd-analyze has no --offline (systemd 250 or later)"
else
  threshold="$(echo "$stated" | tr -d .)"
  for unit in "$units"/*.service; do
    name="$(basename "$unit")"
    report="$(cd "$units" && systemd-analyze security --offline=yes --no-pager \
      --threshold="$threshold" "./$name" 2>&1)" || {
      echo "$report" | grep -v '✓' >&2
      echo "$name: exposure above the $stated deploy/README.md states" >&2
      exit 1
    }
    echo "$report" | sed -n 's/^→ Overall exposure level for \(.*\)$/security: \1/p'
  done
fi

# ---- the sandbox lets a real run through -------------------------------------------------
# A check and a migration against the simulator (state store, textfile, /metrics server,
# artifacts), traced as an unprivileged user as the units run it.
if ! command -v strace >/dev/null 2>&1; then
  skip "the units' system call filter against a traced run: strace not found (apt-get install strace)"
  exit 0
fi
# Where the machine forbids tracing (a container without ptrace), say so; that is a policy of
# the machine, not a missing program, so it is not a failure even under CI=true.
if ! strace -f -qq -o /dev/null true 2>/dev/null; then
  echo "!!! SKIPPED the units' system call filter against a traced run: this machine forbids ptrace"
  exit 0
fi
# The unprivileged user must reach the binary and write the run's files and the traces.
chmod 755 "$work"
mkdir "$work/bin" "$work/run" "$work/run/textfile" "$work/trace"
cp "$binary" "$work/bin/cmafleet"
"$work/bin/cmafleet" sim --listen 127.0.0.1:0 --time-scale 600 >"$work/sim.out" 2>&1 &
sim=$!
api=""
for _ in $(seq 100); do
  api="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$work/sim.out")"
  [ -n "$api" ] && break
  sleep 0.1
done
[ -n "$api" ] || { cat "$work/sim.out" >&2; echo "the simulator did not start" >&2; exit 1; }
cd "$work/run"
printf 'pat-value\n' >server.pat
chmod 600 server.pat
cat >inventory.csv <<EOF
site,product,server_url,server_id,server_auth,cloud_url,cloud_user,cloud_token
acme-jira,jira,$api/servers/acme-jira,acme-jira,file:$work/run/server.pat,https://acme.atlassian.net,alice@example.com,env:ACME_CLOUD_TOKEN
acme-wiki,confluence,$api/servers/acme-wiki,acme-wiki,env:ACME_PAT,https://acme.atlassian.net,alice@example.com,env:ACME_CLOUD_TOKEN
EOF
for mode in check migrate; do
  cat >"$mode.toml" <<EOF
inventory = "inventory.csv"
mode = "$mode"
state-dir = "state"
cloud-api-url = "$api"
http2-prior-knowledge = true
metrics-listen = "127.0.0.1:0"
metrics-textfile = "textfile/cmafleet-$mode.prom"
poll-min = "200ms"
poll-max = "1s"
rate-create-job = "300/min"
rate-create-task = "300/min"
log-format = "json"
progress = "never"
EOF
done
export ACME_PAT=pat-value ACME_CLOUD_TOKEN=token-value
as_service=""
if [ "$(id -u)" = 0 ]; then
  chown -R 65534:65534 "$work/run" "$work/trace"
  as_service="setpriv --reuid=65534 --regid=65534 --clear-groups --"
fi
traces=0
traced() {
  traces=$((traces + 1))
  # shellcheck disable=SC2086 # as_service is a command prefix, or nothing
  $as_service strace -f -qq -o "$work/trace/$traces" "$work/bin/cmafleet" "$@" \
    >"$work/out.$traces" 2>&1 || {
    code=$?
    cat "$work/out.$traces" >&2
    echo "cmafleet $* exited $code under strace" >&2
    exit 1
  }
}
traced validate inventory.csv --online --config check.toml
traced run --config check.toml
traced run --config migrate.toml
cd - >/dev/null
# What the units allow: the groups and names of their SystemCallFilter= lines, expanded.
expand() {
  systemd-analyze syscall-filter "$1" 2>/dev/null | sed -n '2,$p' | grep -v '^ *#' | tr -d ' ' |
    grep -v '^$' | while read -r item; do
      case $item in
        @*) expand "$item" ;;
        *) echo "$item" ;;
      esac
    done
}
for unit in deploy/systemd/*.service; do
  : >"$work/allow"
  : >"$work/deny"
  sed -n 's/^SystemCallFilter=//p' "$unit" | while read -r line; do
    list=allow
    case $line in
      "~"*) list=deny line="${line#"~"}" ;;
    esac
    for item in $line; do
      case $item in
        @*) expand "$item" ;;
        *) echo "$item" ;;
      esac >>"$work/$list"
    done
  done
  sort -u "$work/allow" >"$work/allow.sorted"
  sort -u "$work/deny" >"$work/deny.sorted"
  comm -23 "$work/allow.sorted" "$work/deny.sorted" >"$work/allowed"
  cat "$work"/trace/* | sed -n 's/^[0-9][0-9]* *\([a-z0-9_]*\)(.*$/\1/p' | sort -u >"$work/used"
  [ -s "$work/used" ] || { echo "strace recorded no system call" >&2; exit 1; }
  refused="$(comm -23 "$work/used" "$work/allowed" | tr '\n' ' ')"
  if [ -n "$refused" ]; then
    echo "$unit: a real run makes system calls its SystemCallFilter= refuses: $refused" >&2
    exit 1
  fi
done
echo "system call filter: the $(wc -l <"$work/used") system calls of a real run are allowed"

# /proc as ProtectProc=invisible and ProcSubset=pid leave it: other processes and every
# non-process file (/proc/stat, /proc/meminfo, …) hidden.
restricted="mount -t proc -o subset=pid,hidepid=invisible proc /proc && exec \"\$@\""
if ! unshare -Urmpf sh -c "$restricted" sh true 2>/dev/null; then
  # User namespaces are a policy of the machine (some forbid them to unprivileged users).
  echo "!!! SKIPPED a run under the units' /proc: this machine lets unshare mount no pid-only /proc"
  exit 0
fi
# A copy owned by this user: the user namespace maps only this user.
cp -R "$work/run" "$work/proc"
rm -rf "$work/proc/state" "$work/proc/textfile"/*
sed "s#$work/run/#$work/proc/#" "$work/run/inventory.csv" >"$work/proc/inventory.csv"
cd "$work/proc"
unshare -Urmpf sh -c "$restricted" sh "$work/bin/cmafleet" run --config check.toml \
  >"$work/out.proc" 2>&1 || {
  cat "$work/out.proc" >&2
  echo "a run with /proc as ProtectProc=invisible and ProcSubset=pid leave it failed" >&2
  exit 1
}
cd - >/dev/null
echo "ProtectProc=invisible, ProcSubset=pid: a run goes through"
