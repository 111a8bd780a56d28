/* libFuzzer target: the privileged helper's request decoder (untrusted bytes from a
 * peer), its reply decoder, and the pure policy parsers (/etc/subuid text, pidfd
 * fdinfo). The first input byte is the number of fds "received" with the message.
 * Invariants: a refusal always says why and leaves the request zeroed; an accepted
 * request re-encodes to exactly the same bytes (the format is canonical); the policy
 * functions stay within their bounds. Built and run by tests/fuzz/build.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helper/policy.h"
#include "helper/proto.h"
#include "proc/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct helper_req req;
	static unsigned char out[HELPER_MAX_MSG];
	char why[256];

	if (size < 1)
		return 0;
	unsigned int nfds = data[0] % 3;
	const uint8_t *msg = data + 1;
	size_t len = size - 1;

	/* an exactly sized copy so that ASan sees any over-read */
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, msg, len);
	int r = helper_req_decode(copy, len, nfds, &req, why, sizeof(why));
	if (r) {
		if (!why[0] || memchr(why, '\0', sizeof(why)) == NULL)
			abort();
		for (size_t i = 0; i < sizeof(req); i++)
			if (((unsigned char *)&req)[i])
				abort();
	} else {
		ssize_t n = helper_req_encode(&req, out, sizeof(out));
		if (n != (ssize_t)len || memcmp(out, copy, len) || helper_req_nfds(&req) != nfds)
			abort();
		if (req.op == HELPER_OP_WRITE_ID_MAP) {
			const struct subid_range sub[] = { { 100000, 65536 }, { 165536, 10 } };
			bool used;
			(void)!idmap_permitted(req.u.idmap.r, req.u.idmap.nr, 1000, sub, 2, &used, why,
					       sizeof(why));
		}
	}

	struct helper_reply rep;
	if (helper_reply_decode(copy, len, &rep, why, sizeof(why)) == 0 &&
	    (strlen(rep.reason) > HELPER_REASON_MAX || rep.status > 0))
		abort();
	free(copy);

	char *text = malloc(len + 1);
	if (!text)
		return 0;
	memcpy(text, msg, len);
	text[len] = '\0';
	struct subid_range sr[16];
	int n = subid_parse(text, "user", 1000, sr, 16);
	if (n > 16)
		abort();
	for (int i = 0; i < n; i++)
		if (!sr[i].count || (uint64_t)sr[i].start + sr[i].count > (uint64_t)UINT32_MAX + 1)
			abort();
	if (n > 0)
		(void)subid_covers(sr, (size_t)n, sr[0].start, sr[0].count);
	int pid;
	if (proc_parse_pidfd_pid(text, &pid) == 0 && pid <= 0)
		abort();
	free(text);
	return 0;
}
