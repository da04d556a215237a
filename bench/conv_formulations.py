#!/usr/bin/env python3
"""Formulations of a 3x3, stride-1, padding-1 convolution in ATen ops, timed on the UNet's and
resnet18's layer shapes against cuDNN without TF32 and the runtime's device backend (rdna1::conv),
in alternation, forward only; each one's relative error against float64 beside cuDNN's.

  device          rdna1::conv with backend device (what the runtime chooses)
  im2col          ATen's im2col, one GEMM of K = 9C (the whole patches, 9x the input)
  gemm_only       that GEMM alone, on patches gathered beforehand: the floor of any formulation
                  that writes the whole patches
  copied_patches  the whole patches gathered by contiguous copies instead of im2col's kernel
  rows_im2col     im2col of one kernel row (kernel 1 x 3: 3x the input), three accumulating
                  GEMMs of K = 3C on views shifted by whole rows (the runtime's row patches)
  shift9          no patches: the output on the padded grid, nine accumulating GEMMs of K = C,
                  each tap a view of the padded input shifted by the tap's offset
  winograd43      Winograd F(4x4, 3x3): tiles (2.25x the input), transforms as GEMMs, 36
                  products of a quarter of the multiplications
  banded_q        im2col and its GEMM a band of output rows at a time, each band's patches
                  about a quarter of the GPU's L2 cache, so that the GEMM reads them from the
                  cache (banded_h: half of it)
  overlap_b       im2col of each image (overlap_b2, b4: of each half, quarter of an image's
                  rows) on a second stream while the first runs the GEMMs of the images already
                  gathered: the gather's copies overlap the GEMMs' arithmetic
  overlap_rows    the same with row patches, an image at a time

Each timed as captured in a CUDA graph (the GPU's time) and eagerly (the host's launches included).

    conv_formulations.py [--rounds 30] [--iterations 10]   (on a CUDA/HIP device)
"""
import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_graph_check  # noqa: E402  (CUDA graph capture)
import rdna1  # noqa: E402

SHAPES = [  # (name, input shape, output channels)
    ('unet enc1b', (2, 32, 256, 256), 32),
    ('unet dec1a', (2, 64, 256, 256), 32),
    ('unet enc2a', (2, 32, 128, 128), 64),
    ('unet enc2b', (2, 64, 128, 128), 64),
    ('unet enc1a', (2, 3, 256, 256), 32),
    ('resnet18 b8 l1', (8, 64, 56, 56), 64),
    ('resnet18 b8 l2', (8, 128, 28, 28), 128),
    ('resnet18 b8 l3', (8, 256, 14, 14), 256),
    ('resnet18 b8 l4', (8, 512, 7, 7), 512),
    ('resnet18 b1 l1', (1, 64, 56, 56), 64),
    ('unet dec1a input grad', (2, 32, 256, 256), 64),
    ('unet enc2a input grad', (2, 64, 128, 128), 32),
    ('unet b8 enc1b', (8, 32, 256, 256), 32),
    ('resnet50 b8 l1', (8, 64, 56, 56), 64),
    ('b1 512x512 32', (1, 32, 512, 512), 32),
    ('b4 128x128 16', (4, 16, 128, 128), 16),
    ('b4 64x64 128', (4, 128, 64, 64), 128),
]


def shift9(x, w):
    """No patches: the output on the padded grid [Hp * Wp] (its last two rows and columns
    cropped), where tap (kh, kw) of every point reads the padded input at the offset
    kh * Wp + kw, a view; nine accumulating GEMMs of K = C."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    wp = wd + 2
    xp = F.pad(x, (1, 1, 1, 1)).flatten(2)
    grid = xp.shape[2]
    valid = grid - 2 * wp - 2  # the grid points past these are all cropped
    taps = w.permute(2, 3, 0, 1).reshape(9, o, c).contiguous()
    out = x.new_empty(n, o, grid)
    for t in range(9):
        s = (t // 3) * wp + t % 3
        view = xp[:, :, s:s + valid]
        if t == 0:
            torch.matmul(taps[t], view, out=out[:, :, :valid])
        else:
            out[:, :, :valid].baddbmm_(taps[t].expand(n, o, c), view)
    return out.view(n, o, h + 2, wp)[:, :, :h, :wd].contiguous()


def rows_im2col(x, w):
    """Row patches: im2col of one kernel row (kernel 1 x 3, padding 1 on both dims: 3x the input,
    H + 2 rows of W points); kernel row kh is a view of them shifted by kh whole rows; three
    accumulating GEMMs of K = 3C."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    rows = F.unfold(x, (1, 3), padding=1)  # [N, 3C, (H + 2) * W]
    points = h * wd
    taps = w.permute(2, 0, 1, 3).reshape(3, o, 3 * c)
    out = torch.matmul(taps[0], rows[:, :, :points])
    for kh in (1, 2):
        out.baddbmm_(taps[kh].expand(n, o, 3 * c), rows[:, :, kh * wd:kh * wd + points])
    return out.view(n, o, h, wd)


_WINOGRAD = {}


def winograd_matrices(device, dtype):
    """F(4x4, 3x3) (Lavin and Gray, interpolation points 0, +-1, +-2, infinity), as the Kronecker
    products that transform a 6x6 tile, a 3x3 kernel and a 6x6 product at once."""
    key = (device, dtype)
    if key not in _WINOGRAD:
        bt = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
        g = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                          [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
        at = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                           [0, 1, -1, 8, -8, 1]], dtype=torch.float64)
        _WINOGRAD[key] = tuple(torch.kron(m, m).to(device, dtype) for m in (bt, g, at))
    return _WINOGRAD[key]


def winograd43(x, w):
    """Winograd F(4x4, 3x3): 6x6 input tiles every 4 points (2.25x the input), each transformed
    by one [36, 36] GEMM, 36 products [O, C] x [C, tiles] in one bmm (a quarter of the direct
    form's multiplications), the products transformed back by one [16, 36] GEMM."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    th, tw = (h + 3) // 4, (wd + 3) // 4
    bt, g, at = winograd_matrices(x.device, x.dtype)
    xp = F.pad(x, (1, 4 * tw + 1 - wd, 1, 4 * th + 1 - h))
    tiles = xp.unfold(2, 6, 4).unfold(3, 6, 4).permute(4, 5, 1, 0, 2, 3).reshape(36, -1)
    v = torch.mm(bt, tiles).view(36, c, n * th * tw)
    u = torch.mm(g, w.reshape(o * c, 9).t()).view(36, o, c)
    m = torch.bmm(u, v).view(36, -1)
    y = torch.mm(at, m).view(4, 4, o, n, th, tw)
    return y.permute(3, 2, 4, 0, 5, 1).reshape(n, o, 4 * th, 4 * tw)[:, :, :h, :wd].contiguous()


def band_patches(x, r0, r1):
    """im2col's patches [N, 9C, (r1 - r0) * W] of output rows [r0, r1): input rows r0 - 1 to r1
    (padding 1); a band at an edge of the image pads both ends and drops the row that adds."""
    h, wd = x.shape[2], x.shape[3]
    if r0 == 0 and r1 == h:
        return F.unfold(x, 3, padding=1)
    lo, hi = max(0, r0 - 1), min(h, r1 + 1)
    if r0 == 0 or r1 == h:
        first = 0 if r0 == 0 else 1
        return F.unfold(x[:, :, lo:hi], 3, padding=1)[:, :, first * wd:(first + r1 - r0) * wd]
    return F.unfold(x[:, :, lo:hi], 3, padding=(0, 1))


def banded(x, w, budget):
    """im2col and its GEMM one band of output rows at a time, each band's patches at most budget
    bytes, so that they are written to and read from the L2 cache (the caching allocator hands
    every band the block the previous one freed)."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    rows = max(1, min(h, budget // (n * 9 * c * wd * x.element_size())))
    wk = w.reshape(o, 9 * c).expand(n, o, 9 * c)
    out = x.new_empty(n, o, h * wd)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        torch.bmm(wk, band_patches(x, r0, r1), out=out[:, :, r0 * wd:r1 * wd])
    return out.view(n, o, h, wd)


def l2_bytes():
    return torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size


def banded_q(x, w):
    return banded(x, w, l2_bytes() // 4)


def banded_h(x, w):
    return banded(x, w, l2_bytes() // 2)


_SIDE = {}


def gathered_on_side_stream(gathers):
    """Runs every gather (a callable) on a side stream, all enqueued before the current stream's
    work, and yields each result once the current stream has waited for it."""
    main = torch.cuda.current_stream()
    side = _SIDE.setdefault(main.device, torch.cuda.Stream(main.device))
    side.wait_stream(main)
    gathered = []
    with torch.cuda.stream(side):
        for gather in gathers:
            result = gather()
            result.record_stream(main)
            done = torch.cuda.Event()
            done.record(side)
            gathered.append((result, done))
    for result, done in gathered:
        main.wait_event(done)
        yield result


def overlapped(x, w, bands):
    """Patches gathered on a side stream, a band of an image's rows at a time, each band's GEMM on
    the current stream as soon as its patches are there."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    out = x.new_empty(n, o, h * wd)
    wk = w.reshape(o, 9 * c)
    edges = [h * b // bands for b in range(bands + 1)]
    pieces = [(i, r0, r1) for i in range(n) for r0, r1 in zip(edges, edges[1:])]
    patches = gathered_on_side_stream(
        [lambda i=i, r0=r0, r1=r1: band_patches(x[i:i + 1], r0, r1)[0] for i, r0, r1 in pieces])
    for (i, r0, r1), cols in zip(pieces, patches):
        torch.mm(wk, cols, out=out[i, :, r0 * wd:r1 * wd])
    return out.view(n, o, h, wd)


def overlap_b(x, w):
    return overlapped(x, w, 1)


def overlap_b2(x, w):
    return overlapped(x, w, 2)


def overlap_b4(x, w):
    return overlapped(x, w, 4)


def overlap_rows(x, w):
    """Row patches (rows_im2col) of each image gathered on a side stream, its three GEMMs on the
    current stream as soon as they are there."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    out = x.new_empty(n, o, h * wd)
    taps = w.permute(2, 0, 1, 3).reshape(3, o, 3 * c)
    points = h * wd
    images = gathered_on_side_stream(
        [lambda i=i: F.unfold(x[i:i + 1], (1, 3), padding=1)[0] for i in range(n)])
    for i, rows in enumerate(images):
        torch.mm(taps[0], rows[:, :points], out=out[i])
        for kh in (1, 2):
            out[i].addmm_(taps[kh], rows[:, kh * wd:kh * wd + points])
    return out.view(n, o, h, wd)


def im2col(x, w):
    """The whole patches (9x the input) by im2col, one GEMM of K = 9C."""
    n, c, h, wd = x.shape
    cols = F.unfold(x, 3, padding=1)
    return torch.matmul(w.reshape(w.shape[0], -1), cols).view(n, -1, h, wd)


def copied_patches(x, w):
    """The whole patches (9x the input) gathered by plain contiguous copies, not im2col's kernel:
    each image's input padded (two more rows at the bottom, so that no tap's shift leaves the
    image), tap-major blocks [N, 9, C * grid] where block t is the padded image shifted by the
    tap's offset, one cudaMemcpy-like copy per image and tap; one GEMM; the grid cropped."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    wp = wd + 2
    xp = F.pad(x, (1, 1, 1, 3)).reshape(n, -1)
    grid = (h + 4) * wp
    shifts = [kh * wp + kw for kh in range(3) for kw in range(3)]
    length = c * grid - shifts[-1]
    cols = x.new_empty(n, 9, c * grid)
    for i in range(n):
        for t, s in enumerate(shifts):
            cols[i, t, :length].copy_(xp[i, s:s + length])
    rows = cols.view(n, 9 * c, grid)[:, :, :h * wp]
    out = torch.matmul(w.permute(0, 2, 3, 1).reshape(o, 9 * c), rows)
    return out.view(n, o, h, wp)[:, :, :, :wd].contiguous()


_COLS = {}


def gemm_only(x, w):
    """im2col's GEMM alone, on patches gathered once: the floor of that formulation."""
    key = (x.data_ptr(), tuple(x.shape))
    if key not in _COLS:
        _COLS.clear()
        _COLS[key] = F.unfold(x, 3, padding=1)
    return torch.matmul(w.reshape(w.shape[0], -1), _COLS[key]).view(x.shape[0], -1, *x.shape[2:])


def cudnn(x, w):
    return F.conv2d(x, w, padding=1)


def device_backend(x, w):
    return torch.ops.rdna1.conv(x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)


def time_ms(run, iterations):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iterations


def eager(step, x, w, iterations):
    def run():
        for _ in range(iterations):
            step(x, w)
    return run


def graphed(step, x, w, iterations):
    """iterations calls of step captured in one CUDA graph: replaying it times the GPU's work
    without the host's time per launch."""
    graph, _ = cuda_graph_check.captured(lambda static: [step(static, w) for _ in range(iterations)], x)
    return graph.replay


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--iterations', type=int, default=10)
    parser.add_argument('--only', help='comma-separated formulations (cudnn32 always runs)')
    parser.add_argument('--shapes', help="comma-separated substrings of the layers' names, spaces as "
                        "underscores (e.g. unet,resnet18_b1)")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    candidates = {'cudnn32': cudnn, 'device': device_backend, 'im2col': im2col, 'gemm_only': gemm_only,
                  'copied_patches': copied_patches, 'rows_im2col': rows_im2col, 'shift9': shift9,
                  'winograd43': winograd43, 'banded_q': banded_q, 'banded_h': banded_h,
                  'overlap_b': overlap_b, 'overlap_b2': overlap_b2, 'overlap_b4': overlap_b4,
                  'overlap_rows': overlap_rows}
    if args.only:
        candidates = {k: v for k, v in candidates.items() if k in args.only.split(',') or k == 'cudnn32'}
    shapes = [s for s in SHAPES
              if not args.shapes or any(p in s[0].replace(' ', '_') for p in args.shapes.split(','))]
    rdna1.set_backend('device')
    for timing in (graphed, eager):
        print(f'{timing.__name__}: ms a call')
        table(candidates, shapes, timing, args)


def table(candidates, shapes, timing, args):
    names = list(candidates)
    print('| layer | input | out | ' + ' | '.join(f'{k} ms' for k in names) + ' | '
          + ' | '.join(f'{k}/cudnn32' for k in names[1:]) + ' | ' + ' | '.join(f'{k} error' for k in names) + ' |')
    print('|' + ' --- |' * (3 + 3 * len(names) - 1))
    for name, shape, o in shapes:
        torch.manual_seed(0)
        x = torch.randn(shape, device='cuda')
        w = torch.randn(o, shape[1], 3, 3, device='cuda') / (9 * shape[1]) ** 0.5
        with torch.no_grad():
            ref = cudnn(x.double(), w.double())
            errors = {k: ((candidates[k](x, w).double() - ref).norm() / ref.norm()).item() for k in names}
            for k in names:  # warm-up, cuDNN's search included
                for _ in range(3):
                    candidates[k](x, w)
            runs = {k: timing(candidates[k], x, w, args.iterations) for k in names}
            samples = {k: [] for k in names}
            for _ in range(args.rounds):
                for k in names:
                    samples[k].append(time_ms(runs[k], args.iterations))
            del runs
        ms = {k: statistics.median(v) for k, v in samples.items()}
        print(f'| {name} | {list(shape)} | {o} | ' + ' | '.join(f'{ms[k]:.4f}' for k in names) + ' | '
              + ' | '.join(f'{ms[k] / ms["cudnn32"]:.2f}' for k in names[1:]) + ' | ' + ' | '.join(f'{errors[k]:.1e}' for k in names) + ' |', flush=True)


if __name__ == '__main__':
    main()
