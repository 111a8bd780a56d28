/* What the pidfd tests share: PIDFD_GET_INFO (6.13; exit information 6.15), newer than
 * the installed headers. */
#ifndef STASIS_TEST_PIDFDLIB_H
#define STASIS_TEST_PIDFDLIB_H

#include <stdint.h>
#include <sys/ioctl.h>

struct pidfd_info {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
	uint32_t coredump_mask, spare;
};
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info)
#define PIDFD_INFO_CGROUPID (1UL << 2)
#define PIDFD_INFO_EXIT (1UL << 3)

#endif
