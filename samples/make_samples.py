#!/usr/bin/python3
"""Writes the sample models as TorchScript files: OUT_DIR/<name>_<scripted|traced>.pt."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sample_models  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('out_dir')
    parser.add_argument('--only', nargs='*', help='sample names (default: all)')
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only or sample_models.SAMPLES:
        for mode in ('scripted', 'traced'):
            path = os.path.join(args.out_dir, f'{name}_{mode}.pt')
            sample_models.save(name, mode, path)
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
