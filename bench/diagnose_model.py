"""Where a zoo model's gradients go wrong with backend device: the whole model in variants, then
each convolution and batch norm alone on the activations it sees.

    diagnose_model.py MODEL [--device cuda]

Whole model (each against the model in float64 on the host, as device_zoo.py judges it):
  eager        the original, eager, on the device
  scripted     the original, scripted (no rewrite): what TorchScript alone does
  rewritten    the rewritten model, as device_zoo.py runs it
  no-fuser     the same with TorchScript's fusers and the profiling executor's optimisations off
Per layer (forward hooks on the eager model catch each layer's input): rdna1::conv and
rdna1::batch_norm on the device against F.conv2d / F.batch_norm on the device and in float64.
Only layers where ours is more than 10x the original's error (or above 1e-4) are listed.
Patched eager: the eager model with each Conv2d and BatchNorm2d calling the rdna1 ops, and the
gradient each block (a module with children) hands back, against the original's and float64's.
"""
import argparse
import copy
import os
import sys
import tempfile

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import device_zoo  # noqa: E402
from device_zoo import error, forward_backward, rdna1, rewritten_copy, zoo_models  # noqa: E402


def whole_model(name, device):
    model, x = zoo_models.build(name)
    reference = forward_backward(copy.deepcopy(model).double(), [x.double()])[0]
    model = model.to(device)
    inputs = [x.to(device)]
    print(f'  eager       {error(forward_backward(model, inputs)[0], reference):.2e}')
    scripted = torch.jit.script(copy.deepcopy(model))
    print('  scripted    ' + ' '.join(f'{error(forward_backward(scripted, inputs)[0], reference):.2e}'
                                      for _ in range(3)))
    with tempfile.TemporaryDirectory() as directory:
        rewritten = rewritten_copy(torch.jit.script(copy.deepcopy(model)), directory, name, device)
        print('  rewritten   ' + ' '.join(f'{error(forward_backward(rewritten, inputs)[0], reference):.2e}'
                                          for _ in range(3)))
        torch._C._jit_set_texpr_fuser_enabled(False)
        torch._C._jit_override_can_fuse_on_gpu(False)
        torch._C._get_graph_executor_optimize(False)
        rewritten = rewritten_copy(torch.jit.script(copy.deepcopy(model)), directory, name + '2', device)
        print('  no-fuser    ' + ' '.join(f'{error(forward_backward(rewritten, inputs)[0], reference):.2e}'
                                          for _ in range(3)))
        torch._C._get_graph_executor_optimize(True)
    return model, inputs


def relative(got, want):
    return ((got.double().cpu() - want.double().cpu()).norm() / want.double().cpu().norm().clamp_min(1e-30)).item()


def layer_errors(run, args, grad, double_run):
    """Output and gradient errors of run(*args) against double_run on float64 copies."""
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    out = run(*leaves)
    grads = torch.autograd.grad(out, leaves, grad)
    ref_leaves = [a.detach().double().cpu().requires_grad_(True) for a in args]
    ref = double_run(*ref_leaves)
    ref_grads = torch.autograd.grad(ref, ref_leaves, grad.double().cpu())
    return [relative(out, ref)] + [relative(g, r) for g, r in zip(grads, ref_grads)]


def per_layer(model, inputs):
    captured = []
    hooks = [m.register_forward_hook(lambda m, i, o: captured.append((m, i[0].detach())))
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    generator = torch.Generator().manual_seed(2)
    flagged = 0
    for index, (module, x) in enumerate(captured):
        if isinstance(module, torch.nn.Conv2d):
            hyper = (module.stride, module.padding, module.dilation, False, [0, 0], module.groups)
            ours = lambda x, w: torch.ops.rdna1.conv(x, w, None, *hyper)  # noqa: E731
            vendor = lambda x, w: F.conv2d(x, w, None, module.stride, module.padding,  # noqa: E731
                                           module.dilation, module.groups)
            args = (x, module.weight.detach())
            what = f'conv {tuple(module.weight.shape)} stride {module.stride} pad {module.padding}'
        else:
            stats = (module.running_mean, module.running_var)

            def ours(x, w, b, stats=stats, module=module):
                return torch.ops.rdna1.batch_norm(x, w, b, stats[0], stats[1], False, 0.1, module.eps, False)

            def vendor(x, w, b, stats=stats, module=module):
                return F.batch_norm(x, stats[0].to(x), stats[1].to(x), w, b, False, 0.1, module.eps)
            args = (x, module.weight.detach(), module.bias.detach())
            what = f'batch_norm {module.num_features}'
        out_shape = vendor(*args).shape
        grad = torch.randn(out_shape, generator=generator).to(x.device)
        ours_e = layer_errors(ours, args, grad, vendor)
        vendor_e = layer_errors(vendor, args, grad, vendor)
        worst = max(e / max(v, 1e-7) for e, v in zip(ours_e, vendor_e))
        if worst > 10 or max(ours_e) > 1e-4:
            flagged += 1
            print(f'  layer {index} {what} input {tuple(x.shape)} {x.stride()}: ours '
                  + ' '.join(f'{e:.1e}' for e in ours_e) + ' | original ' + ' '.join(f'{e:.1e}' for e in vendor_e))
    print(f'  {flagged} of {len(captured)} layers flagged')


def patch_with_rdna1_ops(model, which=lambda name, module: True):
    for name, module in model.named_modules():
        if not which(name, module):
            continue
        if isinstance(module, torch.nn.Conv2d):
            module.forward = lambda x, m=module: torch.ops.rdna1.conv(
                x, m.weight, m.bias, m.stride, m.padding, m.dilation, False, [0, 0], m.groups)
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.forward = lambda x, m=module: torch.ops.rdna1.batch_norm(
                x, m.weight, m.bias, m.running_mean, m.running_var, m.training, 0.1, m.eps, False)
    return model


def block_gradients(model, x):
    """Gradient wrt each block's input (modules with children, in backward order) and the input's."""
    grads = []
    for name, module in model.named_modules():
        if name and list(module.children()) and not isinstance(module, torch.nn.Sequential):
            module.register_full_backward_hook(
                lambda m, gin, gout, name=name: grads.append((name, gin[0].detach().double().cpu()))
                if gin[0] is not None else None)
    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    generator = torch.Generator().manual_seed(1)
    out.backward(torch.randn(out.shape, generator=generator, dtype=torch.float64).to(out))
    return grads + [('input', x.grad.double().cpu())]


def patched_eager(name, device):
    model, x = zoo_models.build(name)
    reference = block_gradients(copy.deepcopy(model).double(), x.double())
    original = block_gradients(copy.deepcopy(model).to(device), x.to(device))
    patched = block_gradients(patch_with_rdna1_ops(copy.deepcopy(model).to(device)), x.to(device))
    print(f'  patched eager: input gradient {relative(patched[-1][1], reference[-1][1]):.2e}, '
          f'original {relative(original[-1][1], reference[-1][1]):.2e}')
    flagged = []
    for (block, want), (_, got), (_, theirs) in zip(reference, patched, original):
        ours_e, theirs_e = relative(got, want), relative(theirs, want)
        if ours_e > max(1e-5, 10 * theirs_e):
            flagged.append(block)
            if len(flagged) <= 6:
                print(f'  block {block}: gradient of its input {ours_e:.2e} off float64, original {theirs_e:.2e}'
                      f' (norm {want.norm():.2e}, max |value| {want.abs().max():.2e})')
    if not flagged:
        return
    # Which of our ops, patched in alone or in groups, reproduce it: one op that is off alone is a
    # fault; only the whole set off is rounding meeting an ill-conditioned point (a ReLU gate).
    first = flagged[0]
    variants = {
        'convolutions only': lambda n, m: isinstance(m, torch.nn.Conv2d),
        'batch norms only': lambda n, m: isinstance(m, torch.nn.BatchNorm2d),
        '1x1 convolutions only': lambda n, m: isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1),
        'other convolutions only': lambda n, m: isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1),
        f'{first} only': lambda n, m: n.startswith(first + '.'),
    }
    for child, module in model.get_submodule(first).named_children():
        if isinstance(module, torch.nn.Conv2d):
            variants[f'{first}.{child} only'] = lambda n, m, c=f'{first}.{child}': n == c
    for what, which in variants.items():
        grads = block_gradients(patch_with_rdna1_ops(copy.deepcopy(model).to(device), which), x.to(device))
        print(f'  {what}: input gradient {relative(grads[-1][1], reference[-1][1]):.2e}', flush=True)
    gates = device_zoo.undecidable_gates(model, [x])
    print('  ReLU gates below float32 resolution in float64: '
          + (', '.join(f'{n} {r:.1e}' for n, r in gates[:5]) if gates else 'none'))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('models', help='comma-separated zoo names')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--patched-only', action='store_true')
    args = parser.parse_args()
    rdna1.set_backend('device')
    device_zoo.BACKEND = 'device'
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for name in args.models.split(','):
        print(name, flush=True)
        patched_eager(name, args.device)
        if not args.patched_only:
            model, inputs = whole_model(name, args.device)
            per_layer(model, inputs)


if __name__ == '__main__':
    main()
