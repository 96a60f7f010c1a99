/*
 * vclab unikernel: the ring-0 shim (AT&T syntax, included by src/shim.rs).
 *
 * On kvm_pvm every ring-0 instruction is emulated (slow; SSE other than moves fails), while
 * ring-3 code runs natively. So this shim only sets the machine up, drops to CPL 3 and then
 * serves the few things ring 3 cannot do: port I/O (#GP decoder), the idle halt loop, and
 * reporting exceptions. Everything else, the Rust code included, runs at CPL 3.
 *
 * Entries:
 *   entry64     64-bit Linux boot protocol (ELF e_entry): long mode, RSI = boot_params.
 *   pvh_entry   PVH (XEN_ELFNOTE_PHYS32_ENTRY): 32-bit protected mode, EBX = hvm_start_info.
 * Both call ring3_main(info_ptr, protocol) at CPL 3 with IOPL 3 and IF 0
 * (protocol: 0 = Linux boot_params, 1 = PVH hvm_start_info).
 *
 * Layout constraint: .shim starts at exactly 0x100000 and ends below 0x110000 (link.ld
 * asserts both), so a gate or TSS address is 0x10 << 16 | (symbol - shim_base).
 */

    .set KERNEL_CS, 0x08
    .set USER_DS, 0x18 | 3
    .set USER_CS, 0x20 | 3
    .set TSS_SEL, 0x28
    .set USER_RFLAGS, 0x3002          /* IOPL = 3, reserved bit 1, IF = 0 */
    .set CR0_PE, 1 << 0
    .set CR0_MP, 1 << 1
    .set CR0_EM, 1 << 2
    .set CR0_PG, 1 << 31
    .set CR4_SSE, (1 << 5) | (1 << 9) | (1 << 10)   /* PAE | OSFXSR | OSXMMEXCPT */
    .set CR4_OFF, (1 << 2) | (1 << 20) | (1 << 21)  /* TSD (rdtsc at CPL 3), SMEP, SMAP (the
                                                       #GP decoder reads user memory) */
    .set MSR_EFER, 0xc0000080
    .set EFER_LME, 1 << 8
    .set PORT_STATUS, {exit_port}     /* lab control device: exit status */
    .set PORT_DEBUG_EXIT, {debug_exit_port} /* QEMU isa-debug-exit */
    .set PORT_CH_ACPI, {ch_acpi_port} /* Cloud Hypervisor ACPI shutdown (devices/src/acpi.rs) */
    .set ACPI_S5, {ch_acpi_s5}        /* S5 sleep value: CH powers off (1 would reboot) */
    .set PORT_I8042, {i8042_port}     /* i8042 command port (Firecracker ends the VM on a reset) */
    .set I8042_RESET, {i8042_reset}   /* pulse the reset line */
    .set PORT_UART, {com1}
    .set STATUS_EXCEPTION, 0x80       /* exit status = 0x80 | vector */

    .section .shim, "awx"
    .globl shim_base
shim_base:

/* ---- Entry 1: 64-bit Linux boot protocol. ---- */
    .code64
    .globl entry64
entry64:
    cli
    mov %rsi, %r12
    xor %r13d, %r13d
    jmp enter_user

/* ---- Entry 2: PVH, 32-bit protected mode, paging off. ---- */
    .code32
    .globl pvh_entry
pvh_entry:
    cli
    mov %ebx, %esi
    mov %cr4, %eax
    or $CR4_SSE, %eax
    mov %eax, %cr4
    mov $shim_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    and $~CR0_EM, %eax
    or $(CR0_PG | CR0_MP | CR0_PE), %eax
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $KERNEL_CS, $pvh_long
    .code64
pvh_long:
    mov %esi, %r12d
    mov $1, %r13d
    /* fall through */

/* ---- Common: own CR0/CR4/CR3/GDT/IDT/TSS, then iretq to ring3_start at CPL 3. ---- */
enter_user:
    mov %cr0, %rax
    and $~CR0_EM, %rax
    or $CR0_MP, %rax
    mov %rax, %cr0
    mov %cr4, %rax
    or $CR4_SSE, %rax
    and $~CR4_OFF, %rax
    mov %rax, %cr4
    mov $shim_pml4, %eax
    mov %rax, %cr3
    lgdt gdt_ptr(%rip)
    lidt idt_ptr(%rip)
    mov $TSS_SEL, %ax
    ltr %ax
    mov $stack0_top, %esp
    push $USER_DS
    push $user_stack_top
    push $USER_RFLAGS
    push $USER_CS
    push $ring3_start
    mov %r12, %rdi
    mov %r13, %rsi
    iretq

/* ---- Exception stubs: 16 bytes each, vector n at exc_stubs + 16 n. ---- */
    .macro stub_noerr vec
    .balign 16
    push $0
    push $\vec
    jmp exc_common
    .endm
    .macro stub_err vec
    .balign 16
    push $\vec
    jmp exc_common
    .endm

    .balign 16
exc_stubs:
    stub_noerr 0
    stub_noerr 1
    stub_noerr 2
    stub_noerr 3
    stub_noerr 4
    stub_noerr 5
    stub_noerr 6
    stub_noerr 7
    stub_err 8
    stub_noerr 9
    stub_err 10
    stub_err 11
    stub_err 12
    .balign 16
    jmp gp_entry                      /* 13: #GP, the port I/O and idle service */
    stub_err 14
    stub_noerr 15
    stub_noerr 16
    stub_err 17
    stub_noerr 18
    stub_noerr 19
    stub_noerr 20
    stub_err 21
    stub_noerr 22
    stub_noerr 23
    stub_noerr 24
    stub_noerr 25
    stub_noerr 26
    stub_noerr 27
    stub_noerr 28
    stub_err 29
    stub_err 30
    stub_noerr 31
    .balign 16
exc_stubs_end:

/*
 * #GP. From CPL 3 it is (on kvm_pvm, where IOPL 3 does not allow port I/O) a port access or
 * the idle request (`hlt`): decode the instruction at the user RIP, do it here with the
 * user's own registers, step over it and return. Anything else is reported.
 * Stack: error code, RIP, CS, RFLAGS, RSP, SS.
 */
gp_entry:
    testb $3, 16(%rsp)
    jz gp_ring0
    push %rbx                         /* now: rbx, error, RIP (+16), CS (+24) */
    mov 16(%rsp), %rbx
    cmpb $0xef, (%rbx)
    je io_out32
    cmpb $0xee, (%rbx)
    je io_out8
    cmpb $0xec, (%rbx)
    je io_in8
    cmpb $0xf3, (%rbx)
    je io_rep
    cmpb $0xf4, (%rbx)
    je idle_loop
gp_bad:
    pop %rbx
gp_ring0:
    push $13
    jmp exc_common

io_out32:                             /* out %eax, %dx */
    out %eax, %dx
    mov $1, %ebx
    jmp io_done
io_out8:                              /* out %al, %dx */
    out %al, %dx
    mov $1, %ebx
    jmp io_done
io_in8:                               /* in %dx, %al */
    in %dx, %al
    mov $1, %ebx
    jmp io_done
io_rep:                               /* rep outsb (%rsi), %dx */
    cmpb $0x6e, 1(%rbx)
    jne gp_bad
    rep outsb
    mov $2, %ebx
io_done:
    add %rbx, 16(%rsp)
    pop %rbx
    add $8, %rsp
    iretq

/*
 * The idle service: ring 3 executed `hlt`. Halt here with interrupts on, for ever; the VMM
 * kills the VM. Interrupts and faults that arrive meanwhile are dropped by exc_common.
 */
idle_loop:
    movb $1, idle_flag(%rip)
    mov $stack0_top, %esp
1:  sti
    hlt
    jmp 1b

/*
 * Any other exception: drop it while idling in ring 0, else report
 * "vclab-unikernel: exception VV error E rip R cr2 C" on the UART and end the VM with
 * status 0x80 | vector. Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS.
 */
exc_common:
    testb $3, 24(%rsp)
    jnz exc_report
    cmpb $0, idle_flag(%rip)
    je exc_report
    add $16, %rsp
    iretq
exc_report:
    mov $PORT_UART, %dx
    lea msg_exception(%rip), %rsi
    mov $msg_exception_len, %ecx
    rep outsb
    mov (%rsp), %rbx
    shl $56, %rbx
    mov $2, %ecx
    call put_hex
    lea msg_error(%rip), %rsi
    mov $msg_error_len, %ecx
    rep outsb
    mov 8(%rsp), %rbx
    call put_hex16
    lea msg_rip(%rip), %rsi
    mov $msg_rip_len, %ecx
    rep outsb
    mov 16(%rsp), %rbx
    call put_hex16
    lea msg_cr2(%rip), %rsi
    mov $msg_cr2_len, %ecx
    rep outsb
    mov %cr2, %rbx
    call put_hex16
    mov $10, %al                      /* newline */
    out %al, %dx
    mov (%rsp), %eax
    or $STATUS_EXCEPTION, %eax
    jmp shim_exit

/* Writes the top ECX hex digits of RBX to port DX (16 for put_hex16). Clobbers rax, rbx, rcx. */
put_hex16:
    mov $16, %ecx
put_hex:
    rol $4, %rbx
    mov %bl, %al
    and $15, %al
    cmp $10, %al
    jb 1f
    add $39, %al                      /* 'a' - '0' - 10 */
1:  add $48, %al                      /* '0' */
    out %al, %dx
    dec %ecx
    jnz put_hex
    ret

/* Ends the VM with status AL: lab device, then QEMU isa-debug-exit, then Cloud Hypervisor's
   ACPI S5, then i8042 reset (lab.rs `Lab::exit` does the same from ring 3). */
shim_exit:
    mov $PORT_STATUS, %dx
    out %al, %dx
    mov $PORT_DEBUG_EXIT, %dx
    out %al, %dx
    mov $PORT_CH_ACPI, %dx
    mov $ACPI_S5, %al
    out %al, %dx
    mov $I8042_RESET, %al
    out %al, $PORT_I8042
1:  cli
    hlt
    jmp 1b

/* ---- Ring-3 start: the first code at CPL 3. ---- */
ring3_start:
    call ring3_main
    ud2

/* ---- Data the CPU reads (all in .shim, below 1 MiB + 64 KiB). ---- */
msg_exception:
    .ascii "\nvclab-unikernel: exception 0x"
    .set msg_exception_len, . - msg_exception
msg_error:
    .ascii " error 0x"
    .set msg_error_len, . - msg_error
msg_rip:
    .ascii " rip 0x"
    .set msg_rip_len, . - msg_rip
msg_cr2:
    .ascii " cr2 0x"
    .set msg_cr2_len, . - msg_cr2

    .globl idle_flag
idle_flag:
    .byte 0

    .balign 16
gdt:
    .quad 0                           /* 0x00 null */
    .quad 0x00af9b000000ffff          /* 0x08 kernel code, 64-bit, DPL 0, accessed */
    .quad 0x00cf93000000ffff          /* 0x10 kernel data, DPL 0, accessed */
    .quad 0x00cff3000000ffff          /* 0x18 user data, DPL 3, accessed */
    .quad 0x00affb000000ffff          /* 0x20 user code, 64-bit, DPL 3, accessed */
    .word tss_end - tss - 1           /* 0x28 TSS: limit 15:0 */
    .word tss - shim_base             /* base 15:0 */
    .byte 0x10                        /* base 23:16 */
    .byte 0x89                        /* present, DPL 0, available 64-bit TSS */
    .byte 0                           /* limit 19:16, flags */
    .byte 0                           /* base 31:24 */
    .long 0                           /* base 63:32 */
    .long 0
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt

    .balign 16
    .globl shim_idt
shim_idt:                             /* 32 interrupt gates, DPL 0, to exc_stubs + 16 n */
    .set vec, 0
    .rept 32
    .word exc_stubs - shim_base + 16 * vec
    .word KERNEL_CS
    .byte 0
    .byte 0x8e
    .word 0x0010
    .long 0
    .long 0
    .set vec, vec + 1
    .endr
shim_idt_end:
idt_ptr:
    .word shim_idt_end - shim_idt - 1
    .quad shim_idt

    .balign 16
tss:
    .long 0
    .quad stack0_top                  /* RSP0: ring-0 stack for exceptions from CPL 3 */
    .quad 0, 0                        /* RSP1, RSP2 */
    .quad 0
    .quad 0, 0, 0, 0, 0, 0, 0         /* IST1..7 */
    .quad 0
    .word 0
    .word tss_end - tss               /* I/O map base beyond the limit: no bitmap */
tss_end:
    .globl shim_end
shim_end:

/*
 * Page tables: identity map of the first 4 GiB with 2 MiB pages (four page directories),
 * present, writable and user-accessible (P | RW | US), so CPL 3 reaches all guest RAM (the
 * kernels use the first 1 GiB) and, for `vclab.fault=mmio`, the guest-physical space above it.
 * Static: no ring-0 loop.
 */
    .section .shim.pagetables, "aw"
    .balign 4096
    .globl shim_pml4
shim_pml4:
    .quad shim_pdpt + 0x7
    .fill 511, 8, 0
shim_pdpt:
    .quad shim_pd + 0x7
    .quad shim_pd + 0x1000 + 0x7
    .quad shim_pd + 0x2000 + 0x7
    .quad shim_pd + 0x3000 + 0x7
    .fill 508, 8, 0
shim_pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x87         /* P | RW | US | PS */
    .set page, page + 1
    .endr

/* Stacks (zeroed memory: beyond the file in the data PT_LOAD). */
    .section .bss.shim_stacks, "aw", @nobits
    .balign 4096
stack0:
    .skip 16384
    .globl stack0_top
stack0_top:
user_stack:
    .skip 262144
    .globl user_stack_top
user_stack_top:

/* PVH entry note: XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", the 32-bit entry address. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_entry
