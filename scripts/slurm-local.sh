#!/usr/bin/env bash
# A real one-node SLURM cluster on this host, for tests and benchmarks.
#
#   scripts/slurm-local.sh start    # install (root, Debian), configure, start, wait until the node is idle
#   scripts/slurm-local.sh status   # each daemon's state and `sinfo`; exit 0 when all run
#   scripts/slurm-local.sh stop     # cancel this cluster's jobs, stop exactly the daemons `start` started
#   scripts/slurm-local.sh env      # the line to source: export SLURM_CONF=...
#
# Debian's slurm-wlm 22.05 with munge for authentication, and slurmdbd on a private
# MariaDB so that jobs are visible in `sacct` (22.05 has no file-based accounting that
# sacct reads: accounting_storage/filetxt is gone, and jobcomp/filetxt only feeds a log).
# Everything listens on 127.0.0.1 only; config, state, spool, logs, pid files, the munge
# key and socket, and the database live under outputs/slurm/ (KODERZ_SLURM_DIR). Ports:
# KODERZ_SLURM_PORT (slurmctld, default 6817), +1 slurmd, +2 slurmdbd, +3 MariaDB.
# Clients (sbatch, sinfo, sacct, submitit) find this cluster through SLURM_CONF.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${KODERZ_SLURM_DIR:-$REPO/outputs/slurm}
PORT=${KODERZ_SLURM_PORT:-6817}
START_TIMEOUT=${KODERZ_SLURM_START_TIMEOUT:-120}
CLUSTER=koderz
NODE=$(hostname -s)
ETC=$ROOT/etc RUN=$ROOT/run LOG=$ROOT/log
export SLURM_CONF=$ETC/slurm.conf
# daemon name -> pid file, in start order (stop goes in reverse)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PIDFILE=(
    [munged]=$RUN/munged.pid [mariadbd]=$RUN/mariadbd.pid [slurmdbd]=$RUN/slurmdbd.pid
    [slurmctld]=$RUN/slurmctld.pid [slurmd]=$RUN/slurmd.pid
)

die() { echo "slurm-local: $*" >&2; exit 1; }
say() { echo "slurm-local: $*"; }

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurm-wlm)
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmdbd >/dev/null || missing+=(slurmdbd)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; install them as root (apt-get install -y ${missing[*]})"
    say "installing ${missing[*]}"
    # Debian's policy-rc.d in containers keeps the packaged services from starting
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${missing[@]}" >"$LOG/apt.log" 2>&1 \
        || { apt-get update -qq >>"$LOG/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 900 \
            apt-get install -y -qq "${missing[@]}" >>"$LOG/apt.log" 2>&1; } \
        || die "apt-get install ${missing[*]} failed; see $LOG/apt.log"
}

# pid of a daemon we started, if its pid file names a live process running that program
running_pid() {
    local name=$1 file=${PIDFILE[$1]} pid exe
    [ -s "$file" ] || return 1
    pid=$(tr -dc 0-9 <"$file")
    [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "$exe" = "$(readlink -f "$(command -v "$name")")" ] || return 1  # Debian: slurmctld -> slurmctld-wlm
    echo "$pid"
}

# start a daemon in the foreground mode, in a session of its own, and record its pid
launch() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    local pid=$! deadline=$((SECONDS + 10))
    echo "$pid" >"${PIDFILE[$name]}"
    until running_pid "$name" >/dev/null; do  # until setsid has exec'd the daemon
        [ -e "/proc/$pid" ] && [ $SECONDS -lt $deadline ] || die "$name did not start; see $LOG/$name.out"
        sleep 0.05
    done
}

wait_for() {  # wait_for DESCRIPTION DAEMON COMMAND...: until COMMAND succeeds, DAEMON alive, deadline
    local what=$1 daemon=$2 deadline=$((SECONDS + START_TIMEOUT))
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ -z "$daemon" ] || running_pid "$daemon" >/dev/null \
            || die "$daemon exited while waiting for $what; see $LOG/$daemon.log"
        [ $SECONDS -lt $deadline ] || die "no $what after ${START_TIMEOUT}s; see $LOG/"
        sleep 0.5
    done
}

configure() {
    mkdir -p "$ETC" "$RUN" "$LOG" "$ROOT/state" "$ROOT/spool" "$ROOT/munge" "$ROOT/mysql"
    chmod 700 "$ETC"  # the munge key itself is 0600
    [ -s "$ROOT/munge/munge.key" ] || mungekey --create --keyfile="$ROOT/munge/munge.key"
    chmod 600 "$ROOT/munge/munge.key"
    [ -s "$ETC/db.pass" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$ETC/db.pass")
    local cpus mem
    cpus=$(nproc)
    mem=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024))
    cat >"$ETC/slurm.conf" <<EOF
# written by scripts/slurm-local.sh: one node, this host only
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$ROOT/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# the munge socket for connections to slurmdbd (AuthInfo only covers the others)
AccountingStoragePass=$ROOT/munge/munge.socket
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
# jobs that ask for it (sbatch --oversubscribe) may share cores: 4 concurrent writers on 2 CPUs
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
    cat >"$ETC/slurmdbd.conf" <<EOF
# written by scripts/slurm-local.sh
AuthType=auth/munge
AuthInfo=socket=$ROOT/munge/munge.socket
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=${PIDFILE[slurmdbd]}
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=$(cat "$ETC/db.pass")
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$ETC/slurmdbd.conf"
}

start_munged() {
    running_pid munged >/dev/null && return
    launch munged munged --foreground --force --socket="$ROOT/munge/munge.socket" --key-file="$ROOT/munge/munge.key" \
        --pid-file="${PIDFILE[munged]}" --log-file="$LOG/munged.log" --seed-file="$ROOT/munge/munged.seed"
    wait_for "munge credential" munged sh -c "munge -n -S '$ROOT/munge/munge.socket' | unmunge -S '$ROOT/munge/munge.socket'"
}

mariadb_sql() { mariadb --no-defaults --socket="$ROOT/mysql/mysqld.sock" -u root -e "$1"; }

start_mariadbd() {
    running_pid mariadbd >/dev/null && return
    if [ ! -d "$ROOT/mysql/data/mysql" ]; then
        mariadb-install-db --no-defaults --user=root --datadir="$ROOT/mysql/data" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed; see $LOG/mariadb-install.log"
    fi
    launch mariadbd mariadbd --no-defaults --user=root --datadir="$ROOT/mysql/data" --socket="$ROOT/mysql/mysqld.sock" \
        --bind-address=127.0.0.1 --port=$((PORT + 3)) --pid-file="${PIDFILE[mariadbd]}" \
        --log-error="$LOG/mariadbd.log" --skip-name-resolve --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900
    wait_for "MariaDB" mariadbd mariadb_sql "SELECT 1"
    mariadb_sql "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$ETC/db.pass")';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurm() {
    if ! running_pid slurmdbd >/dev/null; then
        launch slurmdbd slurmdbd -D
        wait_for "slurmdbd" slurmdbd sacctmgr -n list cluster
    fi
    sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    running_pid slurmctld >/dev/null || launch slurmctld slurmctld -D
    running_pid slurmd >/dev/null || launch slurmd slurmd -D
    wait_for "idle node in sinfo" slurmctld sh -c "sinfo -h -N -o %T | grep -qx idle"
}

cmd_start() {
    mkdir -p "$LOG"
    install_packages
    configure
    start_munged
    start_mariadbd
    start_slurm
    say "cluster $CLUSTER up: node $NODE idle, partition local; export SLURM_CONF=$SLURM_CONF"
}

stop_daemon() {
    local name=$1 pid deadline
    pid=$(running_pid "$name") || { rm -f "${PIDFILE[$name]}"; return 0; }
    kill -TERM "$pid"
    deadline=$((SECONDS + 30))
    while [ -e "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if [ -e "/proc/$pid" ]; then
        say "$name ($pid) ignored SIGTERM for 30s; SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "${PIDFILE[$name]}"
    say "stopped $name ($pid)"
}

cmd_stop() {
    if running_pid slurmctld >/dev/null; then  # this cluster's jobs, through its own controller
        squeue -h -o %i | xargs -r scancel || true
    fi
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_daemon "${DAEMONS[$i]}"; done
}

cmd_status() {
    local name pid ok=0
    for name in "${DAEMONS[@]}"; do
        if pid=$(running_pid "$name"); then echo "$name running (pid $pid)"; else echo "$name stopped"; ok=1; fi
    done
    [ $ok = 0 ] && sinfo
    return $ok
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) die "usage: $0 start|stop|status|env (got '${1:-}')" ;;
esac
