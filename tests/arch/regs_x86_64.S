/* Test helpers for the register-preservation checks (see runtime/testing.h). */
	.text

/* void gx_test_switch_regs(void **from, void *to, uint64_t *out) */
	.globl	gx_test_switch_regs
	.type	gx_test_switch_regs, @function
gx_test_switch_regs:
	endbr64
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushq	%rdx		/* out; keeps rsp 16-aligned at the call */
	movabsq	$0x1020304050607080, %rbx
	movabsq	$0x1121314151617181, %rbp
	movabsq	$0x1222324252627282, %r12
	movabsq	$0x1323334353637383, %r13
	movabsq	$0x1424344454647484, %r14
	movabsq	$0x1525354555657585, %r15
	xorl	%edx, %edx
	call	gx_arch_switch
	popq	%rdx
	movq	%rbx, 0(%rdx)
	movq	%rbp, 8(%rdx)
	movq	%r12, 16(%rdx)
	movq	%r13, 24(%rdx)
	movq	%r14, 32(%rdx)
	movq	%r15, 40(%rdx)
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size	gx_test_switch_regs, .-gx_test_switch_regs

/* void gx_test_clobber_switch(void **from, void *to) */
	.globl	gx_test_clobber_switch
	.type	gx_test_clobber_switch, @function
gx_test_clobber_switch:
	endbr64
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	movabsq	$0xdeadbeefdeadbeef, %rbx
	movq	%rbx, %rbp
	movq	%rbx, %r12
	movq	%rbx, %r13
	movq	%rbx, %r14
	movq	%rbx, %r15
	xorl	%edx, %edx
	call	gx_arch_switch
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size	gx_test_clobber_switch, .-gx_test_clobber_switch

/* uintptr_t gx_test_caller_sp(void): rsp before the call pushed the return address */
	.globl	gx_test_caller_sp
	.type	gx_test_caller_sp, @function
gx_test_caller_sp:
	endbr64
	leaq	8(%rsp), %rax
	ret
	.size	gx_test_caller_sp, .-gx_test_caller_sp

	.section .note.GNU-stack, "", @progbits
