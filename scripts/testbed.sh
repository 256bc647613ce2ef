#!/usr/bin/env bash
# The local test bed: a real OCI registry (Debian docker-registry, CNCF distribution) and, optionally, a single-node
# Ceph radosgw (real S3 with versioning), both on loopback with free ports.
#
#   scripts/testbed.sh install            apt-get the Debian packages (root; once per machine)
#   scripts/testbed.sh start DIR [rgw]    start; writes DIR/env.json and DIR/env.sh
#   scripts/testbed.sh stop DIR           stop everything started under DIR
#   scripts/testbed.sh registry DIR NAME  start one more registry named NAME under DIR (prints its host:port)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_http() { # url seconds
  for _ in $(seq $(( $2 * 10 ))); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

start_registry() { # DIR NAME -> prints host:port
  local dir=$1/$2 port; port=$(free_port); mkdir -p "$dir/data"
  cat > "$dir/registry.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: 127.0.0.1:$port, secret: imagevault-testbed}
YML
  setsid docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  wait_http "http://127.0.0.1:$port/v2/" 20 || { cat "$dir/registry.log" >&2; echo "registry $2 did not start" >&2; exit 1; }
  echo "127.0.0.1:$port"
}

case "${1:-}" in
  install)
    export DEBIAN_FRONTEND=noninteractive
    need=()
    command -v docker-registry >/dev/null || need+=(docker-registry)
    command -v skopeo >/dev/null || need+=(skopeo)
    command -v jq >/dev/null || need+=(jq)
    command -v radosgw >/dev/null || need+=(ceph-mon ceph-osd radosgw)
    if [ ${#need[@]} -gt 0 ]; then
      sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
      echo "testbed: installing Debian packages: ${need[*]}" >&2
      "${sudo[@]}" apt-get update -qq
      "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    ;;
  start)
    dir=${2:?usage: testbed.sh start DIR [rgw]}; mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    reg=$(start_registry "$dir" registry)
    s3='null'
    if [ "${3:-}" = rgw ]; then
      # Ports are picked free but bound later; with several test beds starting at once (parallel runs on one
      # machine) a cluster has been seen to reach another's monitor ("wrong fsid"). Try again on fresh ports.
      for attempt in 1 2 3; do
        port=$(free_port)
        if bash "$here/start-rgw.sh" "$dir/rgw" "$port" >&2; then break; fi
        [ "$attempt" = 3 ] && { echo "testbed: radosgw did not start in 3 attempts" >&2; exit 1; }
        echo "testbed: radosgw start failed (attempt $attempt); retrying on new ports" >&2
      done
      s3=$(jq -cn --arg e "http://127.0.0.1:$port" '{endpoint:$e,accessKeyId:"TESTKEY",secretAccessKey:"TESTSECRET",region:"us-east-1"}')
    fi
    jq -n --arg r "$reg" --argjson s3 "$s3" '{registry:$r,s3:$s3}' > "$dir/env.json"
    { echo "export TESTBED_REGISTRY=$reg"
      if [ "$s3" != null ]; then
        echo "export AWS_ENDPOINT_URL_S3=$(jq -r .endpoint <<<"$s3") AWS_ACCESS_KEY_ID=TESTKEY AWS_SECRET_ACCESS_KEY=TESTSECRET AWS_REGION=us-east-1"
      fi; } > "$dir/env.sh"
    cat "$dir/env.json"
    ;;
  registry)
    start_registry "${2:?usage: testbed.sh registry DIR NAME}" "${3:?NAME}"
    ;;
  stop)
    dir=${2:?usage: testbed.sh stop DIR}
    # Every daemon runs in its own session (setsid) and records its pid; ceph daemons run with -f, so the pid is the
    # daemon itself. Only pids whose command is one of ours are signalled: a stale pid file (after a reboot) may
    # name an unrelated process by now.
    pids=()
    for f in "$dir"/*/pid "$dir"/rgw/run/*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f"); rm -f "$f"
      grep -qaE 'docker-registry|ceph-mon|ceph-osd|radosgw' "/proc/$pid/cmdline" 2>/dev/null && pids+=("$pid")
    done
    [ ${#pids[@]} -gt 0 ] || exit 0
    kill "${pids[@]}" 2>/dev/null || true
    # A zombie (exited, not yet reaped by init) counts as stopped.
    alive() { local p; for p in "${pids[@]}"; do
      [ -e "/proc/$p" ] && ! grep -q '^[^)]*) Z' "/proc/$p/stat" 2>/dev/null && return 0; done; return 1; }
    for _ in $(seq 30); do alive || exit 0; sleep 0.1; done
    # Scratch state only: whatever did not stop within 3 s is killed.
    kill -9 "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 20); do alive || exit 0; sleep 0.1; done
    echo "testbed: could not stop pids ${pids[*]}" >&2; exit 1
    ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
