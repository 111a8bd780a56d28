/* Writes seed inputs for fuzz_image into the directory argv[1]: for each metadata kind, a
 * small valid message as a framed payload (mode bit set) and as a whole image file; and,
 * if argv[2] is given, seeds for fuzz_blob there: blobs written with the real writer (a
 * buffer, a blob with holes, an empty one), each reference with the whole blobs.img
 * (mode 0) and with the payload alone (mode 3: framed, checksums recomputed). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "image/blob.h"
#include "image/img.h"

static const enum img_kind kinds[] = { IMG_INVENTORY, IMG_CORE, IMG_MM, IMG_FILES, IMG_NS };

static void put(const char *dir, const char *name, uint8_t sel, const void *a, size_t alen,
		const void *b, size_t blen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&sel, 1, 1, f) != 1 || (alen && fwrite(a, alen, 1, f) != 1) ||
	    (blen && fwrite(b, blen, 1, f) != 1) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void seed(const char *dir, int idx, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(len + 1);
	struct img_hdr h;
	char name[64];
	if (!p)
		exit(1);
	protobuf_c_message_pack(m, p);
	img_fill_hdr(&h, kinds[idx], len, img_hash(p, len));
	snprintf(name, sizeof(name), "%s-payload", img_kind_get(kinds[idx])->name);
	put(dir, name, (uint8_t)(0x80 | idx), p, len, NULL, 0);
	snprintf(name, sizeof(name), "%s-file", img_kind_get(kinds[idx])->name);
	put(dir, name, (uint8_t)idx, &h, sizeof(h), p, len);
	free(p);
}

static void blob_seed(const char *dir, const char *name, uint8_t mode, const BlobRef *ref,
		      const uint8_t *file, size_t flen)
{
	size_t rl = blob_ref__get_packed_size(ref);
	uint8_t *p = malloc(2 + rl);
	if (!p)
		exit(1);
	p[0] = (uint8_t)rl;
	p[1] = (uint8_t)(rl >> 8);
	blob_ref__pack(ref, p + 2);
	put(dir, name, mode, p, 2 + rl, file, flen);
	free(p);
}

static void blob_seeds(const char *dir)
{
	char tmp[] = "/tmp/stasis-mkseeds.XXXXXX", img[64], path[128];
	struct img_dir d;
	static uint8_t data[3000];
	BlobRef *refs[3] = { NULL, NULL, NULL };
	if (!mkdtemp(tmp))
		exit(1);
	snprintf(img, sizeof(img), "%s/img", tmp);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	if (img_dir_begin(&d, img, false) ||
	    blob_put_buf(&d, data, sizeof(data), "seed buffer", &refs[0]) ||
	    blob_begin(&d, "seed holes") || blob_write(&d, "abc", 3) || blob_hole(&d, 5000) ||
	    blob_write(&d, data, 100) || blob_hole(&d, 7) || blob_end(&d, &refs[1]) ||
	    blob_put_buf(&d, NULL, 0, "seed empty", &refs[2]) || img_dir_commit(&d))
		exit(1);
	img_dir_close(&d);
	snprintf(path, sizeof(path), "%s/%s", img, BLOB_FILE);
	size_t flen;
	uint8_t *file = (uint8_t *)read_file_at(AT_FDCWD, path, 1 << 20, &flen);
	if (!file || flen < IMG_BLOB_HDR_SIZE)
		exit(1);
	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof(name), "blob%d-file", i);
		blob_seed(dir, name, 0, refs[i], file, flen);
		snprintf(name, sizeof(name), "blob%d-payload", i);
		blob_seed(dir, name, 3, refs[i], file + IMG_BLOB_HDR_SIZE, flen - IMG_BLOB_HDR_SIZE);
		blob_ref__free_unpacked(refs[i], NULL);
	}
	free(file);
	unlink(path);
	rmdir(img);
	rmdir(tmp);
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	if (argc == 3)
		blob_seeds(argv[2]);
	int32_t pids[2] = { 1, 2 };
	Inventory inv = INVENTORY__INIT;
	inv.img_version = IMG_VERSION;
	inv.root_pid = 1;
	inv.n_pids = 2;
	inv.pids = pids;
	inv.kernel = (char *)"6.18";
	seed(argv[1], 0, &inv.base);

	Creds cr = CREDS__INIT;
	uint32_t groups[2] = { 4, 27 };
	cr.n_groups = 2;
	cr.groups = groups;
	uint8_t regs[16] = { 1, 2, 3 };
	Thread th = THREAD__INIT, *thp[1] = { &th };
	th.tid = 1;
	th.gpregs.len = sizeof(regs);
	th.gpregs.data = regs;
	th.xsave.len = sizeof(regs);
	th.xsave.data = regs;
	SigAction sa = SIG_ACTION__INIT, *sap[1] = { &sa };
	sa.sig = 10;
	sa.handler = 0x401000;
	PosixTimer pt = POSIX_TIMER__INIT, *ptp[1] = { &pt };
	pt.id = 0;
	pt.signo = 14;
	Core core = CORE__INIT;
	core.pid = 1;
	core.comm = (char *)"a) b (c";
	core.n_threads = 1;
	core.threads = thp;
	core.n_sigactions = 1;
	core.sigactions = sap;
	core.n_posix_timers = 1;
	core.posix_timers = ptp;
	core.creds = &cr;
	core.cwd = (char *)"/";
	core.root = (char *)"/";
	seed(argv[1], 1, &core.base);

	/* contents in blobs.img: an unlinked file, a memfd, a mapped deleted file */
	uint64_t ext[2] = { 0, 3 }, xxh[1] = { 0x1234 };
	BlobRef br = BLOB_REF__INIT;
	br.size = 3;
	br.n_extents = 2;
	br.extents = ext;
	br.n_chunk_xxh = 1;
	br.chunk_xxh = xxh;
	Vma v = VMA__INIT, *vp[1] = { &v };
	v.start = 0x1000;
	v.end = 0x2000;
	v.kind = VMA_KIND__VMA_FILE;
	v.path = (char *)"/bin/x";
	v.has_deleted = 1;
	v.deleted = 1;
	v.ghost = &br;
	PageRun pr = PAGE_RUN__INIT, *prp[1] = { &pr };
	pr.vaddr = 0x1000;
	pr.nr_pages = 1;
	uint64_t auxv[2] = { 6, 4096 };
	Mm mm = MM__INIT;
	mm.n_vmas = 1;
	mm.vmas = vp;
	mm.n_pages = 1;
	mm.pages = prp;
	mm.n_auxv = 2;
	mm.auxv = auxv;
	seed(argv[1], 2, &mm.base);

	PipeData pd = PIPE_DATA__INIT;
	pd.has_data = 1;
	pd.data.len = 3;
	pd.data.data = regs;
	FileDesc fd = FILE_DESC__INIT, *fdp[17] = { &fd };
	fd.kind = FILE_KIND__FILE_PIPE;
	fd.pipe = &pd;
	/* a regular file's kinds with a message of their own: unlinked, memfd */
	UnlinkedFile ul = UNLINKED_FILE__INIT;
	ul.blob = &br;
	ul.mode = 0600;
	ul.has_uid = ul.has_gid = 1;
	ul.uid = 1000;
	ul.gid = 1000;
	FileDesc fd_ul = FILE_DESC__INIT;
	fd_ul.id = 2;
	fd_ul.path = (char *)"/tmp/gone";
	fd_ul.has_size = 1;
	fd_ul.size = 3;
	fd_ul.unlinked = &ul;
	fdp[1] = &fd_ul;
	MemfdData mfd = MEMFD_DATA__INIT;
	mfd.name = (char *)"buf";
	mfd.blob = &br;
	mfd.has_mode = 1;
	mfd.mode = 0600;
	mfd.has_seals = 1;
	mfd.seals = 1;
	FileDesc fd_mfd = FILE_DESC__INIT;
	fd_mfd.id = 3;
	fd_mfd.path = (char *)"/memfd:buf";
	fd_mfd.has_size = 1;
	fd_mfd.size = 3;
	fd_mfd.memfd = &mfd;
	fdp[2] = &fd_mfd;
	/* a pty pair (master with its state, a slave) and /dev/tty */
	uint8_t tio[44] = { 0 };
	TtyData tm = TTY_DATA__INIT, ts = TTY_DATA__INIT, tt = TTY_DATA__INIT;
	tm.master = 1;
	tm.index = 3;
	tm.has_termios = 1;
	tm.termios.len = sizeof(tio);
	tm.termios.data = tio;
	tm.has_rows = tm.has_cols = 1;
	tm.rows = 24;
	tm.cols = 80;
	tm.has_in_data = tm.has_out_data = 1;
	tm.in_data.len = tm.out_data.len = 3;
	tm.in_data.data = tm.out_data.data = regs;
	tm.has_slave_state = 1;
	tm.slave_state = 1;
	tm.has_sid = tm.has_sid_self = tm.has_fg_pgrp = 1;
	tm.sid = tm.sid_self = 5;
	tm.fg_pgrp = 6;
	ts.index = 3;
	tt.has_devtty = tt.devtty = 1;
	FileDesc fd_tm = FILE_DESC__INIT, fd_ts = FILE_DESC__INIT, fd_tt = FILE_DESC__INIT;
	fd_tm.id = 4;
	fd_tm.kind = fd_ts.kind = fd_tt.kind = FILE_KIND__FILE_TTY;
	fd_tm.flags = fd_ts.flags = fd_tt.flags = 2;
	fd_tm.link = (char *)"/dev/ptmx";
	fd_tm.tty = &tm;
	fd_ts.id = 5;
	fd_ts.link = (char *)"/dev/pts/3";
	fd_ts.tty = &ts;
	fd_tt.id = 6;
	fd_tt.link = (char *)"/dev/tty";
	fd_tt.tty = &tt;
	fdp[3] = &fd_tm;
	fdp[4] = &fd_ts;
	fdp[5] = &fd_tt;
	/* a TCP connection with both queues and its repair state */
	uint8_t lo4[4] = { 127, 0, 0, 1 };
	InetAddr src = INET_ADDR__INIT, dst = INET_ADDR__INIT;
	src.addr.len = dst.addr.len = 4;
	src.addr.data = dst.addr.data = lo4;
	src.port = 40000;
	dst.port = 80;
	TcpRepair rep = TCP_REPAIR__INIT;
	rep.snd_seq = 1000;
	rep.rcv_seq = 5000;
	rep.has_sndq = rep.has_rcvq = rep.has_unsent = 1;
	rep.sndq.len = rep.rcvq.len = 3;
	rep.sndq.data = rep.rcvq.data = regs;
	rep.unsent = 1;
	rep.mss = 65483;
	rep.has_snd_wscale = rep.has_rcv_wscale = 1;
	rep.snd_wscale = rep.rcv_wscale = 7;
	rep.has_tstamp = rep.tstamp = 1;
	TcpSk tcp = TCP_SK__INIT;
	tcp.ino = 77;
	tcp.family = 2;
	tcp.state = 1;
	tcp.src = &src;
	tcp.dst = &dst;
	tcp.repair = &rep;
	FileDesc fd_tcp = FILE_DESC__INIT;
	fd_tcp.id = 7;
	fd_tcp.kind = FILE_KIND__FILE_TCP_SK;
	fd_tcp.tcp_sk = &tcp;
	fdp[6] = &fd_tcp;
	/* datagram sockets: UDP with a queued datagram, netlink, packet */
	InetAddr ia_b = INET_ADDR__INIT, ia_s = INET_ADDR__INIT;
	ia_b.addr.len = ia_s.addr.len = 4;
	ia_b.addr.data = ia_s.addr.data = lo4;
	ia_b.port = 5000;
	ia_s.port = 6000;
	DgramMsg dm = DGRAM_MSG__INIT, *dmp[1] = { &dm };
	dm.data.len = 3;
	dm.data.data = regs;
	dm.src = &ia_s;
	dm.dst = &ia_b;
	InetDgramSk ud = INET_DGRAM_SK__INIT;
	ud.family = 2;   /* AF_INET */
	ud.type = 2;     /* SOCK_DGRAM */
	ud.protocol = 17;
	ud.bound = &ia_b;
	ud.n_queue = 1;
	ud.queue = dmp;
	FileDesc fd_udp = FILE_DESC__INIT;
	fd_udp.id = 8;
	fd_udp.kind = FILE_KIND__FILE_INET_DGRAM;
	fd_udp.inet_dgram = &ud;
	fdp[7] = &fd_udp;
	uint32_t nl_groups[1] = { 1 };
	NetlinkSk nls = NETLINK_SK__INIT;
	nls.type = 3;    /* SOCK_RAW */
	nls.has_portid = 1;
	nls.portid = 1234;
	nls.n_groups = 1;
	nls.groups = nl_groups;
	FileDesc fd_nl = FILE_DESC__INIT;
	fd_nl.id = 9;
	fd_nl.kind = FILE_KIND__FILE_NETLINK;
	fd_nl.netlink = &nls;
	fdp[8] = &fd_nl;
	PacketMc pmc = PACKET_MC__INIT, *pmcp[1] = { &pmc };
	pmc.ifindex = 1;
	pmc.type = 1;
	PacketSk pks = PACKET_SK__INIT;
	pks.type = 2;
	pks.protocol = 0xb588;
	pks.has_ifindex = 1;
	pks.ifindex = 1;
	pks.n_mclist = 1;
	pks.mclist = pmcp;
	FileDesc fd_pk = FILE_DESC__INIT;
	fd_pk.id = 10;
	fd_pk.kind = FILE_KIND__FILE_PACKET;
	fd_pk.packet = &pks;
	fdp[9] = &fd_pk;
	/* a bound datagram socket with a queued message from a named sender carrying the
	 * pipe in flight */
	UnixSk us = UNIX_SK__INIT;
	uint32_t rid[1] = { 1 };
	UnixRights ur = UNIX_RIGHTS__INIT, *urp[1] = { &ur };
	ProtobufCBinaryData msg = { 3, regs }, from = { 7, (uint8_t *)"/tmp/b" };
	us.ino = 10;
	us.type = 2;
	us.has_name = us.has_state = 1;
	us.name.len = 7;
	us.name.data = (uint8_t *)"/tmp/a";
	us.state = 7;
	us.n_msgs = us.n_msg_names = 1;
	us.msgs = &msg;
	us.msg_names = &from;
	ur.files = rid;
	ur.n_files = 1;
	us.n_rights = 1;
	us.rights = urp;
	FileDesc fd_us = FILE_DESC__INIT;
	fd_us.id = 11;
	fd_us.kind = FILE_KIND__FILE_UNIX_SK;
	fd_us.unix_sk = &us;
	fdp[10] = &fd_us;
	/* pidfds: of a task of the tree (a thread pidfd), of a reaped process (exit 5) */
	PidfdData pdl = PIDFD_DATA__INIT, pdr = PIDFD_DATA__INIT;
	pdl.has_target = 1;
	pdl.target = 42;
	pdr.has_exit_status = 1;
	pdr.exit_status = 5 << 8;
	FileDesc fd_pl = FILE_DESC__INIT, fd_pr = FILE_DESC__INIT;
	fd_pl.id = 12;
	fd_pr.id = 13;
	fd_pl.kind = fd_pr.kind = FILE_KIND__FILE_PIDFD;
	fd_pl.flags = 02 | 0200;
	fd_pr.flags = 02 | 04000;
	fd_pl.pidfd = &pdl;
	fd_pr.pidfd = &pdr;
	fdp[11] = &fd_pl;
	fdp[12] = &fd_pr;
	/* an inotify with two watches, a fanotify with a mount mark */
	InotifyWatch iw1 = INOTIFY_WATCH__INIT, iw2 = INOTIFY_WATCH__INIT;
	InotifyWatch *iwp[2] = { &iw1, &iw2 };
	iw1.wd = 1;
	iw1.mask = 0x2;
	iw1.path = (char *)"/tmp";
	iw2.wd = 16;
	iw2.mask = 0x80000100;
	iw2.path = (char *)"/etc";
	InotifyData ind = INOTIFY_DATA__INIT;
	ind.n_watches = 2;
	ind.watches = iwp;
	FileDesc fd_in = FILE_DESC__INIT;
	fd_in.id = 14;
	fd_in.kind = FILE_KIND__FILE_INOTIFY;
	fd_in.inotify = &ind;
	fdp[13] = &fd_in;
	FanotifyMark fm = FANOTIFY_MARK__INIT, *fmp[1] = { &fm };
	fm.type = 1;
	fm.mask = 0x8;
	fm.path = (char *)"/";
	FanotifyData fan = FANOTIFY_DATA__INIT;
	fan.event_flags = 0x8000;
	fan.n_marks = 1;
	fan.marks = fmp;
	FileDesc fd_fan = FILE_DESC__INIT;
	fd_fan.id = 15;
	fd_fan.kind = FILE_KIND__FILE_FANOTIFY;
	fd_fan.fanotify = &fan;
	fdp[14] = &fd_fan;
	/* a file of a task's /proc directory (a task of the tree, two pid levels) */
	ProcPidData ppd = PROC_PID_DATA__INIT;
	int32_t ppns[2] = { 42, 7 };
	ppd.root_len = 5;
	ppd.n_nspid = 2;
	ppd.nspid = ppns;
	ppd.has_target = 1;
	ppd.target = 42;
	ppd.start_time = 123456;
	FileDesc fd_pp = FILE_DESC__INIT;
	fd_pp.id = 16;
	fd_pp.kind = FILE_KIND__FILE_PROCPID;
	fd_pp.path = (char *)"/proc/42/status";
	fd_pp.procpid = &ppd;
	fdp[15] = &fd_pp;
	/* an io_uring of 8 entries: a registered buffer and an empty slot, a file table */
	static uint8_t sqes[8 * 64], cqes[16 * 16], sqa[8 * 4];
	IoUringBuf ub1 = IO_URING_BUF__INIT, ub2 = IO_URING_BUF__INIT, *ubp[2] = { &ub1, &ub2 };
	ub1.addr = 0x10000;
	ub1.len = 4096;
	IoUringData iou = IO_URING_DATA__INIT;
	iou.sq_entries = 8;
	iou.cq_entries = 16;
	iou.owner = 42;
	iou.sq_head = iou.cq_tail = 1000;
	iou.sq_tail = 1002;
	iou.cq_head = 997;
	iou.sqes.len = sizeof(sqes);
	iou.sqes.data = sqes;
	iou.cqes.len = sizeof(cqes);
	iou.cqes.data = cqes;
	iou.has_sq_array = 1;
	iou.sq_array.len = sizeof(sqa);
	iou.sq_array.data = sqa;
	iou.n_bufs = 2;
	iou.bufs = ubp;
	iou.has_files = 1;
	iou.files = 16;
	FileDesc fd_iou = FILE_DESC__INIT;
	fd_iou.id = 17;
	fd_iou.kind = FILE_KIND__FILE_IO_URING;
	fd_iou.io_uring = &iou;
	fdp[16] = &fd_iou;
	Fd e = FD__INIT, *ep[1] = { &e };
	Files files = FILES__INIT;
	files.n_files = 17;
	files.files = fdp;
	files.n_fds = 1;
	files.fds = ep;
	seed(argv[1], 3, &files.base);

	TaskNs tns = TASK_NS__INIT;
	UtsNs uts = UTS_NS__INIT;
	CgroupNs cg = CGROUP_NS__INIT;
	CgroupNsRoot root = CGROUP_NS_ROOT__INIT, *rootp[1] = { &root };
	uts.hostname = (char *)"ctr";
	uts.domainname = (char *)"(none)";
	root.controllers = (char *)"";
	root.root = (char *)"/a/b";
	cg.id = 7;
	cg.n_roots = 1;
	cg.roots = rootp;
	tns.uts = &uts;
	tns.cgroupns = &cg;
	tns.has_ns_last_pid = 1;
	tns.ns_last_pid = 300;
	seed(argv[1], 4, &tns.base);
	return 0;
}
