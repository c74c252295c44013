#!/usr/bin/env bash
# Install the system packages the test suite needs (used by `make test`).
#
# - PostgreSQL's server binaries (initdb, pg_ctl, postgres): tests start their own throwaway
#   server on a free loopback port (tests/postgres_server.py) and never use a system cluster.
# - Chromium (/usr/bin/chromium): the web UI tests drive it headless through Playwright
#   (tests/ui/conftest.py); Playwright's own browser download is never used.
#
# Idempotent, and instant when everything is already there.
#
# Looks where tests/postgres_server.py looks: $LOOPML_PG_BINDIR, /usr/lib/postgresql/*/bin,
# `pg_config --bindir`, initdb on PATH. If none has initdb, installs Debian's `postgresql`
# (as root directly, otherwise through sudo), then stops any cluster the package
# auto-created (Debian's "main" on port 5432) and sets it to start manually, so nothing is
# left running that tests could come to depend on.
set -euo pipefail

have_pg() {
    local d
    if [[ -n "${LOOPML_PG_BINDIR:-}" && -x "$LOOPML_PG_BINDIR/initdb" ]]; then return 0; fi
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    done
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    fi
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    return 1
}

have_chromium() {
    [[ -x "${LOOPML_CHROMIUM:-/usr/bin/chromium}" ]]
}

if have_pg && have_chromium; then
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-system-deps: PostgreSQL server binaries or Chromium are missing." >&2
    echo "  Install them as root, e.g.: apt-get install postgresql chromium   (Debian/Ubuntu)" >&2
    echo "  or point LOOPML_PG_BINDIR at a directory holding initdb, pg_ctl and postgres." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: PostgreSQL server binaries are missing and this is not a" >&2
    echo "  Debian/Ubuntu system (no apt-get). Install PostgreSQL >= 13 with your package" >&2
    echo "  manager and put initdb on PATH, or set LOOPML_PG_BINDIR to its bin directory." >&2
    exit 1
fi

list_clusters() {  # "<version> <name>" per line; nothing before postgresql-common exists
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | awk '{print $1, $2}' || true
    fi
}

"${SUDO[@]}" apt-get update -qq
if ! have_chromium; then
    echo "install-system-deps: installing Chromium (Debian package 'chromium')..." >&2
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    have_chromium || { echo "install-system-deps: no Chromium at /usr/bin/chromium" >&2; exit 1; }
fi
if have_pg; then
    exit 0
fi

before="$(list_clusters)"
echo "install-system-deps: installing PostgreSQL (Debian package 'postgresql')..." >&2
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null

# The package creates and (where services run) starts a "main" cluster on port 5432. Tests
# never use it; stop the clusters this install created and keep them from starting on boot.
while read -r version name; do
    [[ -z "$version" ]] && continue
    if grep -qxF "$version $name" <<<"$before"; then continue; fi  # not ours: leave it
    "${SUDO[@]}" pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
    conf="/etc/postgresql/$version/$name/start.conf"
    if [[ -f "$conf" ]]; then
        echo manual | "${SUDO[@]}" tee "$conf" >/dev/null
    fi
done <<<"$(list_clusters)"

if ! have_pg; then
    echo "install-system-deps: installed 'postgresql' but still found no initdb under" >&2
    echo "  /usr/lib/postgresql/*/bin." >&2
    exit 1
fi
echo "install-system-deps: PostgreSQL installed: $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)" >&2
