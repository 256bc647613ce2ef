#!/usr/bin/env bash
# A throwaway single-node Ceph with radosgw: real S3 (versioning, multipart, conditional writes) on loopback for the
# integration tests. One mon on a free port (so two test beds can run side by side), one bluestore-on-file OSD, no
# mgr, `auth none`, pool size 1, and radosgw (beast) on 127.0.0.1:PORT with the user TESTKEY/TESTSECRET.
#
#   usage: start-rgw.sh DIR PORT      (DIR is wiped first; needs ceph-mon ceph-osd radosgw: testbed.sh install)
#
# The daemons run in the foreground under setsid, each pid in DIR/run/NAME.pid (testbed.sh stop kills them).
# On any failure everything this script started is stopped again and the failing step is printed with its log tail.
set -euo pipefail

D=${1:?usage: start-rgw.sh DIR PORT}
PORT=${2:?usage: start-rgw.sh DIR PORT}
# Keep the block file small: it is sparse, the tests write well under 1 GiB, and bluestore only needs headroom.
BLOCK_SIZE=$((10 * 1024 * 1024 * 1024))
# A fresh machine can be slow (cold page cache, CI neighbours); everything normally takes a few seconds.
DEADLINE=${RGW_START_TIMEOUT:-120}

for cmd in ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool python3 curl setsid timeout; do
  command -v "$cmd" >/dev/null || {
    echo "start-rgw: '$cmd' not found; install the test bed first: bash scripts/testbed.sh install" >&2
    exit 1
  }
done

# Wiping the files of a cluster that still runs would leave its daemons behind with nothing to stop them by.
for f in "$D"/run/*.pid; do
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "start-rgw: a cluster still runs in $D ($(basename "$f" .pid)); stop it first: testbed.sh stop" >&2
    exit 1
  fi
done
rm -rf "$D"
mkdir -p "$D"/{run,log,mon.a,osd.0,rgw}
D=$(cd "$D" && pwd) # ceph.conf paths must be absolute: daemons chdir to /

t0=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$t0" "$(date +%s.%N)"; }

step='setup'
started=() # "name pid" of every daemon started so far, for cleanup on failure

stop_started() {
  local entry
  for entry in "${started[@]}"; do kill "${entry#* }" 2>/dev/null || true; done
  [ -z "${mkfs_pid:-}" ] || kill "$mkfs_pid" 2>/dev/null || true
  sleep 0.5
  for entry in "${started[@]}"; do kill -9 "${entry#* }" 2>/dev/null || true; done
  rm -f "$D"/run/*.pid
}

fail() { # message [log names to show, default: all]
  trap - ERR
  echo "start-rgw: FAILED at step '$step' after $(elapsed): $1" >&2
  shift
  local f names=("$@")
  [ ${#names[@]} -gt 0 ] || names=('*')
  for name in "${names[@]}"; do
    for f in "$D"/log/$name.out "$D"/log/$name.log; do
      [ -s "$f" ] || continue
      echo "---- last lines of $f" >&2
      tail -n 20 "$f" >&2
    done
  done
  stop_started
  exit 1
}
trap 'fail "command failed (line $LINENO): $BASH_COMMAND"' ERR

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Runs a daemon in the foreground (-f: no fork, so $! is its pid and there is no pid-file race) in its own session,
# so a Ctrl-C in the starting terminal or jest killing its process group does not take it down.
start_daemon() { # name command...
  local name=$1
  shift
  setsid "$@" -f </dev/null >"$D/log/$name.out" 2>&1 &
  echo $! >"$D/run/$name.pid"
  started+=("$name $!")
}

# Fails fast with the daemon's log when one of them died, instead of waiting for the deadline.
check_alive() {
  local entry
  for entry in "${started[@]}"; do
    kill -0 "${entry#* }" 2>/dev/null || fail "${entry% *} exited (its log below)" "${entry% *}"
  done
}

# Otherwise the readiness check below could be answered by whatever already listens there.
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then fail "port $PORT is already in use"; fi

MON_PORT=$(free_port)
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)

cat >"$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $D/run
# No admin sockets: nothing here uses them, and a deep checkout path would exceed the 107-byte socket path limit.
admin socket =
log file = $D/log/\$name.log
log to stderr = false
err to stderr = true
# Daemons are started with -f and their pids recorded by this script.
pid file =
osd pool default size = 1
osd pool default min size = 1
# Few placement groups: every pool radosgw creates must peer before it answers, and one OSD gains nothing from more.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
# Startup speed. The monitor batches map changes for 1 s by default, and radosgw's startup is a dozen sequential
# changes (pool create, application enable, ...): commit almost at once instead.
paxos propose interval = 0.05
# Clients resend ops that waited for a PG to become active only on this tick (5 s by default).
objecter tick interval = 0.5
# Every block-device close waits out one aio poll (250 ms by default), and the OSD opens and closes its file a dozen
# times while starting.
bdev aio poll ms = 25
# The OSD places itself in the CRUSH map (and sets its device class) by monitor commands at start; those have been
# seen to go out before it has the monitor map, fail with "wrong fsid", and kill the start. We place it ourselves.
osd crush update on start = false
osd class update on start = false
# A nearly empty scratch disk must never be reported full.
mon osd nearfull ratio = .97
mon osd backfillfull ratio = .98
mon osd full ratio = .99
osd failsafe full ratio = .995

[mon.a]
mon data = $D/mon.a

[osd.0]
osd data = $D/osd.0
osd objectstore = bluestore
# Not <osd data>/block: ceph-osd --mkfs symlinks that name to the block path ("Too many levels of symbolic links").
bluestore block path = $D/osd.0.block
bluestore block create = true
bluestore block size = $BLOCK_SIZE
bluestore fsck on mkfs = false
osd memory target = 1073741824
# On stop the OSD waits this long for the monitor to acknowledge it going down (5 s by default); testbed.sh stop
# signals the monitor at the same moment.
osd mon shutdown timeout = 0.5
# One op shard: each shard probes the device on start, and one small OSD gains nothing from more.
osd op num shards = 1

[client.rgw.a]
# tcp_nodelay: without it beast sends a response's headers and body as separate small segments behind Nagle, and
# the client's delayed ACK holds every GET with a body ~40 ms (a 16 MiB snapshot to S3 took 2.2 s, 1.0 s with it);
# AWS S3 has no such stall, so the test bed should not either.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $D/rgw
CONF
export CEPH_CONF=$D/ceph.conf

step='mon mkfs'
# --addv with an explicit v1 address: a plain --add on a port other than 6789 means msgr2, which the v1-only
# `mon host` above would never reach.
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >"$D/log/monmaptool.out" 2>&1
ceph-mon --mkfs -i a --monmap "$D/monmap" >"$D/log/mon-mkfs.out" 2>&1

# The OSD's mkfs needs no monitor when its id, uuid and fsid are given: run it while the monitor starts.
step='osd mkfs'
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" --no-mon-config >"$D/log/osd-mkfs.out" 2>&1 &
mkfs_pid=$!

step='mon start'
start_daemon mon.a ceph-mon -i a

step='osd register'
# `ceph` retries until the monitor answers; --connect-timeout bounds that if the monitor never comes up.
timeout $((DEADLINE + 10)) ceph --connect-timeout "$DEADLINE" osd new "$OSD_UUID" 0 >"$D/log/osd-new.out" 2>&1 ||
  fail "ceph osd new did not succeed (is the monitor up on 127.0.0.1:$MON_PORT?)" osd-new mon.a

timeout 30 ceph osd crush add osd.0 1.0 root=default host=localhost >"$D/log/osd-crush.out" 2>&1 ||
  fail "ceph osd crush add did not succeed" osd-crush mon.a

step='osd mkfs'
wait "$mkfs_pid" || fail "ceph-osd --mkfs failed" osd-mkfs osd.0

step='osd start'
start_daemon osd.0 ceph-osd -i 0

step='rgw start'
# radosgw creates its pools and waits for them to become active, i.e. for the OSD to be up, before it listens.
start_daemon client.rgw.a radosgw -n client.rgw.a

ready=''
for _ in $(seq $((DEADLINE * 10))); do
  check_alive
  if curl -fs -o /dev/null "http://127.0.0.1:$PORT/"; then ready=1 && break; fi
  sleep 0.1
done
[ -n "$ready" ] || fail "radosgw did not answer on 127.0.0.1:$PORT within ${DEADLINE}s" client.rgw.a osd.0 mon.a

step='user create'
timeout "$DEADLINE" radosgw-admin user create --uid=test --display-name=test \
  --access-key=TESTKEY --secret=TESTSECRET >"$D/log/user-create.out" 2>&1 ||
  fail "radosgw-admin user create failed" user-create client.rgw.a
check_alive

trap - ERR
echo "rgw up on http://127.0.0.1:$PORT (TESTKEY/TESTSECRET), mon 127.0.0.1:$MON_PORT, in $(elapsed); logs in $D/log"
