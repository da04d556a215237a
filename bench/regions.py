#!/usr/bin/env python3
"""Host regions on the pure CNNs, in one run: benchmark.py's table (bus copies per forward, time
against the whole model on the CPU in channels-last and against the per-layer fallback, relative
error) for resnet18/50, mobilenet_v2, efficientnet_b0, densenet121, shufflenet_v2_x1_0 and the
UNet at batch 8, deeplabv3_resnet50 at batch 1 (384x384), and training steps of the default
rewrite (auto) and of per-op. Arguments go to benchmark.py after that default (a later option
wins)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backends  # noqa: E402,F401  (adds the zoo models to benchmark.MODELS)
import benchmark  # noqa: E402

DEFAULT = ['--models', 'resnet18,resnet50,mobilenet_v2,efficientnet_b0,densenet121,shufflenet_v2_x1_0,unet',
           '--batches', '8', '--infer', 'deeplabv3_resnet50:1', '--train', 'resnet18:8,mobilenet_v2:8,unet:2', '--train-regions', 'auto,per-op']

if __name__ == '__main__':
    sys.argv = [sys.argv[0]] + DEFAULT + sys.argv[1:]
    benchmark.main()
