/* The stats files of a dump and a restore (stats-dump, stats-restore in the work
 * directory), as CRIU leaves them: runtimes read them (podman's --print-stats fails
 * without, and its checkpoint archive carries stats-dump). The file is CRIU's image
 * framing: the service-image magic and the stats magic (u32, little endian), the size of
 * the message (u32), one CriuStats message (rpc.proto). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "rpc/rpc.h"

/* CRIU's magic numbers of these files: a fact of the format readers check. */
#define CRIU_IMG_SERVICE_MAGIC 0x55105940u
#define CRIU_STATS_MAGIC 0x57093306u
#define STATS_HDR 12

ssize_t rpc_stats_encode(bool dump, const struct cr_stats *st, uint8_t *buf, size_t size)
{
	CriuStats s = CRIU_STATS__INIT;
	CriuDumpStats d = CRIU_DUMP_STATS__INIT;
	CriuRestoreStats r = CRIU_RESTORE_STATS__INIT;

	if (dump) {
		d.freezing_time = st->freezing_us;
		d.frozen_time = st->frozen_us;
		d.memdump_time = st->memdump_us;
		d.memwrite_time = st->memwrite_us;
		d.pages_scanned = st->pages_scanned;
		d.pages_skipped_parent = st->pages_skipped_parent;
		d.pages_written = st->pages_written;
		s.dump = &d;
	} else {
		r.forking_time = st->forking_us;
		r.restore_time = st->restore_us;
		r.has_pages_restored = true;
		r.pages_restored = st->pages_restored;
		s.restore = &r;
	}
	size_t n = criu_stats__get_packed_size(&s);
	if (n + STATS_HDR > size)
		return -ENOSPC;
	uint32_t hdr[3] = { htole32(CRIU_IMG_SERVICE_MAGIC), htole32(CRIU_STATS_MAGIC),
			    htole32((uint32_t)n) };
	memcpy(buf, hdr, sizeof(hdr));
	criu_stats__pack(&s, buf + STATS_HDR);
	return (ssize_t)(n + STATS_HDR);
}

CriuStats *rpc_stats_decode(const uint8_t *buf, size_t len)
{
	uint32_t hdr[3];

	if (len < STATS_HDR)
		return NULL;
	memcpy(hdr, buf, sizeof(hdr));
	if (le32toh(hdr[0]) != CRIU_IMG_SERVICE_MAGIC || le32toh(hdr[1]) != CRIU_STATS_MAGIC ||
	    le32toh(hdr[2]) > len - STATS_HDR)
		return NULL;
	return criu_stats__unpack(NULL, le32toh(hdr[2]), buf + STATS_HDR);
}

int rpc_write_stats(int dfd, bool dump, const struct cr_stats *st)
{
	const char *name = dump ? "stats-dump" : "stats-restore";
	uint8_t buf[256];
	char tmp[64];

	ssize_t n = rpc_stats_encode(dump, st, buf, sizeof(buf));
	if (n < 0)
		return pr_errno((int)n, "rpc: encode %s", name);
	/* written aside and renamed: a reader never sees half a file */
	snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return pr_perror("rpc: create %s", name);
	int ret = write_all(fd, buf, (size_t)n);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(dfd, tmp, dfd, name) < 0)
		ret = -errno;
	if (ret) {
		unlinkat(dfd, tmp, 0);
		return pr_errno(ret, "rpc: write %s", name);
	}
	return 0;
}
