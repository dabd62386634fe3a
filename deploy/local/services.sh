#!/usr/bin/env bash
# Local real services for tests and development: a single-node KRaft Kafka broker (jars from Maven Central)
# and a ClickHouse engine (chDB from PyPI behind deploy/local/clickhouse/chdb_http.py) on 127.0.0.1.
#
#   services.sh up     [kafka|clickhouse]   install on first use, start, wait until ready (no-op when running)
#   services.sh down   [kafka|clickhouse]   stop what this script started (by pid file), nothing else
#   services.sh kill   [kafka|clickhouse]   SIGKILL instead of a clean stop, for crash tests
#   services.sh status                      one line per service
#   services.sh install                     only download and install (with all: also Debian's prometheus and
#                                           prometheus-alertmanager, the references of the PromQL and notifier tests,
#                                           prometheus-node-exporter, the target of the scrape tests,
#                                           rsyslog with rsyslog-kafka and rsyslog-gnutls, the peer of the syslog
#                                           tests and npm run bench:collector, systemd-journal-remote, the OpAMP
#                                           client and chromium below)
#   services.sh install rsyslog             only Debian's rsyslog, rsyslog-kafka and rsyslog-gnutls
#                                           (install also adds systemd-journal-remote, for the journal test)
#   services.sh install otel-python         only the OpenTelemetry Python SDK (PyPI) of test/otlp-sdk.test.ts
#   services.sh install opamp               only the OpenTelemetry Python OpAMP client (PyPI), in its own venv: the
#                                           third-party agent of test/fleet-interop.test.ts
#   services.sh install chromium            only Debian's chromium, for test/fleet-page.test.ts and docs:screenshots
#   services.sh install prometheus          only Debian's prometheus and prometheus-node-exporter
#   services.sh reset  [kafka|clickhouse]   stop, then delete the data (a fresh broker and engine on the next up)
#
# Environment (defaults):
#   BIFROST_CACHE=~/.cache/bifrost         downloads and virtualenv, outside the repo so a fresh clone reuses them
#   BIFROST_RUN_DIR=$BIFROST_CACHE/run     data, logs and pid files
#   BIFROST_KAFKA_PORT=9092  BIFROST_KAFKA_CONTROLLER_PORT=9093  BIFROST_CLICKHOUSE_PORT=8123
set -euo pipefail

KAFKA_VERSION=3.9.1
CHDB_VERSION=4.4.0
OTEL_PYTHON_VERSION=1.45.2
OPAMP_CLIENT_VERSION=0.5b0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${BIFROST_CACHE:-$HOME/.cache/bifrost}
run=${BIFROST_RUN_DIR:-$cache/run}
kafka_port=${BIFROST_KAFKA_PORT:-9092}
controller_port=${BIFROST_KAFKA_CONTROLLER_PORT:-9093}
clickhouse_port=${BIFROST_CLICKHOUSE_PORT:-8123}
kafka_libs=$cache/kafka-$KAFKA_VERSION/libs
venv=$cache/venv
otel_venv=$cache/otel-python-$OTEL_PYTHON_VERSION
opamp_venv=$cache/opamp-venv

say() { printf '%s\n' "$*" >&2; }
die() { say "services: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  local pidfile=$1
  [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ensure_tool() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing $pkg (for $cmd)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  fi
  command -v "$cmd" >/dev/null || die "$cmd is required (Debian package $pkg)"
}

install_kafka() {
  [[ -f $kafka_libs/kafka_2.13-$KAFKA_VERSION.jar ]] && return
  ensure_tool java openjdk-17-jre-headless
  ensure_tool mvn maven
  say "services: resolving Kafka $KAFKA_VERSION jars from Maven Central into $kafka_libs"
  local tmp=$kafka_libs.tmp.$$
  rm -rf "$tmp"
  mvn -q -B -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime >&2
  mkdir -p "$(dirname "$kafka_libs")"
  rm -rf "$kafka_libs" && mv "$tmp" "$kafka_libs"
}

install_clickhouse() {
  [[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import chdb" 2>/dev/null && return
  ensure_tool python3 python3
  say "services: installing chDB $CHDB_VERSION from PyPI into $venv"
  python3 -m venv "$venv" || { ensure_tool python3 python3-venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "chdb==$CHDB_VERSION" >&2
}

# Not a service either: test/otlp-sdk.test.ts runs an app instrumented with the OpenTelemetry Python SDK and its
# stock OTLP exporters (gRPC and HTTP), as a user's service exports to the collector.
install_otel_python() {
  [[ -x $otel_venv/bin/python ]] && "$otel_venv/bin/python" -c "import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http" 2>/dev/null && return
  ensure_tool python3 python3
  say "services: installing the OpenTelemetry Python SDK $OTEL_PYTHON_VERSION from PyPI into $otel_venv"
  python3 -m venv "$otel_venv" || { ensure_tool python3 python3-venv; python3 -m venv "$otel_venv"; }
  "$otel_venv/bin/pip" install -q --disable-pip-version-check "opentelemetry-sdk==$OTEL_PYTHON_VERSION" \
    "opentelemetry-exporter-otlp==$OTEL_PYTHON_VERSION" >&2
}

# Debian's Prometheus is not a service here: test/promql-prometheus.test.ts starts its own, as the reference its
# PromQL answers are compared with. Optional: that test skips without it.
install_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing Debian's prometheus (reference for the PromQL tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    say "services: prometheus is not installed (Debian package prometheus); test/promql-prometheus.test.ts will skip"
  fi
}

# Not a service either: test/scrape-prometheus.test.ts and npm run bench:collector run their own node_exporter as
# the scrape target both Prometheus and the collector read. The test skips without it.
install_node_exporter() {
  command -v prometheus-node-exporter >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing Debian's prometheus-node-exporter (scrape target of the scrape tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
  else
    say "services: prometheus-node-exporter is not installed (Debian package); test/scrape-prometheus.test.ts will skip"
  fi
}

# Only test/alertmanager.test.ts needs it (a real Alertmanager taking the notifier's alerts), and it skips
# without it: a machine that cannot install it still gets the other services.
install_alertmanager() {
  (ensure_tool prometheus-alertmanager prometheus-alertmanager) || say "services: test/alertmanager.test.ts will skip"
}

# Not a service either: bench/collector.ts runs its own rsyslogd (imfile -> omkafka, imtcp -> omkafka) as the
# peer it compares the collector with, and test/syslog.test.ts runs one (omfwd over UDP, TCP and TLS through
# rsyslog-gnutls) as the sender of the syslog input; logger (util-linux) sends too.
install_rsyslog() {
  [[ -x /usr/sbin/rsyslogd ]] && dpkg -s rsyslog-kafka rsyslog-gnutls >/dev/null 2>&1 && command -v logger >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing Debian's rsyslog, rsyslog-kafka and rsyslog-gnutls (syslog tests, npm run bench:collector)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rsyslog rsyslog-kafka rsyslog-gnutls bsdutils >/dev/null
  else
    say "services: rsyslog, rsyslog-kafka and rsyslog-gnutls are not installed (Debian packages); test/syslog.test.ts and npm run bench:collector need them"
  fi
}

# test/journal.test.ts builds real journal files with systemd-journal-remote (from journal export format) and
# reads them with journalctl --directory: CI has no running journald.
install_journal_remote() {
  [[ -x /lib/systemd/systemd-journal-remote ]] && command -v journalctl >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing Debian's systemd-journal-remote (journal files for test/journal.test.ts)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-journal-remote >/dev/null
  else
    say "services: systemd-journal-remote is not installed (Debian package); test/journal.test.ts needs it"
  fi
}

# The fleet server's interop test runs the OpenTelemetry Python OpAMP client as a third-party agent.
install_opamp() {
  [[ -x $opamp_venv/bin/python ]] && "$opamp_venv/bin/python" -c "import opentelemetry._opamp" 2>/dev/null && return
  ensure_tool python3 python3
  say "services: installing opentelemetry-opamp-client $OPAMP_CLIENT_VERSION from PyPI into $opamp_venv"
  python3 -m venv "$opamp_venv" || { ensure_tool python3 python3-venv; python3 -m venv "$opamp_venv"; }
  "$opamp_venv/bin/pip" install -q --disable-pip-version-check "opentelemetry-opamp-client==$OPAMP_CLIENT_VERSION" >&2
}

# Headless Chromium for the fleet page's browser test and npm run docs:screenshots (driven by playwright-core).
install_chromium() {
  command -v chromium >/dev/null && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "services: installing Debian's chromium (headless browser of test/fleet-page.test.ts)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    say "services: chromium is not installed (Debian package chromium); test/fleet-page.test.ts will skip"
  fi
}

write_kafka_config() {
  local dir=$run/kafka
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
# Tests create many short-lived consumer groups; waiting 3 s for more members only slows them down.
group.initial.rebalance.delay.ms=0
log.retention.hours=24
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
EOF
}

java_args() {
  java_cmd=(java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j.configuration="file:$run/kafka/log4j.properties" -cp "$kafka_libs/*")
}

up_kafka() {
  local dir=$run/kafka pidfile=$run/kafka/pid
  if pid_alive "$pidfile"; then say "kafka: already running (pid $(cat "$pidfile")) on 127.0.0.1:$kafka_port"; return; fi
  if port_open "$kafka_port"; then say "kafka: 127.0.0.1:$kafka_port is already served by a process this script did not start; using it"; return; fi
  install_kafka
  write_kafka_config
  java_args
  if [[ ! -f $dir/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$("${java_cmd[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || die "kafka: formatting storage failed, see $dir/format.log"
  fi
  # The port opens before the broker can serve metadata; "Kafka Server started" is logged when it can.
  # Only what this start appends counts: the log keeps earlier runs.
  local log_offset=0
  [[ -f $dir/server.log ]] && log_offset=$(stat -c %s "$dir/server.log")
  setsid "${java_cmd[@]}" kafka.Kafka "$dir/server.properties" >>"$dir/stdout.log" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
  # A broker that kept many partitions loads each at start; give it time before calling it failed.
  local deadline=$(($(date +%s) + 300))
  until port_open "$kafka_port" && tail -c "+$((log_offset + 1))" "$dir/server.log" 2>/dev/null | grep -q "Kafka Server started"; do
    pid_alive "$pidfile" || die "kafka: exited during start, see $dir/server.log and $dir/stdout.log"
    (( $(date +%s) < deadline )) || die "kafka: not ready after 300 s, see $dir/server.log"
    sleep 0.5
  done
  say "kafka: ready on 127.0.0.1:$kafka_port (pid $(cat "$pidfile"), data $dir/data)"
}

up_clickhouse() {
  local dir=$run/clickhouse pidfile=$run/clickhouse/pid
  if pid_alive "$pidfile"; then say "clickhouse: already running (pid $(cat "$pidfile")) on http://127.0.0.1:$clickhouse_port"; return; fi
  if port_open "$clickhouse_port"; then say "clickhouse: 127.0.0.1:$clickhouse_port is already served by a process this script did not start; using it"; return; fi
  install_clickhouse
  mkdir -p "$dir/data"
  setsid "$venv/bin/python" "$here/clickhouse/chdb_http.py" --host 127.0.0.1 --port "$clickhouse_port" \
    --data-dir "$dir/data" >>"$dir/server.log" 2>&1 </dev/null 9>&- &
  echo $! >"$pidfile"
  local deadline=$(($(date +%s) + 60))
  until curl -fsS "http://127.0.0.1:$clickhouse_port/ping" >/dev/null 2>&1; do
    pid_alive "$pidfile" || die "clickhouse: exited during start, see $dir/server.log"
    (( $(date +%s) < deadline )) || die "clickhouse: not ready after 60 s, see $dir/server.log"
    sleep 0.2
  done
  say "clickhouse: ready on http://127.0.0.1:$clickhouse_port (pid $(cat "$pidfile"), chDB data $dir/data)"
}

stop_service() {
  local name=$1 signal=$2 pidfile=$run/$1/pid
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; say "$name: not running (nothing started by this script)"; return; fi
  local pid
  pid=$(cat "$pidfile")
  kill "-$signal" "$pid" 2>/dev/null || true
  local deadline=$(($(date +%s) + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s) >= deadline )); then say "$name: still running after 60 s, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  say "$name: stopped (pid $pid, $signal)"
}

reset_service() {
  stop_service "$1" TERM
  rm -rf "${run:?}/$1/data"
  say "$1: data deleted"
}

status_of() {
  local name=$1 port=$2 pidfile=$run/$1/pid
  if pid_alive "$pidfile"; then echo "$name: running pid $(cat "$pidfile") on 127.0.0.1:$port"
  elif port_open "$port"; then echo "$name: 127.0.0.1:$port served by a process not started by this script"
  else echo "$name: stopped"; fi
}

targets() {
  case "${1:-all}" in
    all) echo kafka clickhouse ;;
    kafka|clickhouse) echo "$1" ;;
    *) die "unknown service '$1' (kafka, clickhouse or all)" ;;
  esac
}

main() {
  local cmd=${1:-} target=${2:-all}
  mkdir -p "$run"
  # Parallel test processes may all call `up`; one at a time keeps starts idempotent.
  # Started services get `9>&-` so that they do not hold this lock for their lifetime.
  exec 9>"$run/services.lock"
  flock 9
  case "$cmd" in
    up) for s in $(targets "$target"); do "up_$s"; done ;;
    down) for s in $(targets "$target"); do stop_service "$s" TERM; done ;;
    kill) for s in $(targets "$target"); do stop_service "$s" KILL; done ;;
    install)
      case "$target" in rsyslog | opamp | chromium) "install_$target"; return ;; esac
      if [[ $target == otel-python ]]; then install_otel_python; return; fi
      if [[ $target == prometheus ]]; then install_prometheus; install_node_exporter; return; fi
      for s in $(targets "$target"); do "install_$s"; done
      if [[ $target == all ]]; then
        install_prometheus; install_node_exporter; install_alertmanager; install_otel_python
        install_rsyslog || say "services: the syslog tests and npm run bench:collector will lack their peer"
        install_journal_remote || say "services: the journal test will lack its journal files"
        install_opamp; install_chromium
      fi
      ;;
    reset) for s in $(targets "$target"); do reset_service "$s"; done ;;
    status) status_of kafka "$kafka_port"; status_of clickhouse "$clickhouse_port" ;;
    *) die "usage: services.sh up|down|kill|status|install|reset [kafka|clickhouse] (install also: rsyslog, otel-python, opamp, chromium, prometheus)" ;;
  esac
}

main "$@"
