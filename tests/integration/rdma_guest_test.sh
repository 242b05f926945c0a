#!/usr/bin/env bash
# meson test rdma_guest: runs the rdma transport's tests (integration_rdma: real processes
# over RC queue pairs, a member killed with SIGKILL, and the in-process cases) inside the
# Soft-RoCE guest of scripts/rdma-vm, in one boot. GoogleTest's XML report is written into
# this directory, shared read-write with the guest, where meson reads it, so every case counts
# on its own. Where no guest can run (no qemu and no way to install it), exits 77: meson
# reports the test as skipped, and the reason is printed.
#
# In the same boot it runs the group case over rdma (integration_group, filtered to
# three_members_rdma_in_guest: 3 members, one SIGKILLed, judged by the simulator's checker);
# its cases join the same report.
#
#   rdma_guest_test.sh RDMA_VM INTEGRATION_RDMA RDMA_MEMBER INTEGRATION_GROUP COHORT
#                      [--gtest_output=xml:PATH]
set -uo pipefail

vm=$1 bin=$2 member=$3 group=$4 cohort=$5
shift 5
xml=""
for a in "$@"; do
  case $a in --gtest_output=xml:*) xml=${a#--gtest_output=xml:} ;; esac
done

# meson reads the report if one is there: never let an earlier run's count for this one.
[[ -n $xml ]] && rm -f "$xml"

reason=$("$vm" check 2>&1)
rc=$?
if ((rc == 77)); then
  echo "SKIPPED: the rdma tests need the Soft-RoCE guest: $reason"
  exit 77
elif ((rc != 0)); then
  echo "rdma_guest: scripts/rdma-vm check failed: $reason"
  exit 1
fi

share=$(cd "$(dirname "$bin")" && pwd)
[[ -n $xml ]] && share=$(cd "$(dirname "$xml")" && pwd)
q() { printf %q "$1"; }
cmd="ibv_devinfo -d rxe0 | grep -E 'hca_id|transport|state|active_mtu|link_layer'
$(q "$bin") $(q "$member") ${xml:+$(q "--gtest_output=xml:$xml.transport")}; rc1=\$?
$(q "$group") $(q "$cohort") no-dpdk --gtest_filter=GroupProcesses.three_members_rdma_in_guest \
  ${xml:+$(q "--gtest_output=xml:$xml.group")}; rc2=\$?
if [[ -n $(q "$xml") ]]; then
  python3 - $(q "$xml") <<'PY'
import sys, xml.etree.ElementTree as ET
out = sys.argv[1]
root = ET.Element('testsuites')
for part in ('.transport', '.group'):
    try:
        for suite in ET.parse(out + part).getroot().iter('testsuite'):
            root.append(suite)
    except (OSError, ET.ParseError):
        pass
ET.ElementTree(root).write(out)
PY
  rm -f $(q "$xml").transport $(q "$xml").group
fi
exit \$(( rc1 != 0 ? rc1 : rc2 ))"
# The cohort binary's folder too (a build under /tmp is only seen where shared).
apps=$(cd "$(dirname "$cohort")" && pwd)
shares=(--rw "$share")
[[ $apps != "$share" ]] && shares+=(--rw "$apps")
bins=$(cd "$(dirname "$bin")" && pwd)
[[ $bins != "$share" && $bins != "$apps" ]] && shares+=(--rw "$bins")
exec "$vm" run "${shares[@]}" --timeout 1500 "$cmd"
