"""Rewrites jbrain/backends/pallas_gpu.py (in the working directory, with
session 36's tally patches 1-2 and session 37's 0001 applied, 0002 or not):
the warp's shuffles and ballot become NVVM's intrinsics (nvvm.shfl.sync,
nvvm.vote.sync), which LLVM knows are convergent, instead of inline asm
without side effects, which LLVM may sink into a branch that only lane 0
takes (session 38's lead for the tally's count)."""

import pathlib

p = pathlib.Path("jbrain/backends/pallas_gpu.py")
s = p.read_text()


def rep(a: str, b: str) -> None:
    global s
    assert s.count(a) == 1, (a, s.count(a))
    s = s.replace(a, b)


rep(
    "global IMPORT_ERROR, _imported, ir, arith, gpu, llvm, memref, scf, pl, mu, plgpu",
    "global IMPORT_ERROR, _imported, ir, arith, gpu, llvm, memref, nvvm, scf, pl, mu, plgpu",
)
rep("import functools\n", "import functools\nimport inspect\n")
rep(
    "from jax._src.lib.mlir.dialects import arith, gpu, llvm, memref, scf",
    "from jax._src.lib.mlir.dialects import arith, gpu, llvm, memref, nvvm, scf",
)
rep(
    '''    def shfl_idx(self, x, lane):
        """x of lane `lane` (a dynamic i32), to every lane."""
        return self.asm("shfl.sync.idx.b32 $0, $1, $2, 0x1f, 0xffffffff;", "=r,r,r", x, lane)
''',
    '''    def shfl(self, x, offset, kind: str = "bfly"):
        """shfl.sync over the whole warp (i32 or f32 x; offset an int or a
        dynamic i32): kind "bfly" gives lane l the x of lane l ^ offset,
        "idx" of lane offset, "up" of lane l - offset (its own below offset).
        NVVM's intrinsic, not inline asm: LLVM knows it is convergent, so it
        never moves it into a branch that only some lanes take."""
        if isinstance(offset, int):
            offset = self.c(offset)
        clamp = self.c(0 if kind == "up" else 0x1F)
        return mu.nvvm_shfl_sync(x.type, self.c(-1), x, offset, clamp, getattr(nvvm.ShflKind, kind))

    def shfl_idx(self, x, lane):
        """x of lane `lane` (a dynamic i32), to every lane."""
        return self.shfl(x, lane, "idx")
''',
)
rep(
    """            other = self.asm(f"shfl.sync.bfly.b32 $0, $1, {d}, 0x1f, 0xffffffff;", "=f,f", x, result=self.f32)
            x = arith.addf(x, other)""",  # noqa: E501
    """            x = arith.addf(x, self.shfl(x, d))""",
)
rep(
    """                total = t.add(
                    total, t.asm(f"shfl.sync.bfly.b32 $0, $1, {d}, 0x1f, 0xffffffff;", "=r,r", total)
                )""",
    """                total = t.add(total, t.shfl(total, d))""",
)
rep(
    """            below = t.asm(f"shfl.sync.up.b32 $0, $1, {d}, 0, 0xffffffff;", "=r,r", upto)""",
    """            below = t.shfl(upto, d, "up")""",
)
rep(
    '''        """Bit l: lane l's pred (all 32 lanes vote)."""
        x = arith.extui(self.i32, pred)
        return self.asm(
            "{ .reg .pred p; setp.ne.u32 p, $1, 0; vote.sync.ballot.b32 $0, p, 0xffffffff; }", "=r,r", x
        )
''',
    '''        """Bit l: lane l's pred (all 32 lanes vote; NVVM's intrinsic, convergent as `shfl`)."""
        args = (self.c(-1), pred, nvvm.VoteSyncKind.ballot)
        if next(iter(inspect.signature(nvvm.vote_sync).parameters)) == "mask":
            return nvvm.vote_sync(*args, results=[self.i32])
        return nvvm.vote_sync(self.i32, *args)  # an older binding: the result type first
''',
)
assert "shfl.sync." not in s and "vote.sync." not in s
p.write_text(s)
