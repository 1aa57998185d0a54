#!/usr/bin/env bash
# Start or stop a single-node Ceph radosgw on loopback for the test suite.
#   .ci/rgw.sh start DIR   -> writes DIR/env (RGW_ENDPOINT, keys of two users) once RGW answers
#   .ci/rgw.sh stop DIR
# One mon + one memstore OSD + one radosgw, no systemd, everything under DIR.
set -euo pipefail

cmd=${1:?start|stop}
dir=$(realpath -m "${2:?directory}")

here=$(dirname "$(realpath "$0")")
free_ports() {  # N: distinct free ports below the ephemeral range (scripts/free_port.py)
  python3 "$here/free_port.py" "$1"
}

stop() {
  for p in radosgw osd mon; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    fi
  done
  sleep 1
  for p in radosgw osd mon; do
    if [ -f "$dir/$p.pid" ]; then
      kill -9 "$(cat "$dir/$p.pid")" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}

wait_for() { # seconds, description, command...
  local secs=$1 what=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  echo "rgw.sh: timed out waiting for $what" >&2
  tail -n 30 "$dir"/log/*.log >&2 || true
  return 1
}

start() {
  rm -rf "$dir"
  mkdir -p "$dir"/{run,log,mon,osd}
  local mon_v2 mon_v1 rgw_port fsid
  read -r mon_v2 mon_v1 rgw_port < <(free_ports 3)
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')

  cat > "$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
# The monitor refuses to start (exit 28, ENOSPC) when its data disk's free share, in whole
# percent, is at or below this (default 5; 0 still refuses under 1 % free, as seen in CI); its
# data here is a few MiB, so a nearly full build disk must not stop the test suite.
mon data avail crit = -1
mon data avail warn = 0
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
ms bind ipv6 = false
public addr = 127.0.0.1
[mon.a]
mon data = $dir/mon
[osd]
osd objectstore = memstore
# memstore keeps objects in RAM; deleted objects' data stays until RGW's garbage collector
# frees it, which is why the collector runs every few seconds below.
memstore device bytes = 6442450944
osd data = $dir/osd/\$id
osd max object size = 1073741824
[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = localhost
rgw enable usage log = false
rgw thread pool size = 64
# Free deleted objects' data within seconds instead of RGW's two hours: a suite deletes
# gigabytes, and a full memstore OSD stalls every write (the cluster reports "full").
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
CONF
  export CEPH_CONF="$dir/ceph.conf"

  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring" -c "$CEPH_CONF"
  ceph-mon -i a -c "$CEPH_CONF" --pid-file "$dir/mon.pid"
  wait_for 30 "ceph-mon" ceph -c "$CEPH_CONF" --connect-timeout 2 mon stat

  local osd_uuid osd_secret osd_id
  osd_uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  osd_secret=$(ceph-authtool --gen-print-key)
  osd_id=$(echo "{\"cephx_secret\": \"$osd_secret\"}" | ceph -c "$CEPH_CONF" osd new "$osd_uuid" -i -)
  mkdir -p "$dir/osd/$osd_id"
  ceph-authtool --create-keyring "$dir/osd/$osd_id/keyring" --name "osd.$osd_id" --add-key "$osd_secret" >/dev/null
  ceph-osd -c "$CEPH_CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" --keyring "$dir/osd/$osd_id/keyring" >/dev/null 2>&1
  ceph-osd -c "$CEPH_CONF" -i "$osd_id" --keyring "$dir/osd/$osd_id/keyring" --pid-file "$dir/osd.pid"
  wait_for 60 "ceph-osd up" sh -c "ceph -c '$CEPH_CONF' osd stat | grep -q '1 up'"

  ceph -c "$CEPH_CONF" auth get-or-create client.rgw.gw mon 'allow rw' osd 'allow rwx' > "$dir/rgw.keyring"
  radosgw -c "$CEPH_CONF" -n client.rgw.gw --keyring "$dir/rgw.keyring" --pid-file "$dir/radosgw.pid"
  wait_for 90 "radosgw on port $rgw_port" curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/"

  local ak1=RGWMAINACCESSKEY001 sk1=rgwmainsecretkey000000000000000000000001
  local ak2=RGWALTACCESSKEY0002 sk2=rgwaltsecretkey0000000000000000000000002
  radosgw-admin -c "$CEPH_CONF" -n client.admin user create --uid main --display-name "Main User" \
    --email main@example.com --access-key "$ak1" --secret "$sk1" >/dev/null
  radosgw-admin -c "$CEPH_CONF" -n client.admin user create --uid alt --display-name "Alt User" \
    --email alt@example.com --access-key "$ak2" --secret "$sk2" >/dev/null

  # A user with a one-object quota and a suspended user, for the Ceph dialect rows.
  local ak3=RGWQUOTAACCESSKEY03 sk3=rgwquotasecretkey000000000000000000000003
  local ak4=RGWSUSPENDEDKEY0004 sk4=rgwsuspendedsecretkey00000000000000000004
  radosgw-admin -c "$CEPH_CONF" -n client.admin user create --uid quota --display-name "Quota User" \
    --access-key "$ak3" --secret "$sk3" >/dev/null
  radosgw-admin -c "$CEPH_CONF" -n client.admin quota set --quota-scope=user --uid=quota --max-objects=1 >/dev/null
  radosgw-admin -c "$CEPH_CONF" -n client.admin quota enable --quota-scope=user --uid=quota >/dev/null
  radosgw-admin -c "$CEPH_CONF" -n client.admin user create --uid suspended --display-name "Suspended User" \
    --access-key "$ak4" --secret "$sk4" >/dev/null
  radosgw-admin -c "$CEPH_CONF" -n client.admin user suspend --uid=suspended >/dev/null

  cat > "$dir/env" <<ENV
export RGW_ENDPOINT=http://127.0.0.1:$rgw_port
export RGW_ACCESS_KEY=$ak1
export RGW_SECRET_KEY=$sk1
export RGW_ALT_ACCESS_KEY=$ak2
export RGW_ALT_SECRET_KEY=$sk2
export RGW_QUOTA_ACCESS_KEY=$ak3
export RGW_QUOTA_SECRET_KEY=$sk3
export RGW_SUSPENDED_ACCESS_KEY=$ak4
export RGW_SUSPENDED_SECRET_KEY=$sk4
ENV
  echo "rgw.sh: radosgw ready on 127.0.0.1:$rgw_port"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
