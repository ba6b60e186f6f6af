#!/usr/bin/env bash
# Makes sure the local PostgreSQL server the integration tests use is running
# and has the test database, then prints its DSN. Trust auth on 127.0.0.1:5432
# is what this machine kind provides; REGISTRAR_TEST_PG overrides the DSN.
set -euo pipefail

dsn="${REGISTRAR_TEST_PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
if [ -n "${REGISTRAR_TEST_PG:-}" ]; then
	echo "$dsn"
	exit 0
fi

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! ready; then
	echo "scripts/postgres.sh: starting PostgreSQL" >&2
	if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
		for v in $(ls /etc/postgresql); do
			pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
		done
	fi
	for _ in $(seq 1 60); do
		ready && break
		sleep 0.5
	done
	ready || { echo "scripts/postgres.sh: PostgreSQL is not accepting connections on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! psql -h 127.0.0.1 -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; then
	echo "scripts/postgres.sh: creating database test" >&2
	createdb -h 127.0.0.1 -U postgres test >&2
fi
echo "$dsn"
