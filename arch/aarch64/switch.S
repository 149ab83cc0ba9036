/*
 * AArch64 context switch (Procedure Call Standard for the Arm 64-bit
 * Architecture, section 6.1.1 "General-purpose registers" and 6.1.2 "SIMD and
 * Floating-Point registers"): callee-saved are x19-x28, x29 (fp), x30 (lr) and
 * the low 64 bits of v8-v15 (d8-d15); FPCR is saved per coroutine with
 * GX_FP_ENV.
 *
 *   register     role here
 *   x0           arg 1: void **from_sp (where the old stack pointer goes)
 *   x1           arg 2: void *to_sp (the stack pointer to resume)
 *   x2           arg 3: void *arg, returned in x0 on the resumed side
 *   x19-x30, d8-d15   stored on the old stack, loaded from the new one
 *   FPCR         stored in a slot above them (GX_FP_ENV only; the slot is
 *                always there so the layout is fixed)
 *
 * Suspended frame, from the saved stack pointer up (GX_ARCH_FRAME = 176):
 *   +0 x19 x20  +16 x21 x22  +32 x23 x24  +48 x25 x26  +64 x27 x28
 *   +80 x29 x30  +96 d8 d9  +112 d10 d11  +128 d12 d13  +144 d14 d15
 *   +160 fpcr  +168 pad
 * The CFI describes that frame relative to sp, so it stays true after sp
 * moves to the other stack.
 */
#include "gx_build_config.h"

	.text

	.globl	gx_arch_switch
	.hidden	gx_arch_switch
	.type	gx_arch_switch, %function
	.p2align 4
gx_arch_switch:
	.cfi_startproc
	bti	c
	sub	sp, sp, #176
	.cfi_def_cfa_offset 176
	stp	x19, x20, [sp, #0]
	.cfi_rel_offset x19, 0
	.cfi_rel_offset x20, 8
	stp	x21, x22, [sp, #16]
	.cfi_rel_offset x21, 16
	.cfi_rel_offset x22, 24
	stp	x23, x24, [sp, #32]
	.cfi_rel_offset x23, 32
	.cfi_rel_offset x24, 40
	stp	x25, x26, [sp, #48]
	.cfi_rel_offset x25, 48
	.cfi_rel_offset x26, 56
	stp	x27, x28, [sp, #64]
	.cfi_rel_offset x27, 64
	.cfi_rel_offset x28, 72
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	.cfi_rel_offset d8, 96
	.cfi_rel_offset d9, 104
	stp	d10, d11, [sp, #112]
	.cfi_rel_offset d10, 112
	.cfi_rel_offset d11, 120
	stp	d12, d13, [sp, #128]
	.cfi_rel_offset d12, 128
	.cfi_rel_offset d13, 136
	stp	d14, d15, [sp, #144]
	.cfi_rel_offset d14, 144
	.cfi_rel_offset d15, 152
#if GX_FP_ENV
	mrs	x9, fpcr
	str	x9, [sp, #160]
#endif
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
#if GX_FP_ENV
	ldr	x9, [sp, #160]
	msr	fpcr, x9
#endif
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	.cfi_def_cfa_offset 0
	.cfi_restore x19
	.cfi_restore x20
	.cfi_restore x21
	.cfi_restore x22
	.cfi_restore x23
	.cfi_restore x24
	.cfi_restore x25
	.cfi_restore x26
	.cfi_restore x27
	.cfi_restore x28
	.cfi_restore x29
	.cfi_restore x30
	.cfi_restore d8
	.cfi_restore d9
	.cfi_restore d10
	.cfi_restore d11
	.cfi_restore d12
	.cfi_restore d13
	.cfi_restore d14
	.cfi_restore d15
	mov	x0, x2
	ret
	.cfi_endproc
	.size	gx_arch_switch, .-gx_arch_switch

/*
 * First frame of every coroutine, reached by the `ret` of its first switch.
 * x19 = entry function, x20 = its argument, x0 = the switch's arg.
 * x30 is undefined here and x29 is 0, so unwinders stop at this frame.
 * The entry function never returns.
 */
	.globl	gx_arch_trampoline
	.hidden	gx_arch_trampoline
	.type	gx_arch_trampoline, %function
	.p2align 4
gx_arch_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	bti	c
	mov	x29, #0
	mov	x1, x0
	mov	x0, x20
	blr	x19
	brk	#0x3c
	.cfi_endproc
	.size	gx_arch_trampoline, .-gx_arch_trampoline

/* Read the current FPCR. */
	.globl	gx_arch_fpenv_get
	.hidden	gx_arch_fpenv_get
	.type	gx_arch_fpenv_get, %function
	.p2align 4
gx_arch_fpenv_get:
	.cfi_startproc
	bti	c
	mrs	x0, fpcr
	ret
	.cfi_endproc
	.size	gx_arch_fpenv_get, .-gx_arch_fpenv_get

	.section .note.GNU-stack, "", %progbits

/* GNU property note: BTI landing pads at every indirect branch target. */
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4
	.long	16
	.long	5			/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000		/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4
	.long	1			/* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
	.long	0
