#!/usr/bin/env bash
# meson test rdma_guest: runs the rdma transport's tests (integration_rdma: real processes
# over RC queue pairs, a member killed with SIGKILL, and the in-process cases) inside the
# Soft-RoCE guest of scripts/rdma-vm, in one boot. GoogleTest's XML report is written into
# this directory, shared read-write with the guest, where meson reads it, so every case counts
# on its own. Where no guest can run (no qemu and no way to install it), exits 77: meson
# reports the test as skipped, and the reason is printed.
#
#   rdma_guest_test.sh RDMA_VM INTEGRATION_RDMA RDMA_MEMBER [--gtest_output=xml:PATH]
set -uo pipefail

vm=$1 bin=$2 member=$3
shift 3
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
cmd="ibv_devinfo -d rxe0 | grep -E 'hca_id|transport|state|active_mtu|link_layer'
exec $(printf %q "$bin") $(printf %q "$member") ${xml:+$(printf %q "--gtest_output=xml:$xml")}"
exec "$vm" run --rw "$share" --timeout 1500 "$cmd"
