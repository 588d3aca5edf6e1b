//! The exact x86_64 instruction sequence for a 3-line unaligned range,
//! decoded with iced-x86.

use dma_api::{ArchDma, PhysAddr, SegKind, SyncOp};
use dma_arch::X86_64;
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

fn decode(code: &[u8]) -> Vec<Instruction> {
    Decoder::with_ip(64, code, 0, DecoderOptions::NONE)
        .into_iter()
        .collect()
}

fn assert_line_op(ins: &Instruction, mnemonic: Mnemonic) {
    assert_eq!(ins.mnemonic(), mnemonic);
    assert_eq!(ins.op_count(), 1);
    assert_eq!(ins.op0_kind(), OpKind::Memory);
    assert_eq!(ins.memory_base(), Register::RAX);
    assert_eq!(ins.memory_index(), Register::None);
    assert_eq!(ins.memory_displacement64(), 0);
}

fn assert_rax_imm(ins: &Instruction, mnemonic: Mnemonic, value: u64) {
    assert_eq!(ins.mnemonic(), mnemonic);
    assert_eq!(ins.op0_register(), Register::RAX);
    assert_eq!(ins.immediate(1), value);
}

#[test]
fn three_unaligned_lines_exact_sequence() {
    // 0x1010 + 0x80 touches 0x1000, 0x1040 and 0x1080 (last byte 0x108f).
    for (op, line_mnemonic) in [
        (SyncOp::Invalidate, Mnemonic::Clflushopt),
        (SyncOp::CleanInvalidate, Mnemonic::Clflushopt),
        (SyncOp::Clean, Mnemonic::Clwb),
    ] {
        let p = X86_64
            .cache_program(PhysAddr::new(0x1010), 0x80, SegKind::Ram, op)
            .unwrap();
        let lines: Vec<u64> = p.ops().iter().map(|o| o.line.raw()).collect();
        assert_eq!(lines, [0x1000, 0x1040, 0x1080]);
        let code = X86_64.lower(&p).unwrap();
        let ins = decode(&code);
        let m: Vec<Mnemonic> = ins.iter().map(|i| i.mnemonic()).collect();
        assert_eq!(
            m,
            [
                Mnemonic::Mfence,
                Mnemonic::Mov,
                line_mnemonic,
                Mnemonic::Add,
                line_mnemonic,
                Mnemonic::Add,
                line_mnemonic,
                Mnemonic::Mfence,
            ],
            "{op}"
        );
        assert_rax_imm(&ins[1], Mnemonic::Mov, 0x1000);
        assert_eq!(ins[1].op1_kind(), OpKind::Immediate64, "mov rax, imm64");
        for i in [2, 4, 6] {
            assert_line_op(&ins[i], line_mnemonic);
        }
        assert_rax_imm(&ins[3], Mnemonic::Add, 0x40);
        assert_rax_imm(&ins[5], Mnemonic::Add, 0x40);
        // Nothing trailing: the decoder consumed exactly the code.
        let total: usize = ins.iter().map(|i| i.len()).sum();
        assert_eq!(total, code.len());
    }
}

#[test]
fn discontiguous_batch_reloads_rax() {
    let mut p = dma_api::CacheProgram::new(X86_64.info());
    p.push_range(PhysAddr::new(0x1000), 0x40, SegKind::Ram, SyncOp::Clean)
        .unwrap();
    p.push_range(
        PhysAddr::new(0xdead_0000),
        0x41,
        SegKind::Ram,
        SyncOp::Clean,
    )
    .unwrap();
    let ins = decode(&X86_64.lower(&p).unwrap());
    let m: Vec<Mnemonic> = ins.iter().map(|i| i.mnemonic()).collect();
    use Mnemonic::*;
    assert_eq!(m, [Mfence, Mov, Clwb, Mov, Clwb, Add, Clwb, Mfence]);
    assert_eq!(ins[3].immediate(1), 0xdead_0000);
}
