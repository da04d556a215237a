#!/usr/bin/python3
"""Runs a few SGD steps on a model (rewritten or not) and prints the loss of each step.

    train_rewritten.py MODEL.pt SHAPE [--steps N] [--device cpu|cuda] [--seed N]

Training data are seeded random inputs and targets, so two runs with the same seed on the
original and the rewritten model should print the same losses.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'python'))
import rdna1  # noqa: E402


def train(model, shape, steps=5, seed=0, device='cpu', lr=0.01):
    """Loss of each of `steps` SGD steps (mean squared output as the loss) on random inputs."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        x = torch.randn(shape, generator=generator).to(device)
        optimizer.zero_grad()
        loss = model(x).float().square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model')
    parser.add_argument('shape', help='input shape, e.g. 8x3x64x64')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    model = rdna1.load(args.model)
    shape = [int(s) for s in args.shape.split('x')]
    for step, loss in enumerate(train(model, shape, args.steps, args.seed, args.device)):
        print(f'step {step}: loss {loss:.6f}')


if __name__ == '__main__':
    main()
