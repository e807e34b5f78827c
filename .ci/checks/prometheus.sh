#!/bin/sh
# Prometheus alert rules, their unit tests, and the scrape config example (promtool).
set -eu
cd "$(dirname "$0")/../.."
promtool check rules deploy/prometheus/alerts.yaml
promtool test rules deploy/prometheus/alerts.test.yaml
promtool check config deploy/prometheus/prometheus.yml
