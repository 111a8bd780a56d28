/* Hand-edit an image set for the escalation checks (tests/checks/): rewrites one field and
 * re-frames the file with valid checksums, as an attacker crafting images would.
 *
 *   imgedit DIR PID creds-root        every uid/gid of core-PID.img's creds -> 0
 *   imgedit DIR PID file-path PATH    the path of every regular file of files-PID.img
 *                                     (not unlinked files or memfds: they are recreated)
 *   imgedit DIR PID cgns-root PATH    core-PID.img's task created a cgroup namespace whose
 *                                     cgroup v2 root is PATH
 *   imgedit DIR PID tcp FIELD N       every TCP connection of files-PID.img: FIELD (state,
 *                                     family, unsent: bytes of its send queue never sent)
 *                                     set to N
 *   imgedit DIR PID dgram-long        the first datagram queued at an inet datagram socket
 *                                     of files-PID.img grows to 70000 bytes
 *   imgedit DIR PID dgram-family      the bound address of the first IPv4 datagram socket
 *                                     becomes 16 bytes long (an IPv6 one)
 *   imgedit DIR PID unix-sk FIELD N   every unix socket of files-PID.img: FIELD (state,
 *                                     peek-off, backlog) set to N
 *   imgedit DIR PID lock FIELD N      every file lock of files-PID.img: FIELD (kind; start,
 *                                     end, pid: where the lock has one) set to N

 *   imgedit DIR PID inotify wd N      the last watch of every inotify of files-PID.img
 *                                     gets wd N
 *   imgedit DIR PID inotify same-path 0
 *                                     the second watch of every inotify watches the
 *                                     first one's path (its wd cannot be had again)
 *   imgedit DIR 0 netlock TABLE LADDR LPORT RADDR RPORT
 *                                     a netlock.img naming TABLE and one IPv4 connection
 *   imgedit DIR PID netns-locked      the net namespace ns-PID.img records was locked
 *   imgedit DIR PID ns-joined N       every namespace ns-PID.img says the task entered is
 *                                     task N's
 *
 * Not part of stasis: a test tool. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/img.h"

/* files-PID.img written again with @f (freed) if @ok: 0, else 1. */
static int put_files(struct img_dir *d, int pid, Files *f, bool ok)
{
	char name[64];
	snprintf(name, sizeof(name), "files-%d.img", pid);
	unlinkat(d->dfd, name, 0);
	int ret = ok && !img_write_msg(d, IMG_FILES, pid, &f->base) ? 0 : 1;
	protobuf_c_message_free_unpacked(&f->base, NULL);
	return ret;
}

/* Every file lock of @f: @field (kind; start, end, pid where the lock has one) set to @v.
 * The number of locks, or -1 for an unknown field. */
static long edit_locks(Files *f, const char *field, long long v)
{
	long n = 0;
	if (strcmp(field, "kind") && strcmp(field, "start") && strcmp(field, "end") &&
	    strcmp(field, "pid"))
		return -1;
	for (size_t i = 0; i < f->n_files; i++)
		for (size_t k = 0; k < f->files[i]->n_locks; k++, n++) {
			FileLock *l = f->files[i]->locks[k];
			if (!strcmp(field, "kind"))
				l->kind = (FileLockKind)v;
			else if (!strcmp(field, "start") && l->has_start)
				l->start = v;
			else if (!strcmp(field, "end") && l->has_end)
				l->end = v;
			else if (!strcmp(field, "pid") && l->has_pid)
				l->pid = (int32_t)v;
		}
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: imgedit DIR PID creds-root | caps-full | file-path PATH | "
			"cgns-root PATH | dgram-long | dgram-family\n");
		return 2;
	}
	struct img_dir d = { .dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
	int pid = atoi(argv[2]);
	if (d.dfd < 0) {
		perror(argv[1]);
		return 1;
	}
	int ret = 1;
	if (!strcmp(argv[3], "creds-root")) {
		Core *c = img_read_msg(d.dfd, IMG_CORE, pid);
		if (!c || !c->creds)
			return 1;
		Creds *cr = c->creds;
		cr->uid = cr->euid = cr->suid = cr->fsuid = 0;
		cr->gid = cr->egid = cr->sgid = cr->fsgid = 0;
		char name[64];
		snprintf(name, sizeof(name), "core-%d.img", pid);
		unlinkat(d.dfd, name, 0);
		ret = img_write_msg(&d, IMG_CORE, pid, &c->base) ? 1 : 0;
		protobuf_c_message_free_unpacked(&c->base, NULL);
	} else if (!strcmp(argv[3], "caps-full")) {
		Core *c = img_read_msg(d.dfd, IMG_CORE, pid);
		if (!c || !c->creds)
			return 1;
		/* every capability the kernel knows, permitted and effective */
		c->creds->cap_prm = c->creds->cap_eff = (1ULL << 41) - 1;
		char name[64];
		snprintf(name, sizeof(name), "core-%d.img", pid);
		unlinkat(d.dfd, name, 0);
		ret = img_write_msg(&d, IMG_CORE, pid, &c->base) ? 1 : 0;
		protobuf_c_message_free_unpacked(&c->base, NULL);
	} else if (!strcmp(argv[3], "tcp") && argc == 6) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		unsigned int v = (unsigned int)strtoul(argv[5], NULL, 0);
		size_t n = 0;
		for (size_t i = 0; i < f->n_files; i++) {
			TcpSk *t = f->files[i]->tcp_sk;
			if (f->files[i]->kind != FILE_KIND__FILE_TCP_SK || !t || !t->repair)
				continue;
			if (!strcmp(argv[4], "state"))
				t->state = v;
			else if (!strcmp(argv[4], "family"))
				t->family = v;
			else if (!strcmp(argv[4], "unsent"))
				t->repair->has_unsent = true, t->repair->unsent = v;
			else
				return 2;
			n++;
		}
		ret = put_files(&d, pid, f, n);
	} else if (!strcmp(argv[3], "file-path") && argc == 5) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		size_t n = 0;
		for (size_t i = 0; i < f->n_files; i++)
			if (f->files[i]->kind == FILE_KIND__FILE_REG && f->files[i]->path &&
			    !f->files[i]->unlinked && !f->files[i]->memfd) {
				free(f->files[i]->path);
				f->files[i]->path = strdup(argv[4]);
				f->files[i]->has_size = false;
				n++;
			}
		ret = put_files(&d, pid, f, n);
	} else if (!strcmp(argv[3], "dgram-long") || !strcmp(argv[3], "dgram-family")) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		bool longer = !strcmp(argv[3], "dgram-long"), done = false;
		for (size_t i = 0; i < f->n_files && !done; i++) {
			InetDgramSk *u = f->files[i]->inet_dgram;
			if (!u)
				continue;
			if (longer && u->n_queue) {
				uint8_t *b = calloc(1, 70000);
				if (!b)
					return 1;
				free(u->queue[0]->data.data);
				u->queue[0]->data.data = b;
				u->queue[0]->data.len = 70000;
				done = true;
			} else if (!longer && u->family == 2 && u->bound) {
				uint8_t *b = calloc(1, 16);
				if (!b)
					return 1;
				memcpy(b, u->bound->addr.data, u->bound->addr.len < 16 ? u->bound->addr.len : 16);
				free(u->bound->addr.data);
				u->bound->addr.data = b;
				u->bound->addr.len = 16;
				done = true;
			}
		}
		ret = put_files(&d, pid, f, done);
	} else if (!strcmp(argv[3], "netns-locked")) {
		TaskNs *tns = img_read_msg(d.dfd, IMG_NS, pid);
		if (!tns || !tns->net)
			return 1;
		tns->net->has_locked = tns->net->locked = true;
		char name[64];
		img_name(IMG_NS, pid, name, sizeof(name));
		unlinkat(d.dfd, name, 0);
		ret = img_write_msg(&d, IMG_NS, pid, &tns->base) ? 1 : 0;
		protobuf_c_message_free_unpacked(&tns->base, NULL);
	} else if (!strcmp(argv[3], "ns-joined") && argc == 5) {
		TaskNs *tns = img_read_msg(d.dfd, IMG_NS, pid);
		if (!tns || !tns->n_joined)
			return 1;
		for (size_t j = 0; j < tns->n_joined; j++) {
			tns->joined[j]->has_pid = true;
			tns->joined[j]->pid = atoi(argv[4]);
		}
		char name[64];
		img_name(IMG_NS, pid, name, sizeof(name));
		unlinkat(d.dfd, name, 0);
		ret = img_write_msg(&d, IMG_NS, pid, &tns->base) ? 1 : 0;
		protobuf_c_message_free_unpacked(&tns->base, NULL);
	} else if (!strcmp(argv[3], "netlock") && argc == 9) {
		NetLock nl = NET_LOCK__INIT;
		NetLockConn c = NET_LOCK_CONN__INIT, *pc = &c;
		struct in_addr la, ra;
		if (inet_pton(AF_INET, argv[5], &la) != 1 || inet_pton(AF_INET, argv[7], &ra) != 1)
			return 2;
		c.laddr = (ProtobufCBinaryData){ 4, (uint8_t *)&la };
		c.raddr = (ProtobufCBinaryData){ 4, (uint8_t *)&ra };
		c.lport = (uint32_t)atoi(argv[6]);
		c.rport = (uint32_t)atoi(argv[8]);
		nl.table = argv[4];
		nl.n_conns = 1;
		nl.conns = &pc;
		unlinkat(d.dfd, "netlock.img", 0);
		ret = img_write_msg(&d, IMG_NETLOCK, 0, &nl.base) ? 1 : 0;
	} else if (!strcmp(argv[3], "cgns-root") && argc == 5) {
		/* the task now claims to have created a cgroup namespace rooted at ARG */
		Core *c = img_read_msg(d.dfd, IMG_CORE, pid);
		if (!c)
			return 1;
		char name[64];
		img_name(IMG_NS, pid, name, sizeof(name));
		TaskNs *tns = faccessat(d.dfd, name, F_OK, 0) == 0 ? img_read_msg(d.dfd, IMG_NS, pid)
								     : calloc(1, sizeof(*tns));
		if (!tns)
			return 1;
		if (!tns->base.descriptor)
			task_ns__init(tns);
		if (tns->cgroupns)
			protobuf_c_message_free_unpacked(&tns->cgroupns->base, NULL);
		CgroupNs *ns = tns->cgroupns = malloc(sizeof(*ns));
		CgroupNsRoot *r = malloc(sizeof(*r));
		if (!ns || !r)
			return 1;
		cgroup_ns__init(ns);
		cgroup_ns_root__init(r);
		ns->id = c->ns ? c->ns->cgroup : 1;
		ns->roots = malloc(sizeof(*ns->roots));
		r->controllers = strdup("");
		r->root = strdup(argv[4]);
		if (!ns->roots || !r->controllers || !r->root)
			return 1;
		ns->roots[0] = r;
		ns->n_roots = 1;
		unlinkat(d.dfd, name, 0);
		ret = img_write_msg(&d, IMG_NS, pid, &tns->base) ? 1 : 0;
		protobuf_c_message_free_unpacked(&tns->base, NULL);
		protobuf_c_message_free_unpacked(&c->base, NULL);
	} else if (!strcmp(argv[3], "lock") && argc == 6) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		long n = edit_locks(f, argv[4], strtoll(argv[5], NULL, 0));
		if (n < 0)
			return 2;
		ret = put_files(&d, pid, f, n > 0);

	} else if (!strcmp(argv[3], "inotify") && argc == 6) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		size_t n = 0;
		for (size_t i = 0; i < f->n_files; i++) {
			InotifyData *in = f->files[i]->inotify;
			if (!in || in->n_watches < 2)
				continue;
			n++;
			if (!strcmp(argv[4], "wd")) {
				in->watches[in->n_watches - 1]->wd = (int32_t)strtol(argv[5], NULL, 0);
			} else if (!strcmp(argv[4], "same-path")) {
				free(in->watches[1]->path);
				in->watches[1]->path = strdup(in->watches[0]->path);
			} else {
				return 2;
			}
		}
		ret = put_files(&d, pid, f, n);
	} else if (!strcmp(argv[3], "unix-sk") && argc == 6) {
		Files *f = img_read_msg(d.dfd, IMG_FILES, pid);
		if (!f)
			return 1;
		long v = strtol(argv[5], NULL, 0);
		size_t n = 0;
		for (size_t i = 0; i < f->n_files; i++) {
			UnixSk *u = f->files[i]->unix_sk;
			if (!u)
				continue;
			n++;
			if (!strcmp(argv[4], "state")) {
				u->has_state = true;
				u->state = (uint32_t)v;
			} else if (!strcmp(argv[4], "peek-off")) {
				u->has_peek_off = true;
				u->peek_off = (int32_t)v;
			} else if (!strcmp(argv[4], "backlog")) {
				u->backlog = (uint32_t)v;
			} else {
				return 2;
			}
		}
		ret = put_files(&d, pid, f, n);
	}
	close(d.dfd);
	return ret;
}
