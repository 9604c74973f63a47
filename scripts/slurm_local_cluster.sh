#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine: munge, slurmctld and slurmd on localhost, one
# partition `local` with this machine's CPUs and memory. For trying `launcher=slurm` before using a
# real cluster, and for the SLURM tests (tests/test_slurm.py). Needs root and Debian/Ubuntu.
#
#   scripts/slurm_local_cluster.sh start    install (slurm-wlm, munge) if missing, configure, start, wait until idle
#   scripts/slurm_local_cluster.sh stop     stop the daemons
#   scripts/slurm_local_cluster.sh status   sinfo
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/lib/leia-slurm
LOGS=/var/log/leia-slurm

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
    fi
}

configure() {
    local cpus mem_mb host
    cpus=$(nproc)
    mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    host=$(hostname -s)
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS" /run/munge /var/lib/munge /var/log/munge /etc/munge
    cat > "$CONF_DIR/slurm.conf" <<CONF
# Written by leia's scripts/slurm_local_cluster.sh: a single-node cluster on localhost.
ClusterName=leia-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/leia-slurmctld.pid
SlurmdPidFile=/run/leia-slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
JobRequeue=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    echo "ConstrainCores=no" > "$CONF_DIR/cgroup.conf"
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
}

start() {
    install
    configure
    pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged" 2>/dev/null || munged --force
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qE '^idle|^mixed|^allocated'; then
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
            sinfo
            return 0
        fi
        sleep 1
    done
    echo "SLURM did not come up; see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
    sinfo >&2 || true
    return 1
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
