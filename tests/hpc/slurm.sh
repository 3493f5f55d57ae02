#!/bin/bash
# A two-node Slurm cluster on one machine, for the tests in tests/hpc (Debian's slurm-wlm 22.05
# and munge; must run as root).
#
#   slurm.sh start            start munged, slurmctld and slurmd node1 and node2 (idempotent);
#                             prints the state dir
#   slurm.sh stop             stop everything by PID and delete the namespaces (idempotent)
#   slurm.sh status           "running" and each daemon's PID (exit 0), or "stopped" (exit 1)
#   slurm.sh env              shell lines to eval: SLURM_CONF, PATH with the client wrappers,
#                             BV_HPC_LOCAL (the node-local scratch path), BV_HPC_NETNS (the
#                             controller's network namespace, for clients run another way,
#                             e.g. as another user: nsenter --net=... setpriv ... srun)
#   slurm.sh forward PORT...  relay the host's 127.0.0.1:PORT into every node (the fixture
#                             registry listens on the host's loopback only); replaces the
#                             previous set of ports
#
# Layout.  slurmctld runs in its own network namespace "ctl", which holds a bridge
# (10.231.0.1/24); each slurmd runs in its own network namespace (10.231.0.1N on a veth into
# that bridge) and its own mount namespace.  Nothing listens on the host's interfaces, so the
# subnet is the same for every checkout.  Clients (srun, sbatch, squeue, scontrol, scancel,
# sinfo) must run in the ctl namespace: `slurm.sh env` puts wrappers that nsenter there first
# on PATH.  The host's file systems are shared by every node, as a parallel file system would
# be (the checkout, the project and BV_CACHE_DIR), except the node-local scratch: in each
# node's mount namespace $STATE/local is a bind mount of $STATE/nodes/NODE/local, so one path
# names a different directory on every node; tasks also get TMPDIR=$STATE/local/tmp (the
# TaskProlog).  TaskPlugin=task/affinity binds tasks to CPUs (--cpu-bind) as a real cluster
# does; there is no cgroup plugin and no accounting (sacct does not work, scontrol does).  munged runs with its own key and socket (AuthInfo=socket=...), never
# /etc/munge; slurm.conf is the harness's own (SLURM_CONF), never /etc/slurm.
#
# State dir: /tmp/bv-hpc-<hash of ${BV_FIXTURE_DIR:-$BV_BUILD_DIR/fixtures}/slurm>, mode 0755:
#   slurm.conf  task-prolog.sh  munge/{munge.key,munge.socket,munged.pid,munged.log,seed}
#   ctld/ spool/NODE/ log/{slurmctld,slurmd-NODE}.log  pid/*.pid  nodes/NODE/local/
#   local/ (mount point)  bin/ (client wrappers)  portfwd.{pid,ports,log}  netns.names
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [[ -n ${BV_FIXTURE_DIR:-} ]]; then
	fixtures=$BV_FIXTURE_DIR
elif [[ -n ${BV_BUILD_DIR:-} ]]; then
	fixtures=$BV_BUILD_DIR/fixtures
else
	fixtures=$repo/build/fixtures
fi
# Jobs of an unprivileged user read slurm.conf, reach munged's socket and write their node's
# scratch, and the checkout holding the fixtures may be one only its owner can enter: the
# state lives in /tmp instead, named by the fixture dir it belongs to.
state=/tmp/bv-hpc-$(printf '%s' "$fixtures/slurm" | sha256sum | cut -c1-12)
nodes=(node1 node2)
subnet=10.231.0

# shellcheck source=tests/fixtures/daemon.bash
. "$repo/tests/fixtures/daemon.bash"

# Namespace names are global (/run/netns), so they carry a hash of the state dir: two
# checkouts can run their clusters at once.
tag=$(printf '%s' "$state" | sha256sum | cut -c1-8)
ns_name() { printf 'bvhpc-%s-%s\n' "$tag" "$1"; }
ns_path() { printf '/run/netns/%s\n' "$(ns_name "$1")"; }

conf=$state/slurm.conf

need() {
	local b
	for b in "$@"; do
		command -v "$b" >/dev/null 2>&1 || [[ -x $b ]] ||
			die "$b is missing (apt-get install slurm-wlm munge)"
	done
}

write_conf() {
	local host i
	host=$(hostname -s)
	mkdir -p -m 0755 "$state"
	mkdir -p "$state"/{munge,ctld,log,pid,local,bin} "$state"/spool
	cat >"$state/task-prolog.sh.tmp" <<EOF
#!/bin/sh
# Slurm TaskProlog: lines "export NAME=VALUE" become the task's environment.
echo "export TMPDIR=$state/local/tmp"
echo "export BV_HPC_LOCAL=$state/local"
EOF
	chmod 755 "$state/task-prolog.sh.tmp"
	mv "$state/task-prolog.sh.tmp" "$state/task-prolog.sh"
	{
		cat <<EOF
# written by tests/hpc/slurm.sh
ClusterName=bvtest
SlurmctldHost=$host($subnet.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/pid/slurmctld.pid.daemon
SlurmdPidFile=$state/pid/slurmd-%n.pid.daemon
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
TaskProlog=$state/task-prolog.sh
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
PropagateResourceLimits=NONE
KillWait=3
MinJobAge=30
SlurmctldTimeout=10
SlurmdTimeout=30
MessageTimeout=20
EOF
		i=0
		for n in "${nodes[@]}"; do
			i=$((i + 1))
			echo "NodeName=$n NodeAddr=$subnet.1$i CPUs=2 RealMemory=1000 State=UNKNOWN"
		done
		echo "PartitionName=debug Nodes=$(
			IFS=,
			echo "${nodes[*]}"
		) Default=YES MaxTime=INFINITE State=UP"
	} >"$conf.tmp"
	mv "$conf.tmp" "$conf"
	for b in srun sbatch squeue scontrol scancel sinfo salloc sacct; do
		printf '#!/bin/sh\n# runs %s in the harness cluster'"'"'s controller network namespace\nSLURM_CONF=%s exec nsenter --net=%s /usr/bin/%s "$@"\n' \
			"$b" "$conf" "$(ns_path ctl)" "$b" >"$state/bin/$b.tmp"
		chmod 755 "$state/bin/$b.tmp"
		mv "$state/bin/$b.tmp" "$state/bin/$b"
	done
}

make_netns() {
	local ctl i n
	ctl=$(ns_name ctl)
	if [[ ! -e $(ns_path ctl) ]]; then
		ip netns add "$ctl"
		ip -n "$ctl" link set lo up
		ip -n "$ctl" link add br0 type bridge
		ip -n "$ctl" addr add "$subnet.1/24" dev br0
		ip -n "$ctl" link set br0 up
	fi
	i=0
	for n in "${nodes[@]}"; do
		i=$((i + 1))
		[[ -e $(ns_path "$n") ]] && continue
		ip netns add "$(ns_name "$n")"
		ip -n "$(ns_name "$n")" link set lo up
		ip -n "$ctl" link add "v$n" type veth peer name eth0 netns "$(ns_name "$n")"
		ip -n "$ctl" link set "v$n" master br0
		ip -n "$ctl" link set "v$n" up
		ip -n "$(ns_name "$n")" addr add "$subnet.1$i/24" dev eth0
		ip -n "$(ns_name "$n")" link set eth0 up
	done
	printf '%s\n' "$ctl" "${nodes[@]/#/bvhpc-$tag-}" >"$state/netns.names"
}

start_munged() {
	local m=$state/munge i
	pid_alive "$m/munged.pid" "$m/munge.socket" && return 0
	if [[ ! -s $m/munge.key ]]; then
		(umask 077 && head -c 1024 /dev/urandom >"$m/munge.key.tmp")
		mv "$m/munge.key.tmp" "$m/munge.key"
	fi
	# 755: other users' srun and sbatch reach the socket too (the key stays 0600)
	chmod 755 "$m"
	rm -f "$m/munge.socket" "$m/munge.socket.lock"
	nohup /usr/sbin/munged --foreground --force --socket="$m/munge.socket" \
		--key-file="$m/munge.key" --pid-file="$m/munged.pid.daemon" \
		--log-file="$m/munged.log" --seed-file="$m/seed" </dev/null >>"$m/munged.log" 2>&1 3>&- &
	echo $! >"$m/munged.pid"
	for ((i = 0; i < 100; i++)); do
		munge -n -S "$m/munge.socket" 2>/dev/null | unmunge -S "$m/munge.socket" >/dev/null 2>&1 && return 0
		pid_exists "$m/munged.pid" || break
		sleep 0.05
	done
	die "munged did not start; see $m/munged.log"
}

start_ctld() {
	pid_alive "$state/pid/slurmctld.pid" "$conf" && return 0
	SLURM_CONF=$conf nohup nsenter --net="$(ns_path ctl)" /usr/sbin/slurmctld -D -c -f "$conf" \
		</dev/null >>"$state/log/slurmctld.out" 2>&1 3>&- &
	echo $! >"$state/pid/slurmctld.pid"
}

start_slurmd() {
	local n=$1
	pid_alive "$state/pid/slurmd-$n.pid" "$conf" && return 0
	mkdir -p "$state/nodes/$n/local/tmp" "$state/spool/$n"
	# scratch for every user, like /tmp
	chmod 1777 "$state/nodes/$n/local/tmp"
	# Own mount namespace: $state/local is this node's scratch.  sh and unshare exec, so
	# the PID recorded is slurmd's.
	# shellcheck disable=SC2016 # the inner sh expands its own arguments
	SLURM_CONF=$conf nohup nsenter --net="$(ns_path "$n")" \
		unshare --mount --propagation private \
		sh -c 'mount --bind "$1" "$2" && exec /usr/sbin/slurmd -D -N "$3" -f "$4"' \
		slurmd-"$n" "$state/nodes/$n/local" "$state/local" "$n" "$conf" \
		</dev/null >>"$state/log/slurmd-$n.out" 2>&1 3>&- &
	echo $! >"$state/pid/slurmd-$n.pid"
}

client() {
	SLURM_CONF=$conf nsenter --net="$(ns_path ctl)" "$@"
}

cmd_start() {
	local i n idle
	[[ $(id -u) -eq 0 ]] || die "must run as root (network namespaces, slurmd)"
	need /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/srun munge unmunge nsenter unshare ip
	mkdir -p "$state"
	write_conf
	make_netns
	start_munged
	start_ctld
	for ((i = 0; i < 100; i++)); do
		client /usr/bin/scontrol ping 2>/dev/null | grep -q 'is UP' && break
		pid_exists "$state/pid/slurmctld.pid" || die "slurmctld exited; see $state/log/slurmctld.log"
		sleep 0.1
	done
	for n in "${nodes[@]}"; do start_slurmd "$n"; done
	for ((i = 0; i < 200; i++)); do
		idle=$(client /usr/bin/sinfo -h -N -o '%N %t' 2>/dev/null | grep -cE ' (idle|mix|alloc)$' || true)
		[[ $idle -eq ${#nodes[@]} ]] && {
			echo "$state"
			return 0
		}
		for n in "${nodes[@]}"; do
			pid_exists "$state/pid/slurmd-$n.pid" || die "slurmd $n exited; see $state/log/slurmd-$n.log"
		done
		sleep 0.1
	done
	die "nodes did not become idle: $(client /usr/bin/sinfo -N 2>&1 | tr '\n' ';')"
}

cmd_forward() {
	local -a args=()
	local n
	(($# > 0)) || usage
	[[ -e $(ns_path ctl) ]] || die "the cluster is not started"
	if pid_alive "$state/portfwd.pid" portfwd.py && [[ "$(cat "$state/portfwd.ports" 2>/dev/null)" == "$*" ]]; then
		return 0
	fi
	kill_pidfile "$state/portfwd.pid" portfwd.py
	for n in "${nodes[@]}"; do args+=(--netns "$(ns_path "$n")"); done
	rm -f "$state/portfwd.ready"
	nohup python3 "$here/portfwd.py" "${args[@]}" "$@" </dev/null >"$state/portfwd.ready" 2>>"$state/portfwd.log" 3>&- &
	echo $! >"$state/portfwd.pid"
	echo "$*" >"$state/portfwd.ports"
	for ((n = 0; n < 100; n++)); do
		grep -q ready "$state/portfwd.ready" 2>/dev/null && return 0
		pid_exists "$state/portfwd.pid" || break
		sleep 0.05
	done
	die "port relay did not start; see $state/portfwd.log"
}

cmd_stop() {
	local n name
	kill_pidfile "$state/portfwd.pid" portfwd.py
	for n in "${nodes[@]}"; do kill_pidfile "$state/pid/slurmd-$n.pid" "$conf" 10; done
	kill_pidfile "$state/pid/slurmctld.pid" "$conf" 10
	kill_pidfile "$state/munge/munged.pid" "$state/munge/munge.socket"
	if [[ -s $state/netns.names ]]; then
		# what is left in the namespaces (a job's slurmstepd and tasks after a failed test)
		# is ours: only this script's daemons started processes there
		while read -r name; do
			[[ -e /run/netns/$name ]] || continue
			ip netns pids "$name" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		done <"$state/netns.names"
		while read -r name; do
			[[ -e /run/netns/$name ]] && ip netns delete "$name"
		done <"$state/netns.names"
		rm -f "$state/netns.names"
	fi
	return 0
}

cmd_status() {
	local ok=true n
	pid_alive "$state/munge/munged.pid" "$state/munge/munge.socket" || ok=false
	pid_alive "$state/pid/slurmctld.pid" "$conf" || ok=false
	for n in "${nodes[@]}"; do pid_alive "$state/pid/slurmd-$n.pid" "$conf" || ok=false; done
	if ! $ok; then
		echo stopped
		return 1
	fi
	printf 'running munged %s slurmctld %s' "$(<"$state/munge/munged.pid")" "$(<"$state/pid/slurmctld.pid")"
	for n in "${nodes[@]}"; do printf ' %s %s' "$n" "$(<"$state/pid/slurmd-$n.pid")"; done
	printf '\n'
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env)
	printf 'export SLURM_CONF=%q\n' "$conf"
	# shellcheck disable=SC2016 # $PATH is for the shell that evals this
	printf 'export PATH=%q:"$PATH"\n' "$state/bin"
	printf 'export BV_HPC_LOCAL=%q\n' "$state/local"
	printf 'export BV_HPC_NETNS=%q\n' "$(ns_path ctl)"
	;;
forward) cmd_forward "$@" ;;
*) usage ;;
esac
