"""rdna1.aot_compile: an AOTInductor package of a rewritten program, for C++ programs that load it
with torch::inductor::AOTIModelPackageLoader and link librdna1_runtime (samples/run_aoti_package.cpp).

Inductor compiles everything but the rdna1:: calls, which the package's code makes through
AOTInductor's proxy executor: the C++ process needs the runtime linked, and runs the runtime's
own kernels (backends and all). Inductor's GPU code is Triton, and Triton on gfx1010 is reported
broken, so on RDNA1 GPUs this path is for other machines (the CPU, or other GPUs); docs/export.md.
"""
import os

import torch


def aot_compile(program, package_path, inductor_configs=None):
    """Packages `program` (an ExportedProgram or the path of a .pt2 saved by torch.export.save)
    with torch._inductor.aoti_compile_and_package into `package_path`, after rewriting it (a
    rewritten program is taken as it is). The package runs on the device the program was exported
    with. Returns the package's path."""
    from . import export
    if not export.available():
        raise RuntimeError(f'rdna1.aot_compile needs torch 2.x (torch.export, AOTInductor); this Python '
                           f'imports torch {torch.__version__}')
    if isinstance(program, (str, os.PathLike)):
        program = export.load_program(os.fspath(program))
    rewritten, _ = export.rewrite_program(program)
    return torch._inductor.aoti_compile_and_package(rewritten, package_path=os.fspath(package_path),
                                                    inductor_configs=inductor_configs)
