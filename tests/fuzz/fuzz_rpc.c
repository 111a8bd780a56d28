/* libFuzzer target: the RPC decoder of src/rpc/proto.c, what `stasis swrk` runs on every
 * packet a client sends before any handler sees it. Input: one packet. rpc_decode()
 * either refuses it with a reason or returns a request whose every string and repeated
 * field is within bounds; then rpc_opts_check() judges its options for a dump and for a
 * restore, which must end with 0 or a reason. Built and run by tests/fuzz/build.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rpc/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (log_init("/dev/null", LOG_ERR))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	RpcRequest *q = rpc_decode(data, size, err, sizeof(err));

	if (!q) {
		if (!err[0])
			abort(); /* a refusal always says why */
		return 0;
	}
	if (q->opts) {
		for (int t = RPC_TYPE__RPC_DUMP; t <= RPC_TYPE__RPC_RESTORE; t++) {
			int r = rpc_opts_check(q->opts, (RpcType)t, err, sizeof(err));
			if (r && (r > 0 || !err[0]))
				abort();
		}
		for (size_t i = 0; i < q->opts->n_ext_mnt; i++)
			if (strlen(q->opts->ext_mnt[i]->key) > RPC_MAX_STR)
				abort();
	}
	rpc_request__free_unpacked(q, NULL);
	return 0;
}
