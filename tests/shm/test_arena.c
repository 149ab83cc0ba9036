/* The shared arena: creation and sizes, memory tiers and the reasons for a fallback, bounds-checked offsets, process slots, fork, GONEX_* overrides. */
#include "harness.h"

#include "gx_build_config.h"

#define HUGE_SYS "/sys/kernel/mm/hugepages/hugepages-2048kB/"

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* 2 MiB pages a new hugetlb mapping could still reserve. */
static long huge_pages_available(void)
{
	long free_p = read_long(HUGE_SYS "free_hugepages");
	long resv = read_long(HUGE_SYS "resv_hugepages");
	if (free_p < 0 || resv < 0)
		return -1;
	return free_p - resv;
}

static gx_arena_info info_of(const gx_arena *a)
{
	gx_arena_info i;
	memset(&i, 0x5a, sizeof i);
	cr_assert_eq(gx_arena_info_get(a, &i), 0);
	return i;
}

/* tier, tier_name and page_size agree, size is whole pages. */
static void expect_consistent(const gx_arena_info *i, size_t asked)
{
	static const char *names[] = {"?", "hugetlb", "thp", "4k"};
	cr_assert(i->tier >= GX_MEM_HUGETLB && i->tier <= GX_MEM_4K, "tier %d", (int)i->tier);
	cr_assert_not_null(i->tier_name);
	cr_expect_str_eq(i->tier_name, names[i->tier]);
	cr_expect_eq(i->page_size, i->tier == GX_MEM_4K ? (size_t)4096 : 2 * MiB, "page size %zu for %s", i->page_size,
		     i->tier_name);
	cr_expect_geq(i->size, asked);
	cr_expect_eq(i->size % i->page_size, 0, "size %zu is whole pages of %zu", i->size, i->page_size);
	cr_expect(memchr(i->why, '\0', sizeof i->why) != NULL, "why is a terminated string");
}

/* ---- create, destroy, sizes ---- */

Test(arena, defaults_create_and_destroy)
{
	gx_arena_opts o;
	memset(&o, 0x7f, sizeof o);
	gx_arena_opts_init(&o);
	cr_expect_eq(o.size, 0);
	cr_expect_eq(o.tier, GX_MEM_AUTO);
	cr_expect_eq(o.numa, 1);
	cr_expect_eq(o.spin_ns, -1);

	clear_shm_env();
	gx_arena *a = NULL;
	cr_assert_eq(gx_arena_create(&a, NULL), 0, "NULL opts: the defaults");
	gx_arena_info i = info_of(a);
	expect_consistent(&i, 64 * MiB);
	cr_expect_geq(i.spin_ns, 0, "a built-in spin budget is in use");
	cr_expect_eq(gx_arena_destroy(a), 0);
	cr_expect_eq(gx_arena_destroy(NULL), -EINVAL);
}

Test(arena, bad_sizes_and_options_are_refused)
{
	clear_shm_env();
	gx_arena_opts o;
	gx_arena *a = (gx_arena *)0x1;
	gx_arena_opts_init(&o);
	cr_expect_eq(gx_arena_create(NULL, &o), -EINVAL);

	size_t too_big[] = {((size_t)1 << 40) + 1, (size_t)1 << 41, SIZE_MAX, SIZE_MAX - 4095};
	for (size_t k = 0; k < sizeof too_big / sizeof too_big[0]; k++) {
		gx_arena_opts_init(&o);
		o.size = too_big[k];
		cr_expect_eq(gx_arena_create(&a, &o), -EINVAL, "size %zu is over 1 TiB", too_big[k]);
	}
	/* below 4 MiB: refused, or rounded up to at least 4 MiB */
	size_t small[] = {1, 4096, 4 * MiB - 1};
	for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) {
		gx_arena_opts_init(&o);
		o.size = small[k];
		o.tier = GX_MEM_4K;
		a = NULL;
		int rc = gx_arena_create(&a, &o);
		if (rc == 0) {
			gx_arena_info i = info_of(a);
			cr_expect_geq(i.size, 4 * MiB, "size %zu became %zu: at least 4 MiB", small[k], i.size);
			gx_arena_destroy(a);
		} else {
			cr_expect_eq(rc, -EINVAL, "size %zu: %d", small[k], rc);
		}
	}
	gx_arena_opts_init(&o);
	o.size = 4 * MiB;
	o.tier = (gx_mem_tier)7;
	cr_expect_eq(gx_arena_create(&a, &o), -EINVAL, "no tier 7");
	o.tier = (gx_mem_tier)-1;
	cr_expect_eq(gx_arena_create(&a, &o), -EINVAL, "no tier -1");
	gx_arena_opts_init(&o);
	o.size = 4 * MiB;
	o.spin_ns = 1000000001;
	cr_expect_eq(gx_arena_create(&a, &o), -EINVAL, "a spin budget is at most 1 s");
}

Test(arena, info_reports_what_it_got)
{
	clear_shm_env();
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = 5 * MiB + 1; /* not a page multiple */
	o.spin_ns = 12345;
	o.numa = 0;
	gx_arena *a = NULL;
	cr_assert_eq(gx_arena_create(&a, &o), 0);
	gx_arena_info i = info_of(a);
	expect_consistent(&i, 5 * MiB + 1);
	cr_expect_eq(i.spin_ns, 12345);
	cr_expect_eq(i.numa_nodes, 0, "numa = 0 places nothing");
	cr_expect_geq(gx_arena_attach(a), 0);
	i = info_of(a);
	cr_expect_eq(i.procs, 1, "this process holds the one slot in use");
	cr_expect_eq(gx_arena_info_get(NULL, &i), -EINVAL);
	cr_expect_eq(gx_arena_info_get(a, NULL), -EINVAL);
	gx_arena_destroy(a);

	o.spin_ns = 0;
	o.numa = 1;
	o.size = 4 * MiB;
	cr_assert_eq(gx_arena_create(&a, &o), 0);
	i = info_of(a);
	cr_expect_eq(i.spin_ns, 0, "a budget of 0 is kept (never spin)");
	cr_expect_geq(i.numa_nodes, 0);
	cr_expect_leq(i.numa_nodes, GX_SHM_MAX_NODES);
	gx_arena_destroy(a);
}

/* ---- tiers ---- */

Test(arena, forcing_4k_gives_4k_pages)
{
	gx_arena *a = new_arena_with(4 * MiB, GX_MEM_4K, -1);
	gx_arena_info i = info_of(a);
	expect_consistent(&i, 4 * MiB);
	cr_expect_eq(i.tier, GX_MEM_4K);
	cr_expect_str_eq(i.tier_name, "4k");
	cr_expect_eq(i.page_size, 4096);
	cr_expect_eq(i.size, 4 * MiB, "4 MiB is whole 4 KiB pages: not rounded");
	gx_arena_destroy(a);
}

/*
 * tests/run.sh runs this suite once with huge pages reserved and once with
 * none. Pages are counted right before each try; another test running in
 * parallel may take them in between, so a try that misses while pages were
 * counted free is retried before it counts as a failure.
 */
Test(arena, hugetlb_when_pages_are_reserved_else_a_fallback_with_a_reason)
{
	long total = read_long("/proc/sys/vm/nr_hugepages");
	if (huge_pages_available() < 0)
		cr_skip_test("no 2 MiB hugetlb pool on this kernel (" HUGE_SYS ")");
	const long need = 2; /* 4 MiB */
	bool got = false, counted_free = false;
	for (int attempt = 0; attempt < 5 && !got; attempt++) {
		long avail = huge_pages_available();
		gx_arena *a = new_arena_with(4 * MiB, GX_MEM_HUGETLB, -1);
		gx_arena_info i = info_of(a);
		expect_consistent(&i, 4 * MiB);
		if (i.tier == GX_MEM_HUGETLB) {
			got = true;
			cr_expect_str_eq(i.tier_name, "hugetlb");
			cr_expect_eq(i.page_size, 2 * MiB);
			cr_expect(GX_HUGEPAGES, "built with -Dhugepages=false, yet hugetlb");
			cr_expect_gt(total, 0, "hugetlb with nr_hugepages = 0");
		} else {
			cr_expect_neq(i.why[0], '\0', "fell back to %s without a reason", i.tier_name);
			counted_free = counted_free || avail >= need;
		}
		gx_arena_destroy(a);
	}
	if (GX_HUGEPAGES && !got)
		cr_expect(!counted_free, "huge pages were free (nr_hugepages %ld) yet never hugetlb", total);
	if (total == 0)
		cr_expect(!got);
}

Test(arena, thp_only_when_shmem_allows_it)
{
	char mode[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
	if (f) {
		if (!fgets(mode, sizeof mode, f))
			mode[0] = '\0';
		fclose(f);
	}
	bool denied = !f || strstr(mode, "[never]") || strstr(mode, "[deny]");
	gx_arena *a = new_arena_with(4 * MiB, GX_MEM_THP, -1);
	gx_arena_info i = info_of(a);
	expect_consistent(&i, 4 * MiB);
	cr_expect_neq(i.tier, GX_MEM_HUGETLB, "THP is the best tier asked for");
	if (denied || !GX_HUGEPAGES)
		cr_expect_eq(i.tier, GX_MEM_4K, "shmem_enabled is %s", mode);
	if (i.tier != GX_MEM_THP)
		cr_expect_neq(i.why[0], '\0', "fell back to %s without a reason (shmem_enabled %s)", i.tier_name, mode);
	gx_arena_destroy(a);
}

Test(arena, auto_takes_the_best_tier_and_says_why_not_better)
{
	gx_arena *a = new_arena(8 * MiB);
	gx_arena_info i = info_of(a);
	expect_consistent(&i, 8 * MiB);
	if (i.tier != GX_MEM_HUGETLB)
		cr_expect_neq(i.why[0], '\0', "%s without a reason", i.tier_name);
	if (read_long("/proc/sys/vm/nr_hugepages") == 0)
		cr_expect_neq(i.tier, GX_MEM_HUGETLB);
	gx_arena_destroy(a);
}

/* ---- offsets ---- */

Test(arena, ptr_and_off_check_bounds)
{
	gx_arena *a = new_arena(8 * MiB);
	gx_arena_info i = info_of(a);
	const uint64_t size = i.size;
	int64_t c = gx_pool_alloc(a, 64, -1);
	cr_assert_gt(c, 0);
	char *p = gx_arena_ptr(a, (gx_off)c, 64);
	cr_assert_not_null(p);
	char *base = p - c;
	cr_expect_eq(gx_arena_off(a, p), (gx_off)c);
	cr_expect_eq(gx_arena_off(a, p + 10), (gx_off)c + 10);
	cr_expect_eq(gx_arena_ptr(a, (gx_off)c + 10, 1), p + 10);

	cr_expect_null(gx_arena_ptr(a, 0, 0), "offset 0 is never an object");
	cr_expect_null(gx_arena_ptr(a, 0, 1));
	cr_expect_null(gx_arena_ptr(a, size, 1), "one past the end");
	cr_expect_null(gx_arena_ptr(a, size + 4096, 1));
	cr_expect_null(gx_arena_ptr(a, UINT64_MAX, 1));
	cr_expect_null(gx_arena_ptr(a, UINT64_MAX - 7, 16), "off + len wraps");
	cr_expect_null(gx_arena_ptr(a, 8, UINT64_MAX), "len overflows");
	cr_expect_null(gx_arena_ptr(a, (gx_off)c, UINT64_MAX - (uint64_t)c + 1), "off + len wraps to 0");
	cr_expect_null(gx_arena_ptr(a, (gx_off)c, size), "runs past the end");
	cr_expect_null(gx_arena_ptr(a, size - 8, 16), "straddles the end");
	cr_expect_eq(gx_arena_ptr(a, size - 16, 16), base + size - 16, "the last bytes are data");
	cr_expect_eq(gx_arena_ptr(a, size - 1, 1), base + size - 1);

	int local;
	cr_expect_eq(gx_arena_off(a, NULL), 0);
	cr_expect_eq(gx_arena_off(a, &local), 0, "a stack address");
	cr_expect_eq(gx_arena_off(a, base + size), 0, "one past the end");
	cr_expect_eq(gx_arena_off(a, base - 1), 0);
	cr_expect_eq(gx_arena_off(a, base + size - 1), size - 1);
	cr_expect_eq(gx_pool_free(a, (gx_off)c), 0);
	gx_arena_destroy(a);
}

/* ---- process slots ---- */

Test(arena, attach_gives_one_slot_per_process_and_fork_takes_a_new_one, .timeout = 60)
{
	gx_arena *a = new_arena(4 * MiB);
	int s = gx_arena_attach(a);
	cr_assert_geq(s, 0);
	cr_assert_lt(s, GX_SHM_MAX_PROCS);
	cr_expect_eq(gx_arena_attach(a), s, "the same slot the second time");

	enum { N = 3 };
	_Atomic int *slot = shared_map(4096);
	for (int k = 0; k < N; k++)
		slot[k] = -1000;
	int gate[2];
	cr_assert_eq(pipe(gate), 0);
	pid_t pid[N];
	for (int k = 0; k < N; k++) {
		pid[k] = fork_child();
		if (pid[k] == 0) {
			close(gate[1]);
			int t = gx_arena_attach(a);
			CHILD_CHECK(gx_arena_attach(a) == t, 2, "attach twice: %d then another", t);
			slot[k] = t;
			char b;
			(void)!read(gate[0], &b, 1); /* until the parent has looked */
			CHILD_CHECK(gx_arena_detach(a) == 0, 3, "detach");
			_exit(0);
		}
	}
	close(gate[0]);
	for (int k = 0; k < N; k++) {
		int64_t end = gx_now() + 10 * GX_SECOND;
		while (slot[k] == -1000 && gx_now() < end)
			nap_us(200);
	}
	gx_arena_info i = info_of(a);
	cr_expect_eq(i.procs, N + 1, "the test process and %d children", N);
	for (int k = 0; k < N; k++) {
		cr_expect_geq(slot[k], 0, "child %d: %d", k, slot[k]);
		cr_expect_lt(slot[k], GX_SHM_MAX_PROCS);
		cr_expect_neq(slot[k], s, "child %d took its parent's slot", k);
		for (int j = 0; j < k; j++)
			cr_expect_neq(slot[k], slot[j], "children %d and %d share slot %d", j, k, slot[k]);
	}
	close(gate[1]);
	for (int k = 0; k < N; k++)
		expect_clean_exit(pid[k], 10, "attaching child");
	i = info_of(a);
	cr_expect_eq(i.procs, 1, "the children detached");
	for (int k = 0; k < N; k++) {
		gx_repair_report rep;
		cr_expect_eq(gx_arena_repair(a, pid[k], &rep), -ESRCH, "a detached process holds no slot");
	}
	cr_expect_eq(gx_arena_attach(a), s, "still the parent's slot");
	cr_expect_eq(gx_arena_detach(a), 0);
	cr_expect_eq(info_of(a).procs, 0);
	cr_expect_eq(gx_arena_attach(a), gx_arena_attach(a), "attach again after detach");
	munmap((void *)slot, 4096);
	gx_arena_destroy(a);
}

Test(arena, slots_run_out_at_max_procs, .timeout = 120)
{
	gx_arena *a = new_arena(4 * MiB);
	cr_assert_geq(gx_arena_attach(a), 0);
	const int n = GX_SHM_MAX_PROCS - (int)info_of(a).procs;
	_Atomic int *res = shared_map(sizeof(int) * (GX_SHM_MAX_PROCS + 8));
	_Atomic int *ready = res + GX_SHM_MAX_PROCS + 4;
	int gate[2];
	cr_assert_eq(pipe(gate), 0);
	pid_t *pid = calloc((size_t)n + 1, sizeof *pid);
	for (int k = 0; k <= n; k++) {
		res[k] = -1000;
		/* one at a time, so the last child is the one refused */
		int want = *ready + 1;
		pid[k] = fork_child();
		if (pid[k] == 0) {
			close(gate[1]);
			int s = gx_arena_attach(a);
			res[k] = s;
			int64_t c = s >= 0 ? 0 : gx_pool_alloc(a, 64, -1);
			atomic_fetch_add(ready, 1);
			char b;
			(void)!read(gate[0], &b, 1);
			if (s >= 0)
				CHILD_CHECK(gx_arena_detach(a) == 0, 3, "detach");
			else
				CHILD_CHECK(c == -ENOSPC, 4, "alloc without a slot: %lld", (long long)c);
			_exit(0);
		}
		int64_t end = gx_now() + 20 * GX_SECOND;
		while (*ready < want && gx_now() < end)
			nap_us(100);
		cr_assert_eq(*ready, want, "child %d never reported", k);
	}
	for (int k = 0; k < n; k++)
		cr_expect_geq(res[k], 0, "child %d of %d: %d", k, n, res[k]);
	cr_expect_eq(res[n], -ENOSPC, "all %d slots taken: %d", GX_SHM_MAX_PROCS, res[n]);
	cr_expect_eq(info_of(a).procs, GX_SHM_MAX_PROCS);
	close(gate[0]);
	close(gate[1]);
	for (int k = 0; k <= n; k++)
		expect_clean_exit(pid[k], 30, "slot child");
	cr_expect_eq(info_of(a).procs, 1);

	pid_t again = fork_child();
	if (again == 0)
		_exit(gx_arena_attach(a) >= 0 ? 0 : 1);
	expect_clean_exit(again, 10, "a slot is free again");
	free(pid);
	munmap((void *)res, sizeof(int) * (GX_SHM_MAX_PROCS + 8));
	gx_arena_destroy(a);
}

/* ---- fork ---- */

Test(arena, is_shared_across_fork_both_ways, .timeout = 60)
{
	gx_arena *a = new_arena(8 * MiB);
	int64_t c1 = gx_pool_alloc(a, 4096, -1);
	cr_assert_gt(c1, 0);
	char *p1 = gx_arena_ptr(a, (gx_off)c1, 4096);
	cr_assert_not_null(p1);
	memset(p1, 'P', 4096);
	_Atomic uint64_t *box = shared_map(4096);
	box[0] = 0;
	pid_t pid = fork_child();
	if (pid == 0) {
		char *q = gx_arena_ptr(a, (gx_off)c1, 4096);
		CHILD_CHECK(q == p1, 2, "the arena moved across fork");
		for (int k = 0; k < 4096; k++)
			CHILD_CHECK(q[k] == 'P', 3, "byte %d of the parent's chunk: %d", k, q[k]);
		int64_t c2 = gx_pool_alloc(a, 10000, -1);
		CHILD_CHECK(c2 > 0, 4, "alloc in the child: %lld", (long long)c2);
		char *r = gx_arena_ptr(a, (gx_off)c2, 10000);
		CHILD_CHECK(r != NULL, 5, "ptr");
		for (int k = 0; k < 10000; k++)
			r[k] = (char)(k * 7);
		memset(q, 'C', 16); /* and write into the parent's */
		box[0] = (uint64_t)c2;
		CHILD_CHECK(gx_arena_detach(a) == 0, 6, "detach");
		_exit(0);
	}
	expect_clean_exit(pid, 20, "child writing the arena");
	cr_assert_gt(box[0], 0);
	gx_off c2 = box[0];
	char *r = gx_arena_ptr(a, c2, 10000);
	cr_assert_not_null(r);
	for (int k = 0; k < 10000; k++)
		cr_assert_eq(r[k], (char)(k * 7), "byte %d of the child's chunk", k);
	cr_expect_eq(p1[0], 'C');
	cr_expect_eq(p1[15], 'C');
	cr_expect_eq(p1[16], 'P');
	cr_expect_eq(gx_pool_free(a, c2), 0, "the child's chunk, freed by the parent");
	cr_expect_eq(gx_pool_free(a, (gx_off)c1), 0);
	cr_expect_eq(in_use_total(a), 0);
	munmap((void *)box, 4096);
	gx_arena_destroy(a);
}

Test(arena, destroy_unmaps_only_this_process, .timeout = 60)
{
	gx_arena *a = new_arena(4 * MiB);
	int64_t c = gx_pool_alloc(a, 128, -1);
	cr_assert_gt(c, 0);
	char *p = gx_arena_ptr(a, (gx_off)c, 128);
	strcpy(p, "before");
	int gate[2];
	cr_assert_eq(pipe(gate), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		close(gate[1]);
		char b;
		(void)!read(gate[0], &b, 1); /* the parent has unmapped it */
		CHILD_CHECK(strcmp(p, "before") == 0, 2, "contents");
		strcpy(p, "after");
		int64_t d = gx_pool_alloc(a, 128, -1);
		CHILD_CHECK(d > 0, 3, "alloc after the parent unmapped: %lld", (long long)d);
		CHILD_CHECK(gx_pool_free(a, (gx_off)d) == 0, 4, "free");
		CHILD_CHECK(gx_pool_free(a, (gx_off)c) == 0, 5, "free the parent's chunk");
		CHILD_CHECK(gx_arena_destroy(a) == 0, 6, "destroy in the child");
		_exit(0);
	}
	close(gate[0]);
	cr_expect_eq(gx_arena_destroy(a), 0);
	cr_expect_eq(write(gate[1], "x", 1), 1);
	close(gate[1]);
	expect_clean_exit(pid, 20, "child still using the arena");
}

/* ---- environment ---- */

static int create_env(gx_arena_info *i)
{
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	gx_arena *a = NULL;
	int rc = gx_arena_create(&a, &o);
	if (rc == 0) {
		cr_assert_not_null(a);
		*i = info_of(a);
		gx_arena_destroy(a);
	}
	return rc;
}

static void expect_refused(const char *var, const char *val)
{
	clear_shm_env();
	setenv("GONEX_SHM_SIZE", "8388608", 1); /* keep the good ones small */
	setenv(var, val, 1);
	gx_arena_info i;
	cr_expect_eq(create_env(&i), -EINVAL, "%s=%s must be refused", var, val);
	clear_shm_env();
}

Test(arena, environment_overrides_and_strict_parsing)
{
	clear_shm_env();
	setenv("GONEX_SHM_SIZE", "16777216", 1);
	setenv("GONEX_HUGEPAGES", "off", 1);
	setenv("GONEX_SPIN_NS", "777", 1);
	gx_arena_info i;
	cr_assert_eq(create_env(&i), 0);
	cr_expect_eq(i.size, 16 * MiB);
	cr_expect_eq(i.tier, GX_MEM_4K, "GONEX_HUGEPAGES=off");
	cr_expect_eq(i.spin_ns, 777);
	setenv("GONEX_SHM_SIZE", "12M", 1);
	cr_assert_eq(create_env(&i), 0);
	cr_expect_eq(i.size, 12 * MiB, "suffix M");

	/* the struct wins over the environment */
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = 8 * MiB;
	o.spin_ns = 5;
	o.tier = GX_MEM_4K;
	gx_arena *a = NULL;
	cr_assert_eq(gx_arena_create(&a, &o), 0);
	i = info_of(a);
	cr_expect_eq(i.size, 8 * MiB);
	cr_expect_eq(i.spin_ns, 5);
	gx_arena_destroy(a);
	clear_shm_env();

	expect_refused("GONEX_SHM_SIZE", "lots");
	expect_refused("GONEX_SHM_SIZE", "12abc");
	expect_refused("GONEX_SHM_SIZE", "-5");
	expect_refused("GONEX_SHM_SIZE", "1099511627777"); /* 1 TiB + 1 */
	expect_refused("GONEX_HUGEPAGES", "sometimes");
	expect_refused("GONEX_HUGEPAGES", "4kk");
	expect_refused("GONEX_SHM_SIZE", "1M"); /* under 4 MiB */
	expect_refused("GONEX_SPIN_NS", "abc");
	expect_refused("GONEX_SPIN_NS", "10x");
	expect_refused("GONEX_SPIN_NS", "-7");
	cr_expect_null(getenv("GONEX_SHM_SIZE"));
}
