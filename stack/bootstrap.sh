#!/usr/bin/env bash
# Install whatever the local stack needs and is missing; fast and silent when all is there.
#   - Debian packages (as root: apt-get; otherwise: print the exact command and stop)
#   - the Python virtualenv (.venv) from uv.lock, with uv itself in .cache/uv
#   - the JVM side (Kafka, Connect, Debezium plugins, JMX exporter) from Maven Central into .cache/jvm
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
say() { printf '[bootstrap] %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------
apt_missing=()
have_pg_server() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || command -v postgres >/dev/null; }
have_pg_server || apt_missing+=(postgresql)
command -v psql >/dev/null || apt_missing+=(postgresql-client)
command -v java >/dev/null || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_missing+=(maven)
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3 python3-venv)
# Adminer (Debian's package) under PHP's built-in server; php-cgi satisfies adminer's
# dependency on `php` without pulling in Apache.
command -v php >/dev/null || apt_missing+=(php-cli php-cgi)
php -m 2>/dev/null | grep -qx pgsql || apt_missing+=(php-pgsql)
[ -f /usr/share/adminer/adminer/index.php ] || apt_missing+=(adminer php-cgi)
# Prometheus (with promtool, for `make test`) and its Postgres exporter: the monitoring
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || apt_missing+=(prometheus)
[ -x /usr/bin/prometheus-postgres-exporter ] || apt_missing+=(prometheus-postgres-exporter)
# Debian's Chromium, driven by Playwright in the browser test (nothing is downloaded)
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)

if ((${#apt_missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages. Install them, then run make up again:"
    say "  sudo apt-get install ${apt_missing[*]}"
    exit 1
  fi
  say "installing ${apt_missing[*]} (apt-get)"
  # Debian's postgresql would create and start its own cluster on port 5432;
  # the project runs its own cluster, so tell postgresql-common not to.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${apt_missing[@]}"
fi

# Postgres refuses to run as root: as root, the cluster runs as this OS user.
if [ "$(id -u)" -eq 0 ] && ! id "${PG_OS_USER:-postgres}" >/dev/null 2>&1; then
  say "creating system user ${PG_OS_USER:-postgres}"
  useradd --system --no-create-home --shell /usr/sbin/nologin "${PG_OS_USER:-postgres}"
fi
# As root, Adminer runs as this unprivileged OS user (Debian has it already).
if [ "$(id -u)" -eq 0 ] && ! id "${ADMINER_OS_USER:-www-data}" >/dev/null 2>&1; then
  say "creating system user ${ADMINER_OS_USER:-www-data}"
  useradd --system --no-create-home --shell /usr/sbin/nologin "${ADMINER_OS_USER:-www-data}"
fi

# --- Python virtualenv --------------------------------------------------------
if [ ! -x .cache/uv/bin/uv ] || [ "$(.cache/uv/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION into .cache/uv"
  python3 -m venv .cache/uv
  .cache/uv/bin/pip install -q "uv==$UV_VERSION"
fi
.cache/uv/bin/uv sync --frozen --quiet

# --- JVM side from Maven Central ---------------------------------------------
stamp=".cache/jvm/.resolved-$(sha256sum stack/jvm/pom.xml | cut -c1-16)"
if [ ! -f "$stamp" ] || [ ! -d .cache/jvm/plugins/debezium-connector-postgres ] \
   || [ ! -d .cache/jvm/plugins/debezium-connector-jdbc ] || [ ! -d .cache/jvm/kafka/libs ] \
   || [ ! -f .cache/jvm/agents/jmx_prometheus_javaagent.jar ]; then
  say "resolving Kafka, Connect and Debezium jars (mvn, cached in ~/.m2 and .cache/jvm)"
  rm -rf .cache/jvm
  mkdir -p .cache
  if ! mvn -B -Dstyle.color=never -f stack/jvm/pom.xml package > .cache/mvn.log 2>&1; then
    cat .cache/mvn.log
    exit 1
  fi
  touch "$stamp"
fi
