/* The restore's checks of the seccomp images (src/task/seccomp.c, the validate hook of
 * its row): seccomp.img and each thread's chain are untrusted input. */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "cr/resource.h"
#include "unit.h"

static char dir[] = "/tmp/stasis-unit-seccomp-XXXXXX";
static int dfd = -1, proc_dfd = -1;

static struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
static struct sock_filter notif[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF | 1) };
static struct sock_filter ret_a[] = { BPF_STMT(BPF_RET | BPF_A, 0) };
static struct sock_filter big[4097];

static SeccompFilter filt[3];
static SeccompFilter *filtp[3] = { &filt[0], &filt[1], &filt[2] };
static SeccompFilters table;
static ThreadSeccomp ts[3];
static Thread th[3];
static Thread *thp[3] = { &th[0], &th[1], &th[2] };
static Core core;
static uint32_t chains[3][16];

static void set_prog(SeccompFilter *f, const void *prog, size_t bytes, uint32_t flags)
{
	f->prog.data = (uint8_t *)(uintptr_t)prog;
	f->prog.len = bytes;
	f->has_flags = true;
	f->flags = flags;
}

/* A valid tree: 2 threads sharing filter 0, then each its own (1, 2). */
static void reset(void)
{
	seccomp_filters__init(&table);
	for (int i = 0; i < 3; i++) {
		seccomp_filter__init(&filt[i]);
		set_prog(&filt[i], allow, sizeof(allow), i == 1 ? SECCOMP_FILTER_FLAG_LOG : 0);
		thread_seccomp__init(&ts[i]);
		thread__init(&th[i]);
		th[i].tid = 42 + i;
		th[i].seccomp = &ts[i];
		ts[i].mode = SECCOMP_MODE_FILTER;
		ts[i].chain = chains[i];
		ts[i].n_chain = 2;
		chains[i][0] = 0;
		chains[i][1] = (uint32_t)i % 3;
	}
	chains[0][1] = 1;
	chains[1][1] = 2;
	table.filters = filtp;
	table.n_filters = 3;
	core__init(&core);
	core.pid = 42;
	core.threads = thp;
	core.n_threads = 2;
}

/* seccomp.img written afresh, then the row's validate hook; its -errno. */
static int validate(bool write_table)
{
	struct img_dir d = { .dfd = dfd };
	unlinkat(dfd, "seccomp.img", 0);
	if (write_table && img_write_msg(&d, IMG_SECCOMP, 0, &table.base))
		return -999;
	struct rst_ctx c = { .pid = 42,
			     .core = &core,
			     .img_dfd = dfd,
			     .proc_dfd = proc_dfd,
			     .stasis_pid = getpid() };
	int ret = seccomp_resource.validate(&c);
	seccomp_resource.release(&c);
	log_reset_first_error();
	return ret;
}

static void test_valid(void)
{
	reset();
	CHECK_EQ(validate(true), 0);
	/* strict mode needs no seccomp.img */
	reset();
	ts[0].mode = ts[1].mode = SECCOMP_MODE_STRICT;
	ts[0].n_chain = ts[1].n_chain = 0;
	CHECK_EQ(validate(false), 0);
	/* filter mode does */
	reset();
	CHECK(validate(false) < 0);
}

static void test_filters(void)
{
	reset();
	set_prog(&filt[2], allow, 0, 0);
	CHECK_EQ(validate(true), -EINVAL); /* empty */
	reset();
	set_prog(&filt[2], big, sizeof(big), 0);
	CHECK_EQ(validate(true), -EINVAL); /* 4097 instructions */
	reset();
	set_prog(&filt[2], big, sizeof(big) - sizeof(big[0]), 0);
	CHECK_EQ(validate(true), 0); /* 4096 */
	reset();
	set_prog(&filt[2], allow, sizeof(allow) - 1, 0);
	CHECK_EQ(validate(true), -EINVAL); /* not whole instructions */
	reset();
	set_prog(&filt[2], allow, sizeof(allow), SECCOMP_FILTER_FLAG_NEW_LISTENER);
	CHECK_EQ(validate(true), -EINVAL); /* unknown flag */
	reset();
	set_prog(&filt[2], notif, sizeof(notif), 0);
	CHECK_EQ(validate(true), -EINVAL); /* user notification */
	reset();
	set_prog(&filt[2], ret_a, sizeof(ret_a), 0);
	CHECK_EQ(validate(true), -EINVAL); /* computed return */
	reset();
	table.n_filters = 0;
	CHECK_EQ(validate(true), -EINVAL);
}

static void test_chains(void)
{
	reset();
	chains[1][1] = 3;
	CHECK_EQ(validate(true), -EINVAL); /* no such filter */
	reset();
	ts[1].mode = 3;
	CHECK_EQ(validate(true), -EINVAL);
	reset();
	ts[1].mode = SECCOMP_MODE_STRICT;
	CHECK_EQ(validate(true), -EINVAL); /* strict with filters */
	reset();
	ts[1].n_chain = 0;
	CHECK_EQ(validate(true), -EINVAL); /* filter mode without one */
	reset();
	/* 9 filters of 4096 instructions: over the kernel's 32768 a path */
	set_prog(&filt[2], big, sizeof(big) - sizeof(big[0]), 0);
	ts[1].n_chain = 9;
	for (int k = 0; k < 9; k++)
		chains[1][k] = 2;
	CHECK_EQ(validate(true), -EINVAL);
	ts[1].n_chain = 7;
	CHECK_EQ(validate(true), 0);
}

static void test_sharing(void)
{
	/* threads 1 and 2 share filter 0, thread 0 has none: not rebuildable */
	reset();
	core.n_threads = 3;
	th[0].seccomp = NULL;
	chains[2][1] = 1;
	CHECK_EQ(validate(true), -EOPNOTSUPP);
	/* ... and they share [0] while thread 0 has [0, 1]: the same */
	reset();
	core.n_threads = 3;
	ts[1].n_chain = ts[2].n_chain = 2;
	chains[1][1] = chains[2][1] = 2;
	chains[0][1] = 1;
	CHECK_EQ(validate(true), -EOPNOTSUPP);
	/* every thread shares [0], then each its own: fine */
	reset();
	core.n_threads = 3;
	chains[2][1] = 1;
	chains[1][1] = 2;
	chains[0][1] = 0;
	CHECK_EQ(validate(true), 0);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR))
		return 1;
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		big[i] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	proc_dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		UNIT_SKIP("no temporary directory");
	RUN(test_valid);
	RUN(test_filters);
	RUN(test_chains);
	RUN(test_sharing);
	unlinkat(dfd, "seccomp.img", 0);
	rmdir(dir);
	return unit_done();
}
