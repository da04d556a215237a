#!/usr/bin/env python3
"""A rewritten model captured in a CUDA graph (torch.cuda.CUDAGraph) with backend device: the
replay's outputs against the same model run without capture, and both timed in alternation beside
the original with cuDNN (TF32 off) run the same two ways. Exits 1 if capture fails or the outputs
differ by more than the noise between two uncaptured runs allows.

    cuda_graph_check.py [--models resnet18:1,resnet50:8]
"""
import argparse
import os
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import backends  # noqa: E402  (models)
import benchmark  # noqa: E402
import rdna1  # noqa: E402


def captured(model, static_input):
    """(graph, static_output): model(static_input) captured after warm-up on a side stream, as the
    CUDA graphs guide prescribes."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):
            model(static_input)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_output = model(static_input)
    return graph, static_output


def replaying(graph, static_input, static_output):
    def step(x):
        static_input.copy_(x)
        graph.replay()
        return static_output
    return step


def check(name, batch, workdir):
    _, load_gpu, load_ours, shape, how, _ = benchmark.build(name, workdir, 'cuda', 'auto')
    make = benchmark.make_inputs(shape, batch, 'cuda')
    ours, original = load_ours().eval(), load_gpu().eval()
    static_input = make()
    with backends.Backend('device'):
        graph, static_output = captured(ours, static_input)
    with backends.DnnLibrary(True, tf32=False):
        vendor_graph, vendor_output = captured(original, static_input)
    x = make()
    with torch.inference_mode(), backends.Backend('device'):
        eager_a, eager_b = ours(x).clone(), ours(x).clone()
        replayed = replaying(graph, static_input, static_output)(x).clone()
    floor = (eager_a - eager_b).abs().max().item()
    scale = eager_a.abs().max().item()
    error = (replayed - eager_a).abs().max().item()
    ok = error <= max(floor, 1e-6 * scale)
    ms = backends.time_interleaved({
        'vendor32': (benchmark.inference_step(original), lambda: backends.DnnLibrary(True, tf32=False)),
        'vendor32 graph': (replaying(vendor_graph, static_input, vendor_output), lambda: backends.DnnLibrary(True, tf32=False)),
        'device': (benchmark.inference_step(ours), lambda: backends.Backend('device')),
        'device graph': (replaying(graph, static_input, static_output), lambda: backends.Backend('device')),
    }, make, 'cuda')
    print(f"| {name} ({how}) | {batch} | {ms['vendor32']:.2f} | {ms['vendor32 graph']:.2f} | {ms['device']:.2f} "
          f"| {ms['device graph']:.2f} | {ms['device graph'] / ms['vendor32 graph']:.2f} | {error:.1e} (floor {floor:.1e}) "
          f"| {'PASS' if ok else 'FAIL'} |", flush=True)
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', default='resnet18:1,resnet50:8')
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    print('| model | batch | vendor32 ms | vendor32 graph ms | device ms | device graph ms | device graph/vendor32 graph '
          '| replay vs uncaptured, max abs | verdict |\n' + '|' + ' --- |' * 9, flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        for job in args.models.split(','):
            name, batch = job.split(':')
            try:
                ok &= check(name, int(batch), workdir)
            except RuntimeError as error:  # capture failed: a host sync or an illegal call
                print(f'| {name} | {batch} | capture failed: {str(error).splitlines()[0]} | FAIL |')
                ok = False
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
