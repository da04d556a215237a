#!/usr/bin/env python3
"""On a CUDA (or ROCm) machine: a rewritten model runs forward + backward with no cuDNN/MIOpen op in
a torch.profiler trace, and matches the original (torchvision resnet18 with the same weights), on
each backend that must never reach them: host and device. (Backend auto takes vendor, the
original convolution, on a GPU that is not AMD's, so it is not what this checks.)

    device_check.py REWRITTEN_RESNET18.pt [--batch 8] [--size 224]
"""
import argparse
import copy
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'python'))
import rdna1  # noqa: E402

DNN_MARKERS = ('cudnn', 'miopen')


def profiled_ops(model, x):
    """Names of every op a forward + backward of `model` runs, and the output and gradients."""
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    x = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    with torch.profiler.profile(activities=acts) as prof:
        y = model(x)
        y.square().sum().backward()
        torch.cuda.synchronize()
    names = sorted({event.name for event in prof.events()})
    grads = [x.grad] + [p.grad for p in model.parameters()]
    return names, y.detach(), grads


def dnn_ops(names):
    return [n for n in names if any(marker in n.lower() for marker in DNN_MARKERS)]


def check_runtime_ops_on_device():
    """rdna1::conv on device tensors against torch's own convolution on the device, per dtype."""
    worst = {}
    for dtype, tol in ((torch.float32, 1e-3), (torch.float16, 2e-2), (torch.bfloat16, 6e-2)):
        torch.manual_seed(0)
        x = torch.randn(2, 8, 17, 19, device='cuda', dtype=dtype, requires_grad=True)
        w = torch.randn(16, 4, 3, 3, device='cuda', dtype=dtype, requires_grad=True)
        b = torch.randn(16, device='cuda', dtype=dtype, requires_grad=True)
        ours = torch.ops.rdna1.conv(x, w, b, [2, 1], [1, 1], [1, 2], False, [0, 0], 2)
        gours = torch.autograd.grad(ours.float().square().sum(), [x, w, b])
        with torch.backends.cudnn.flags(enabled=False):
            ref = torch.nn.functional.conv2d(x.float(), w.float(), b.float(), [2, 1], [1, 1], [1, 2], 2)
            gref = torch.autograd.grad(ref.square().sum(), [x, w, b])
        assert ours.dtype == dtype and ours.device.type == 'cuda', (ours.dtype, ours.device)
        rel = lambda a, r: ((a.float() - r.float()).abs().max() / r.float().abs().max().clamp_min(1e-6)).item()
        worst[str(dtype)] = max([rel(ours, ref)] + [rel(a, r) for a, r in zip(gours, gref)])
        assert worst[str(dtype)] < tol, (dtype, worst[str(dtype)])
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('rewritten')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args()
    print(rdna1.runtime_info(), '| torch', torch.__version__, '|', torch.cuda.get_device_name())

    rewritten = rdna1.load(args.rewritten, map_location='cuda').train()
    original = torchvision.models.resnet18(num_classes=10)
    original.load_state_dict(rewritten.state_dict())
    original = original.cuda().train()
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device='cuda')
    names_old, y_old, g_old = profiled_ops(original, x)
    # The judge: the original in float64 on the host. Both float32 runs are compared with it.
    _, y_ref, g_ref = profiled_ops(copy.deepcopy(original).double().cpu(), x.double().cpu())
    # Per tensor, |a - r| / |r| in the 2-norm: a max-abs ratio is dominated by rounding noise in
    # gradients that nearly cancel (weights in front of training-mode batch norm).
    rel = lambda a, r: ((a.double().cpu() - r).norm() / r.norm().clamp_min(1e-30)).item()
    out_old = rel(y_old, y_ref)
    grad_old = max(rel(a, r) for a, r in zip(g_old, g_ref))
    control = dnn_ops(names_old)
    print(f'original  resnet18 (control): {len(control)} cuDNN/MIOpen ops, e.g. {control[:3]}; '
          f'relative error (2-norm, worst tensor) against float64 on the host: output {out_old:.2e}, '
          f'gradients {grad_old:.2e}')
    # The host backend computes as the original does in float32 on the CPU in channels-last (oneDNN
    # and ATen's channels-last kernels, whose gradients stray further from float64 than cuDNN's):
    # that is its second control. The bound: twice the worse of the two originals' errors.
    cpu = copy.deepcopy(original).cpu().to(memory_format=torch.channels_last)
    _, y_cpu, g_cpu = profiled_ops(cpu, x.cpu().contiguous(memory_format=torch.channels_last))
    grad_cpu = max(rel(a, r) for a, r in zip(g_cpu, g_ref))
    print(f'original  resnet18 in float32 on the host, channels-last: output {rel(y_cpu, y_ref):.2e}, '
          f'gradients {grad_cpu:.2e}')
    grad_bound = max(1e-4, 2 * max(grad_old, grad_cpu))
    assert control, 'control failed: the profiler saw no cuDNN op in the original'
    for backend in ('host', 'device'):
        rdna1.set_backend(backend)
        names_new, y_new, g_new = profiled_ops(rewritten, x)
        out_new = rel(y_new, y_ref)
        grad_new = max(rel(a, r) for a, r in zip(g_new, g_ref))
        print(f'rewritten resnet18 b{args.batch} forward+backward on CUDA, backend {backend}: '
              f'{len(names_new)} distinct ops, cuDNN/MIOpen ops: {dnn_ops(names_new) or "none"}; '
              f'relative error: output {out_new:.2e}, gradients {grad_new:.2e}')
        assert not dnn_ops(names_new), f'a cuDNN/MIOpen op ran with backend {backend}'
        assert out_new < 1e-5 and grad_new < grad_bound, (backend, out_new, grad_new, grad_bound)
        print('runtime op on CUDA vs torch, worst relative difference by dtype:', check_runtime_ops_on_device())
    rdna1.set_backend(None)
    print('device check: PASS')

if __name__ == '__main__':
    main()
