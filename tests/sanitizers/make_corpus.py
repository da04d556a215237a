#!/usr/bin/python3
"""Seeds the rewrite fuzzer: the bad inputs of tests/e2e/test_cli_errors.py and small real models.

Usage: make_corpus.py SAMPLES_DIR CORPUS_DIR, where SAMPLES_DIR holds samples/make_samples.py
output (at least unet and audio); resnet18 is left out, as inputs that large slow every run.
"""
import io
import os
import random
import shutil
import sys
import zipfile

import torch


def main():
    samples, corpus = sys.argv[1], sys.argv[2]
    os.makedirs(corpus, exist_ok=True)

    def write(name, data):
        with open(os.path.join(corpus, name), 'wb') as f:
            f.write(data)

    write('empty.pt', b'')
    write('random.pt', random.Random(6).randbytes(4096))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('archive/hello.txt', 'hello')
    write('not_torchscript.zip', archive.getvalue())
    with open(os.path.join(samples, 'unet_scripted.pt'), 'rb') as f:
        unet = f.read()
    write('truncated.pt', unet[:len(unet) // 2])
    pickle = io.BytesIO()
    torch.save(torch.nn.Conv2d(1, 1, 1), pickle)
    write('torch_save.pt', pickle.getvalue())
    # The smallest real model runs, and so mutates, fastest.
    torch.manual_seed(0)
    tiny = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).eval()),
                   tiny)
    write('tiny_conv.pt', tiny.getvalue())
    for name in ('audio_scripted', 'audio_traced', 'unet_scripted', 'unet_traced'):
        shutil.copy(os.path.join(samples, name + '.pt'), os.path.join(corpus, name + '.pt'))


if __name__ == '__main__':
    main()
