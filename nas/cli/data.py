"""`nas data download|check`: CIFAR-10 fetched or checked, md5 by md5."""

from __future__ import annotations

import argparse

from nas.cli.views import console
from nas.data.cifar10 import load_cifar10, verify_cifar10
from nas.data.settings import resolve_data_dir


def data(args: argparse.Namespace) -> int:
    from nas.data.download import download_cifar10

    data_dir = resolve_data_dir(args.data_dir)
    folder = download_cifar10(data_dir, log=console.print) if args.action == "download" \
        else verify_cifar10(data_dir)
    cifar = load_cifar10(folder)
    console.print(f"CIFAR-10 in {folder}: {len(cifar.train_labels):,} training and "
                  f"{len(cifar.test_labels):,} test images, md5s match the official release")
    return 0
