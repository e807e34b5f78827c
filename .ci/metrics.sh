#!/bin/sh
# CI for the metrics part: Prometheus rules, their unit tests, the scrape config example,
# and the integration tests that run a real Prometheus and Pushgateway.
# Called by .ci/run; runs from any directory. Needs Debian's prometheus packages (installed
# here when missing).
set -eu
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1 \
    || ! command -v prometheus >/dev/null 2>&1 \
    || ! command -v prometheus-pushgateway >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    # The packages try to start their services; in a container without systemd that is
    # refused harmlessly (policy-rc.d), and the tests start their own instances anyway.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
        prometheus prometheus-pushgateway
fi

promtool check rules deploy/prometheus/alerts.yaml
promtool test rules deploy/prometheus/alerts.test.yaml
promtool check config deploy/prometheus/prometheus.yml

# Dashboard queries against a real Prometheus, Pushgateway pushes, textfile, name coverage.
# CI=true turns a missing program into a failure instead of a skip.
CI=true cargo test --test it metrics::
