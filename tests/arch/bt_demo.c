/* A program for tests/arch/gdb_bt.sh: a coroutine stops in bt_here(), three
 * frames below its entry function. */
#include <gonex/gonex.h>

void bt_here(int depth);
void bt_middle(int depth);
void bt_coroutine_entry(void *arg);

__attribute__((noinline)) void bt_here(int depth)
{
	__asm__ volatile("" ::: "memory");
	(void)depth;
}

__attribute__((noinline)) void bt_middle(int depth)
{
	bt_here(depth + 1);
	__asm__ volatile("" ::: "memory");
}

void bt_coroutine_entry(void *arg)
{
	(void)arg;
	gx_yield();
	bt_middle(1);
}

static int bt_main(void *arg)
{
	(void)arg;
	gx_go_opts o = {.name = "bt"};
	gx_go_with(bt_coroutine_entry, NULL, &o);
	gx_yield();
	gx_yield();
	return 0;
}

int main(void)
{
	return gx_run(NULL, bt_main, NULL);
}
