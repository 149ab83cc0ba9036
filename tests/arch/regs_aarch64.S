/* Test helpers for the register-preservation checks (see runtime/testing.h). */
	.text

/* void gx_test_switch_regs(void **from, void *to, uint64_t *out) */
	.globl	gx_test_switch_regs
	.type	gx_test_switch_regs, %function
gx_test_switch_regs:
	bti	c
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	str	x2, [sp, #160]
	movz	x19, #0x7080, lsl #0
	movk	x19, #0x5060, lsl #16
	movk	x19, #0x3040, lsl #32
	movk	x19, #0x1020, lsl #48
	movz	x20, #0x7181, lsl #0
	movk	x20, #0x5161, lsl #16
	movk	x20, #0x3141, lsl #32
	movk	x20, #0x1121, lsl #48
	movz	x21, #0x7282, lsl #0
	movk	x21, #0x5262, lsl #16
	movk	x21, #0x3242, lsl #32
	movk	x21, #0x1222, lsl #48
	movz	x22, #0x7383, lsl #0
	movk	x22, #0x5363, lsl #16
	movk	x22, #0x3343, lsl #32
	movk	x22, #0x1323, lsl #48
	movz	x23, #0x7484, lsl #0
	movk	x23, #0x5464, lsl #16
	movk	x23, #0x3444, lsl #32
	movk	x23, #0x1424, lsl #48
	movz	x24, #0x7585, lsl #0
	movk	x24, #0x5565, lsl #16
	movk	x24, #0x3545, lsl #32
	movk	x24, #0x1525, lsl #48
	movz	x25, #0x7686, lsl #0
	movk	x25, #0x5666, lsl #16
	movk	x25, #0x3646, lsl #32
	movk	x25, #0x1626, lsl #48
	movz	x26, #0x7787, lsl #0
	movk	x26, #0x5767, lsl #16
	movk	x26, #0x3747, lsl #32
	movk	x26, #0x1727, lsl #48
	movz	x27, #0x7888, lsl #0
	movk	x27, #0x5868, lsl #16
	movk	x27, #0x3848, lsl #32
	movk	x27, #0x1828, lsl #48
	movz	x28, #0x7989, lsl #0
	movk	x28, #0x5969, lsl #16
	movk	x28, #0x3949, lsl #32
	movk	x28, #0x1929, lsl #48
	movz	x29, #0x7a8a, lsl #0
	movk	x29, #0x5a6a, lsl #16
	movk	x29, #0x3a4a, lsl #32
	movk	x29, #0x1a2a, lsl #48
	movz	x9, #0x7b8b, lsl #0
	movk	x9, #0x5b6b, lsl #16
	movk	x9, #0x3b4b, lsl #32
	movk	x9, #0x1b2b, lsl #48
	fmov	d8, x9
	movz	x9, #0x7c8c, lsl #0
	movk	x9, #0x5c6c, lsl #16
	movk	x9, #0x3c4c, lsl #32
	movk	x9, #0x1c2c, lsl #48
	fmov	d9, x9
	movz	x9, #0x7d8d, lsl #0
	movk	x9, #0x5d6d, lsl #16
	movk	x9, #0x3d4d, lsl #32
	movk	x9, #0x1d2d, lsl #48
	fmov	d10, x9
	movz	x9, #0x7e8e, lsl #0
	movk	x9, #0x5e6e, lsl #16
	movk	x9, #0x3e4e, lsl #32
	movk	x9, #0x1e2e, lsl #48
	fmov	d11, x9
	movz	x9, #0x7f8f, lsl #0
	movk	x9, #0x5f6f, lsl #16
	movk	x9, #0x3f4f, lsl #32
	movk	x9, #0x1f2f, lsl #48
	fmov	d12, x9
	movz	x9, #0x8090, lsl #0
	movk	x9, #0x6070, lsl #16
	movk	x9, #0x4050, lsl #32
	movk	x9, #0x2030, lsl #48
	fmov	d13, x9
	movz	x9, #0x8191, lsl #0
	movk	x9, #0x6171, lsl #16
	movk	x9, #0x4151, lsl #32
	movk	x9, #0x2131, lsl #48
	fmov	d14, x9
	movz	x9, #0x8292, lsl #0
	movk	x9, #0x6272, lsl #16
	movk	x9, #0x4252, lsl #32
	movk	x9, #0x2232, lsl #48
	fmov	d15, x9
	mov	x2, #0
	bl	gx_arch_switch
	ldr	x2, [sp, #160]
	str	x19, [x2, #0]
	str	x20, [x2, #8]
	str	x21, [x2, #16]
	str	x22, [x2, #24]
	str	x23, [x2, #32]
	str	x24, [x2, #40]
	str	x25, [x2, #48]
	str	x26, [x2, #56]
	str	x27, [x2, #64]
	str	x28, [x2, #72]
	str	x29, [x2, #80]
	fmov	x9, d8
	str	x9, [x2, #88]
	fmov	x9, d9
	str	x9, [x2, #96]
	fmov	x9, d10
	str	x9, [x2, #104]
	fmov	x9, d11
	str	x9, [x2, #112]
	fmov	x9, d12
	str	x9, [x2, #120]
	fmov	x9, d13
	str	x9, [x2, #128]
	fmov	x9, d14
	str	x9, [x2, #136]
	fmov	x9, d15
	str	x9, [x2, #144]
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
	ret
	.size	gx_test_switch_regs, .-gx_test_switch_regs

/* void gx_test_clobber_switch(void **from, void *to) */
	.globl	gx_test_clobber_switch
	.type	gx_test_clobber_switch, %function
gx_test_clobber_switch:
	bti	c
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	movz	x19, #0xbeef, lsl #0
	movk	x19, #0xdead, lsl #16
	movk	x19, #0xbeef, lsl #32
	movk	x19, #0xdead, lsl #48
	mov	x20, x19
	mov	x21, x19
	mov	x22, x19
	mov	x23, x19
	mov	x24, x19
	mov	x25, x19
	mov	x26, x19
	mov	x27, x19
	mov	x28, x19
	mov	x29, x19
	fmov	d8, x19
	fmov	d9, x19
	fmov	d10, x19
	fmov	d11, x19
	fmov	d12, x19
	fmov	d13, x19
	fmov	d14, x19
	fmov	d15, x19
	mov	x2, #0
	bl	gx_arch_switch
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
	ret
	.size	gx_test_clobber_switch, .-gx_test_clobber_switch

/* uintptr_t gx_test_caller_sp(void) */
	.globl	gx_test_caller_sp
	.type	gx_test_caller_sp, %function
gx_test_caller_sp:
	bti	c
	mov	x0, sp
	ret
	.size	gx_test_caller_sp, .-gx_test_caller_sp

	.section .note.GNU-stack, "", %progbits
