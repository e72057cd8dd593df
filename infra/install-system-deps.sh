#!/usr/bin/env bash
# Installs the Debian packages behind the local infrastructure when they are missing:
# redis-server, prometheus (with promtool), a JDK and Maven for Apache Kafka and the Java wire-format
# interop tests (which compile a small program, hence a JDK, not only a JRE), Chromium for the
# console's browser tests, docker-compose to validate docker-compose.yml (no engine runs here).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus   >/dev/null || need+=(prometheus)
command -v javac        >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn          >/dev/null || need+=(maven)
command -v chromium     >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "installing Debian packages: ${need[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# Debian starts packaged daemons where it can; ModelCI-e runs its own on 127.0.0.1 ports.
for svc in redis-server prometheus; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
