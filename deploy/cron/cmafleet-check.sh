#!/bin/sh
# /usr/local/lib/cmafleet/cmafleet-check.sh — the nightly check of the fleet, started by
# cmafleet.cron (as the user cmafleet, under `flock -n`). In order:
#   1. rotates the log with savelog: each night gets its own file, 14 are kept (check.log.0
#      is last night's, older ones are gzipped);
#   2. takes the inventory's env:NAME secrets from the secrets file, each `NAME=value` line
#      verbatim: the file is read line by line, never sourced, so a `$`, a quote, a backtick
#      or a space in a token or password stays what it is;
#   3. runs `cmafleet validate INVENTORY --online`: every row tried live, creating nothing;
#      a row that fails (or a bad inventory, an unset secret) stops the night here;
#   4. runs the check, and runs it again every 30 minutes (7 times at most) while another run
#      — a migration night — holds the state dir's lock (exit 75: nothing was done).
# It prints — on stdout, which cron mails to MAILTO — only what needs a person: what validate
# found, a fatal error (cmafleet prints those on stdout too), an exit code that is not a
# normal check night, a night the lock stayed held. A normal night (0; 1: some sites are
# blocked, which is what checks are for; 3: the deadline left sites detached, resumed
# tomorrow) prints nothing: its summary is in the reports and the metrics. cmafleet's JSON
# log lines go to the log file. The script exits with cmafleet's exit code.
#
# The paths are those of the deploy examples; CMAFLEET_CRON_* variables change them.
set -u

config="${CMAFLEET_CRON_CONFIG:-/etc/cmafleet/check.toml}"
inventory="${CMAFLEET_CRON_INVENTORY:-/etc/cmafleet/inventory.csv}"
secrets="${CMAFLEET_CRON_SECRETS:-/etc/cmafleet/secrets.env}"
log="${CMAFLEET_CRON_LOG:-/var/log/cmafleet/check.log}"
retry_after="${CMAFLEET_CRON_RETRY_AFTER:-1800}"
retries="${CMAFLEET_CRON_RETRIES:-7}"
me="cmafleet-check"

# 1. Tonight's log starts empty (savelog, from debianutils; elsewhere one copy is kept).
if [ -s "$log" ]; then
  if command -v savelog >/dev/null 2>&1; then
    savelog -q -c 14 "$log" >/dev/null
  else
    mv -f "$log" "$log.0"
  fi
fi

# 2. env:NAME secrets. A line that is not NAME=value is named by its number, never shown.
if [ -f "$secrets" ]; then
  number=0
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    case $line in
      '' | '#'*) continue ;;
    esac
    name="${line%%=*}"
    case $name in
      "$line" | '' | [0-9]* | *[!A-Za-z0-9_]*)
        echo "$me: $secrets line $number is not NAME=value; skipped"
        continue
        ;;
    esac
    export "$line"
  done <"$secrets"
fi

# 3. Every row live. Its findings (offline problems and unresolved secrets are on stderr)
# are mailed when a row fails.
found="$(cmafleet validate "$inventory" --online --config "$config" 2>&1)"
code=$?
if [ "$code" != 0 ]; then
  printf '%s\n' "$found"
  echo "$me: cmafleet validate --online exited $code: no check tonight; fix the rows above"
  exit "$code"
fi

# 4. The check; exit 75 is "try later".
attempt=0
while :; do
  said="$(cmafleet run --config "$config" --log-format json --progress never 2>>"$log")"
  code=$?
  [ "$code" = 75 ] || break
  if [ "$attempt" -ge "$retries" ]; then
    printf '%s\n' "$said"
    echo "$me: the state dir's lock stayed held (another run) through $retries retries: no check tonight"
    exit "$code"
  fi
  attempt=$((attempt + 1))
  sleep "$retry_after"
done
case $code in
  0 | 1 | 3) ;;
  *)
    printf '%s\n' "$said"
    echo "$me: cmafleet run exited $code (cmafleet --help lists the exit codes); its log: $log"
    ;;
esac
exit "$code"
