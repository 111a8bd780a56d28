#!/usr/bin/env bash
# Install what building and testing stasis need, and only what is missing.
#
# Idempotent: when everything is present it touches nothing (no apt-get update).
# Works as root on a fresh Debian 12 with no stdin; as non-root it prints the
# apt-get command to run and exits 1 if anything required is missing.
#
# criu (the benchmark's comparison) and clang-format (formatting new code) are
# optional: failing to install them is reported and ignored.
set -euo pipefail

# package: why
REQUIRED=(
	build-essential     # gcc, make, libc headers
	protobuf-c-compiler # protoc-c: generates the image schema code
	libprotobuf-c-dev   # image metadata encoding
	libxxhash-dev       # checksums of image payloads and page runs
	libzstd-dev         # dump --compress: zstd frames of the pages files (src/mem/pagez.c)
	python3             # test runner, demo, benchmark
	clang               # fuzz targets
	libclang-rt-dev     # libFuzzer and the sanitizer runtimes for clang
	procps              # ps, used by the demo and tests
	util-linux          # unshare, setpriv, mount, nsenter: namespace test flavors
	iproute2            # ip, tc: the network checks (veth to a bridge outside the tree, a slowed loopback)
	uidmap              # newuidmap/newgidmap: the rootless test flavor's subuid range
	libcap2-bin         # setcap: the nonroot test flavor's capable stasis
	runc                # the runc end-to-end check (stasis as runc's --criu)
	# the Podman end-to-end check (podman -> runc -> stasis as criu). Required, not
	# optional: the check skips without it, and CI must not lose that coverage silently
	# when an optional install fails. Pulls conmon and containers-common.
	podman
	busybox-static      # the rootfs of that check's container
	socat               # the sock_unix_socat test relays a stream through it
	tmux                # the tmux_session and vim_buffer checks: real programs on ptys
	pkg-config          # the libstasis_install check builds against the installed library
	vim                 # the vim_buffer check: an unsaved buffer across a checkpoint
	redis-server        # the redis_pipeline check: a real server checkpointed mid-pipeline
	sqlite3             # the sqlite_lock check: a write transaction's locks across a checkpoint
	postgresql          # the postgres_shared_buffers check: a database's shared buffers
	nginx               # the nginx_netns check: a pre-forking server in a network namespace
	apache2             # the apache_prefork check: workers sharing a listener, an accept mutex
	dnsmasq-base        # the dnsmasq_daemon check: a double-forking daemon (its session's leader gone)
	memcached           # the memcached_threads check: a multi-threaded server mid-request
	openssh-server      # the sshd_session check: a live ssh session (TCP, pty, shell) checkpointed
	nodejs              # the node_http check: V8 and libuv's event loop serving HTTP
	fio                 # the fio_io_uring check: io_uring requests in flight across a checkpoint
	openjdk-17-jdk-headless # the java_threads check: a JVM and its thread pool (the source launcher needs the JDK)
	libnftables-dev     # the network lock: nftables rules from C (src/net/netlock.c)
	nftables            # nft: the network lock checks inspect the rules
	systemd             # the socket_activated_netns check: systemd-socket-activate, systemd-socket-proxyd
	mariadb-server      # the mariadb_innodb check: InnoDB's AIO contexts and O_TMPFILE files
)
OPTIONAL=(
	criu                # benchmark comparison only
	clang-format        # formatting new code with the committed .clang-format
)

is_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true)" = "ii " ]
}

missing_of() {
	local p
	for p in "$@"; do
		is_installed "$p" || printf '%s\n' "$p"
	done
}

mapfile -t missing_req < <(missing_of "${REQUIRED[@]}")
mapfile -t missing_opt < <(missing_of "${OPTIONAL[@]}")

if [ ${#missing_req[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	if [ ${#missing_req[@]} -eq 0 ]; then
		echo "deps: required packages present (optional, for the benchmark or formatting: ${missing_opt[*]})"
		exit 0
	fi
	echo "deps: missing packages: ${missing_req[*]} ${missing_opt[*]:-}" >&2
	echo "deps: run as root:  apt-get update && apt-get install -y ${missing_req[*]} ${missing_opt[*]:-}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# A mirror can fail for a moment: try each apt step a few times.
retry() {
	local i
	for i in 1 2 3; do
		"$@" </dev/null && return 0
		echo "deps: '$*' failed (attempt $i of 3)" >&2
		sleep $((i * 5))
	done
	return 1
}

echo "deps: installing: ${missing_req[*]:-} ${missing_opt[*]:-}"
retry "${APT[@]}" update

if [ ${#missing_req[@]} -gt 0 ]; then
	retry "${APT[@]}" install --no-install-recommends "${missing_req[@]}"
fi
if [ ${#missing_opt[@]} -gt 0 ]; then
	if ! retry "${APT[@]}" install --no-install-recommends "${missing_opt[@]}"; then
		echo "deps: optional package(s) ${missing_opt[*]} could not be installed (without criu the benchmark skips the CRIU comparison; clang-format is only for formatting)" >&2
	fi
fi

mapfile -t still < <(missing_of "${REQUIRED[@]}")
if [ ${#still[@]} -gt 0 ]; then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: done"
