/* Seeds of fuzz_rpc: requests as runc 1.1 and go-criu send them (VERSION, FEATURE_CHECK,
 * a DUMP and a RESTORE with runc's options, a PRE_DUMP and a DUMP with a parent image, a
 * NOTIFY answer), one file each in DIR. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.pb-c.h"

static void put(const char *dir, const char *name, const RpcRequest *q)
{
	static uint8_t buf[1 << 16];
	char path[512];
	size_t len = rpc_request__pack(q, buf);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	RpcRequest q = RPC_REQUEST__INIT;
	RpcOptions o = RPC_OPTIONS__INIT;
	RpcFeatures f = RPC_FEATURES__INIT;
	RpcExtMount m1 = RPC_EXT_MOUNT__INIT, m2 = RPC_EXT_MOUNT__INIT;
	RpcExtMount *mnts[] = { &m1, &m2 };
	RpcInheritFd i1 = RPC_INHERIT_FD__INIT;
	RpcInheritFd *inh[] = { &i1 };
	char *ext[] = { (char *)"mnt[/data]:data" };

	if (argc != 2)
		return 2;
	q.type = RPC_TYPE__RPC_VERSION;
	put(argv[1], "version", &q);
	q.type = RPC_TYPE__RPC_FEATURE_CHECK;
	f.has_mem_track = f.mem_track = true;
	f.has_lazy_pages = f.lazy_pages = true;
	q.features = &f;
	put(argv[1], "features", &q);
	q.features = NULL;
	q.type = RPC_TYPE__RPC_NOTIFY;
	q.has_notify_success = q.notify_success = true;
	put(argv[1], "notify", &q);
	q.has_notify_success = false;

	q.type = RPC_TYPE__RPC_DUMP;
	q.opts = &o;
	o.images_dir_fd = 5;
	o.has_work_dir_fd = true;
	o.work_dir_fd = 6;
	o.has_log_level = true;
	o.log_level = 4;
	o.log_file = (char *)"dump.log";
	o.root = (char *)"/run/bundle/rootfs";
	o.has_manage_cgroups = o.manage_cgroups = true;
	o.has_notify_scripts = o.notify_scripts = true;
	o.has_pid = true;
	o.pid = 4242;
	o.has_empty_ns = true;
	o.empty_ns = 0x40000000;
	o.has_orphan_pts_master = o.orphan_pts_master = true;
	o.config_file = (char *)"/etc/criu/runc.conf";
	m1.key = m1.val = (char *)"/data";
	m2.key = (char *)"/proc/kcore";
	m2.val = (char *)"/dev/null";
	o.n_ext_mnt = 2;
	o.ext_mnt = mnts;
	o.n_external = 1;
	o.external = ext;
	o.freeze_cgroup = (char *)"/sys/fs/cgroup/freezer/c1";
	put(argv[1], "dump", &q);
	/* runc's pre-dump, then its dump naming the pre-dump as the parent */
	q.type = RPC_TYPE__RPC_PRE_DUMP;
	o.has_track_mem = o.track_mem = true;
	o.parent_img = (char *)"../p0";
	put(argv[1], "pre-dump", &q);
	q.type = RPC_TYPE__RPC_DUMP;
	put(argv[1], "dump-parent", &q);
	o.has_track_mem = o.track_mem = false;
	o.parent_img = NULL;

	q.type = RPC_TYPE__RPC_RESTORE;
	o.has_pid = false;
	o.log_file = (char *)"restore.log";
	o.has_evasive_devices = o.evasive_devices = true;
	o.has_rst_sibling = o.rst_sibling = true;
	m1.val = (char *)"/srv/data";
	i1.key = (char *)"pipe:[12345]";
	i1.fd = 1;
	o.n_inherit_fd = 1;
	o.inherit_fd = inh;
	o.n_external = 0;
	put(argv[1], "restore", &q);
	return 0;
}
