/* `stasis page-server -D DIR --port PORT`: receive the images of `dump --page-server`
 * (src/image/remote.h). An image sent without a name goes into DIR and the server exits
 * once it is in (CRIU's page server: one per dump); images sent with a name (`stasis
 * migrate`: the pre-copy passes, then the dump) go to DIR/NAME, and the server exits after
 * the dump's. Connections are served one after the other. Any image that fails ends the
 * server with status 1 (nothing of that image is left in DIR). */
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "image/remote.h"

static void ps_usage(FILE *f)
{
	fprintf(f, "usage: stasis page-server -D DIR --port PORT [--address ADDR] [--serve] [-v]\n"
		   "                          [-o LOGFILE]\n"
		   "  Receive the images `stasis dump --page-server` (or `stasis migrate`) sends.\n"
		   "  -D, --images-dir DIR  where they go (an unnamed image: DIR itself)\n"
		   "      --port PORT      the TCP port to listen on (0: any, printed)\n"
		   "      --address ADDR   the address to listen on (default: all)\n"
		   "      --serve          serve the images in DIR (and their parents inside it)\n"
		   "                       to `stasis restore --page-server` instead, lazy or not,\n"
		   "                       each connection in a process of its own, until killed\n"
		   "  Prints `listening on ADDR:PORT` once it listens and `image PATH` for every\n"
		   "  image it has put in place; exits 0 after an unnamed image or a migration's\n"
		   "  final dump, 1 when an image failed.\n");
}

static int listen_on(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
			*res, *ai;
	int e = getaddrinfo(addr, port, &hints, &res), fd = -1, ret = -EADDRNOTAVAIL;
	if (e) {
		pr_err("page server: %s:%s: %s", addr ? addr : "*", port, gai_strerror(e));
		return -EINVAL;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		int one = 1, zero = 0;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !addr) /* all: IPv4 too */
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4) < 0) {
			ret = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return pr_errno(ret, "page server: listen on %s:%s", addr ? addr : "*", port);
	return fd;
}

static void print_listening(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
	printf("listening on %s%s%s:%s\n", ss.ss_family == AF_INET6 ? "[" : "", host,
	       ss.ss_family == AF_INET6 ? "]" : "", serv);
	fflush(stdout);
}

/* --serve: every connection a read session in a process of its own (a lazy restore
 * reads from two: stasis and its lazy page server), which dies with the server. Only a
 * failure to accept ends it. */
static int serve_images(int lfd, const char *dir)
{
	signal(SIGCHLD, SIG_IGN); /* sessions reaped by the kernel */
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return pr_perror("page server: accept");
		}
		pid_t me = getpid(), p = fork();
		if (p < 0) {
			pr_perror("page server: fork for a connection");
			close(cfd);
			continue;
		}
		if (!p) {
			close(lfd);
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != me)
				_exit(1);
			int ret = ps_serve_read_conn(cfd, dir);
			log_close();
			_exit(ret ? 1 : 0);
		}
		close(cfd);
	}
}

int cmd_page_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "serve", no_argument, NULL, 's' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *addr = NULL, *port = NULL, *logfile = NULL;
	int verbose = 0, c;
	bool serve = false;
	long long v;

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:o:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			if (parse_int(optarg, 0, 65535, &v)) {
				fprintf(stderr, "stasis page-server: invalid --port '%s'\n", optarg);
				return 2;
			}
			port = optarg;
			break;
		case 's':
			serve = true;
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			ps_usage(stdout);
			return 0;
		default:
			ps_usage(stderr);
			return 2;
		}
	}
	if (!dir || !port || optind != argc) {
		fprintf(stderr, "stasis page-server: -D DIR and --port PORT are required\n");
		ps_usage(stderr);
		return 2;
	}
	if (cli_log_init("page-server", logfile, verbose))
		return 2;
	log_set_stage("page-server");
	int lfd = listen_on(addr, port), ret = lfd < 0 ? lfd : 0;
	if (lfd >= 0)
		print_listening(lfd);
	if (!ret && serve)
		ret = serve_images(lfd, dir);
	while (!ret && !serve) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			ret = pr_perror("page server: accept");
			break;
		}
		char done[4096];
		uint32_t flags = 0;
		ret = ps_serve_conn(cfd, dir, &flags, done, sizeof(done));
		close(cfd);
		if (ret)
			break;
		printf("image %s\n", done);
		fflush(stdout);
		if (!strcmp(done, dir) || (flags & PS_F_FINAL))
			break;
	}
	if (lfd >= 0)
		close(lfd);
	if (ret)
		cli_report_failure("page-server");
	log_close();
	return ret ? 1 : 0;
}
