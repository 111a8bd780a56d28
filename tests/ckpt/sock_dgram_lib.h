/* Helpers of the datagram socket tests (sock_udp_*, sock_ping, sock_netlink_*,
 * sock_packet_*). */
#ifndef SOCK_DGRAM_LIB_H
#define SOCK_DGRAM_LIB_H

#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* lo up in the current network namespace (a fresh one has it down): 0, or -1 if it is
 * down and cannot be brought up. */
static inline int dg_lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = -1;
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		if (ifr.ifr_flags & IFF_UP)
			ret = 0;
		else {
			ifr.ifr_flags |= IFF_UP;
			ret = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0 ? 0 : -1;
		}
	}
	close(fd);
	return ret;
}

#endif
