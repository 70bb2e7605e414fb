#!/bin/bash
# Runs once, when the ClickHouse volume is first initialised: a read-only
# account for Grafana. dpiawatch creates its own tables (migrate at start).
set -euo pipefail
clickhouse client --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" --multiquery <<SQL
CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_password BY '${GRAFANA_CLICKHOUSE_PASSWORD}'
  SETTINGS readonly = 1;
GRANT SELECT ON dpiawatch.* TO grafana;
SQL
