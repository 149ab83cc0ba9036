/* The context switch: callee-saved registers, FP control state, entry alignment. */
#include <criterion/criterion.h>
#include <fenv.h>
#include <stdint.h>
#include <sys/mman.h>

#include "testing.h"

#define STACK (64 * 1024)

static void *main_sp, *co_sp;
static uintptr_t entry_sp;
static int fp_seen_first, fp_seen_second;

static void *new_stack(void)
{
	void *p = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED);
	return p;
}

static void clobber_entry(void *arg, void *from)
{
	(void)arg;
	(void)from;
	entry_sp = gx_test_caller_sp();
	for (;;)
		gx_test_clobber_switch(&co_sp, main_sp);
}

Test(switch, preserves_every_callee_saved_register)
{
	char *stack = new_stack();
	co_sp = gx_arch_stack_init(stack + STACK, clobber_entry, NULL);
	uint64_t out[GX_TEST_NREGS];
	for (int round = 0; round < 3; round++) {
		memset(out, 0, sizeof out);
		gx_test_switch_regs(&main_sp, co_sp, out);
		for (int i = 0; i < GX_TEST_NREGS; i++)
			cr_expect_eq(out[i], gx_test_reg_pattern(i), "round %d reg %d: %#llx", round, i,
				     (unsigned long long)out[i]);
	}
	munmap(stack, STACK);
}

Test(switch, stack_is_16_byte_aligned_at_entry)
{
	char *stack = new_stack();
	/* try several tops: the init must align whatever 16-aligned top it gets */
	for (int k = 0; k < 4; k++) {
		entry_sp = 1;
		co_sp = gx_arch_stack_init(stack + STACK - 64 * k, clobber_entry, NULL);
		uint64_t out[GX_TEST_NREGS];
		gx_test_switch_regs(&main_sp, co_sp, out);
		cr_expect_eq(entry_sp % 16, 0, "sp %#lx at a call in the entry function", (unsigned long)entry_sp);
	}
	munmap(stack, STACK);
}

static void *arg_seen;
static void arg_entry(void *arg, void *from)
{
	arg_seen = arg;
	void *back = gx_arch_switch(&co_sp, main_sp, from);
	arg_seen = back;
	gx_arch_switch(&co_sp, main_sp, NULL);
}

Test(switch, passes_entry_arg_and_switch_values)
{
	char *stack = new_stack();
	int token;
	co_sp = gx_arch_stack_init(stack + STACK, arg_entry, &token);
	void *r = gx_arch_switch(&main_sp, co_sp, (void *)0x1234);
	cr_expect_eq(arg_seen, &token);
	cr_expect_eq(r, (void *)0x1234, "the first switch's arg reaches the entry");
	gx_arch_switch(&main_sp, co_sp, (void *)0x5678);
	cr_expect_eq(arg_seen, (void *)0x5678);
	munmap(stack, STACK);
}

static void fp_entry(void *arg, void *from)
{
	(void)arg;
	(void)from;
	fesetround(FE_UPWARD);
	gx_arch_switch(&co_sp, main_sp, NULL);
	fp_seen_second = fegetround();
	gx_arch_switch(&co_sp, main_sp, NULL);
}

Test(switch, keeps_fp_control_state_per_context)
{
	if (!GX_FP_ENV)
		cr_skip_test("built without -Dfp_env=true: the FP control state is shared");
	char *stack = new_stack();
	co_sp = gx_arch_stack_init(stack + STACK, fp_entry, NULL);
	fesetround(FE_DOWNWARD);
	gx_arch_switch(&main_sp, co_sp, NULL);
	fp_seen_first = fegetround();
	gx_arch_switch(&main_sp, co_sp, NULL);
	fesetround(FE_TONEAREST);
	cr_expect_eq(fp_seen_first, FE_DOWNWARD, "main's rounding mode survived the coroutine's change");
	cr_expect_eq(fp_seen_second, FE_UPWARD, "the coroutine's rounding mode survived main's");
	munmap(stack, STACK);
}

static void fp_inherit_entry(void *arg, void *from)
{
	(void)arg;
	(void)from;
	fp_seen_first = fegetround();
	gx_arch_switch(&co_sp, main_sp, NULL);
}

Test(switch, new_context_inherits_fp_control_state_of_its_creator)
{
	char *stack = new_stack();
	fesetround(FE_TOWARDZERO);
	co_sp = gx_arch_stack_init(stack + STACK, fp_inherit_entry, NULL);
	fesetround(FE_TONEAREST);
	gx_arch_switch(&main_sp, co_sp, NULL);
	if (GX_FP_ENV)
		cr_expect_eq(fp_seen_first, FE_TOWARDZERO);
	else
		cr_expect_eq(fp_seen_first, FE_TONEAREST, "without fp_env the state is the thread's");
	munmap(stack, STACK);
}
