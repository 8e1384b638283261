#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the Slurm runner's tests and for trying it out.
#
#   tests/slurm/local_cluster.sh start    # munged, slurmctld, slurmd; waits until the node is idle
#   tests/slurm/local_cluster.sh status   # "running" (exit 0) or "stopped" (exit 1)
#   tests/slurm/local_cluster.sh stop
#   tests/slurm/local_cluster.sh env      # the line to eval so that sbatch/squeue find this cluster
#
# Everything lives under $ORIENTEER_SLURM_DIR (default /tmp/orienteer-slurm): slurm.conf, gres.conf, a
# munge key and socket of its own, the daemons' state, logs and pid files. Nothing under /etc is touched:
# clients find the cluster through SLURM_CONF (printed by `env`). Needs the Debian packages slurm-wlm and
# munge (Slurm 22.05), and root (SlurmUser=root: fine for a throwaway test cluster, not for a real one).
# The node has this host's CPUs (at least 8) and half its memory and a fake GRES of 2 GPUs (plain files as their devices:
# cons_tres counts them, nothing binds them), so GPU requests queue as they would on a real node.
set -euo pipefail

DIR=${ORIENTEER_SLURM_DIR:-/tmp/orienteer-slurm}
CTLD_PORT=${ORIENTEER_SLURM_PORT:-6917}
HOST=$(hostname -s)
CONF=$DIR/slurm.conf
FAKE_GPUS=2

die() { echo "local_cluster: $*" >&2; exit 1; }

pid_alive() { local pid; pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

running() { pid_alive "$DIR/munged.pid" && pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; }

write_conf() {
  local cpus mem
  # At least 8 CPUs, whatever the host has (config_overrides: slurmd believes slurm.conf), so that a
  # few one-CPU test jobs run side by side on a 2-core CI machine; they mostly sleep.
  cpus=$(nproc); [ "$cpus" -ge 8 ] || cpus=8
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))   # half of it, in MB: room for the host
  mkdir -p "$DIR/ctld" "$DIR/d" "$DIR/munge" "$DIR/log"
  chmod 700 "$DIR/munge"
  cat >"$CONF" <<EOF
# Written by tests/slurm/local_cluster.sh: a single-node cluster for tests (no accounting daemon).
ClusterName=orienteer-test
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
# Short times, so the tests see ends quickly: the grace between SIGTERM and SIGKILL, how long an ended job
# stays in squeue, how often the time limit is checked.
KillWait=3
MinJobAge=60
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=60
SlurmctldTimeout=60
NodeName=$HOST CPUs=$cpus RealMemory=$mem Gres=gpu:$FAKE_GPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  # Slurm drops a GPU without a device file: plain files stand in for /dev/nvidia0..1 (task/none binds nothing).
  local k
  for k in $(seq 0 $((FAKE_GPUS - 1))); do touch "$DIR/fake-gpu$k"; done
  cat >"$DIR/gres.conf" <<EOF
NodeName=$HOST Name=gpu File=$DIR/fake-gpu[0-$((FAKE_GPUS - 1))]
EOF
  if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
  fi
}

start() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    || die "slurmctld, slurmd or munged not found (apt-get install slurm-wlm munge)"
  if running; then
    echo "local_cluster: already running (SLURM_CONF=$CONF)"
    return 0
  fi
  stop_daemons quiet
  write_conf
  export SLURM_CONF=$CONF
  munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed" 9>&-
  # -c: a clean start (no jobs from an earlier run); -i: ignore an old state file that does not fit.
  slurmctld -c -i -f "$CONF" 9>&-   # the daemons must not inherit (and so hold) the start lock
  slurmd -f "$CONF" 9>&-
  local state=""
  for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
    case $state in
      idle*|mix*|alloc*) echo "local_cluster: node $HOST is $state (SLURM_CONF=$CONF)"; return 0 ;;
      down*|drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  die "the node did not become idle within 60 s (state: ${state:-unknown}); logs under $DIR/log"
}

stop_daemons() {
  local name
  for name in slurmd slurmctld munged; do
    if pid_alive "$DIR/$name.pid"; then
      kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$DIR/$name.pid" || break; sleep 0.1; done
      if pid_alive "$DIR/$name.pid"; then kill -9 "$(cat "$DIR/$name.pid")" 2>/dev/null || true; fi
    fi
    rm -f "$DIR/$name.pid"
  done
  [ "${1:-}" = quiet ] || echo "local_cluster: stopped"
}

locked() { exec 9>"$DIR.lock"; flock 9; "$@"; }   # one start or stop at a time

case ${1:-} in
  start) locked start ;;
  stop) locked stop_daemons ;;
  status) if running; then echo "running (SLURM_CONF=$CONF)"; else echo "stopped"; exit 1; fi ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
