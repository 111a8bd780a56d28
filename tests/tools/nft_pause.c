/* LD_PRELOAD shim for tests/checks/netlock_*.py: stasis stops itself (SIGSTOP) right after
 * it installed a network lock, so that a check can look at the frozen, locked tree for as
 * long as it needs and then let the dump go on (SIGCONT). Active only with
 * STASIS_NFT_PAUSE=1 in the environment. Not part of stasis: a test tool. */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct nft_ctx;
int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf);

int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf)
{
	int (*real)(struct nft_ctx *, const char *) =
		(int (*)(struct nft_ctx *, const char *))dlsym(RTLD_NEXT, "nft_run_cmd_from_buffer");
	if (!real)
		abort();
	int ret = real(nft, buf);
	const char *on = getenv("STASIS_NFT_PAUSE");
	if (!ret && on && !strcmp(on, "1") && !strncmp(buf, "create table inet stasis-lock-", 30))
		raise(SIGSTOP);
	return ret;
}
