/*
 * Deterministic kill points for the crash tests: a seccomp filter that
 * kills the calling process (SIGSYS) at a chosen system call, so that a
 * test can stop a process exactly there, every time, however fast the
 * machine. The one the tests use: the first shared FUTEX_WAKE, the moment
 * after an eventcount marked a wake-up as sent and before the sleepers
 * hear of it.
 *
 * Only shared wakes match (op == FUTEX_WAKE exactly): glibc's own locks use
 * FUTEX_WAKE_PRIVATE, which passes. The filter stays for the rest of the
 * process's life; a forked child inherits it.
 */
#ifndef GX_TEST_KILLPOINT_H
#define GX_TEST_KILLPOINT_H

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define KP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define KP_ARCH AUDIT_ARCH_AARCH64
#endif

/* Kill this process at its next futex(FUTEX_WAKE) on a shared word. 0, or
 * -errno when seccomp is not available (the test skips). No core file. */
static inline int kp_kill_at_futex_wake(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, KP_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_futex, 0, 3),
		/* the low half of args[1] (little-endian): the futex op */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FUTEX_WAKE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
	prctl(PR_SET_DUMPABLE, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		return -errno;
	return 0;
}

#endif
