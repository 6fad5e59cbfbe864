"""The model.pt format, predictions on image files, and ONNX export (all synthetic and fast)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas import build_model, load_config
from nas.errors import NasError
from nas.inference.onnx import export_onnx
from nas.inference.predict import predict_images
from nas.training.modelfile import Classifier, load_model, save_model

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "search_spaces" / "reference.toml"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@pytest.fixture(scope="module")
def trained() -> tuple:
    """The reference with random weights and BatchNorm statistics far from their initial 0 and 1,
    so that a round trip that lost the buffers or the eval mode would show in the logits."""
    config = load_config(REFERENCE)
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return config, model.eval()


@pytest.fixture
def run_dir(tmp_path, trained) -> Path:
    config, model = trained
    run = tmp_path / "run"
    run.mkdir()
    save_model(run, config, model, MEAN, STD, CLASSES)
    return run


def uint8_batch(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def reference_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model((images.float() / 255 - mean) / std)


def test_save_load_round_trip_gives_identical_logits(run_dir, trained):
    config, model = trained
    file = run_dir / "model.pt"
    payload = torch.load(file, weights_only=True)  # plain values and tensors only
    assert {"config", "state_dict", "mean", "std", "classes"} <= payload.keys()
    assert payload["classes"] == list(CLASSES) and payload["config"] == config.to_dict()
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in payload["state_dict"].values())

    images = uint8_batch(8)
    expected = reference_logits(model, images)
    for source in (run_dir, file, str(file)):
        classifier, classes = load_model(source)
        assert isinstance(classifier, Classifier) and not classifier.training
        assert classes == CLASSES
        with torch.no_grad():
            assert torch.equal(classifier(images), expected)
            assert torch.allclose(classifier(images.float() / 255), expected, atol=1e-5)


def test_save_model_writes_channels_last_weights_contiguous(tmp_path, trained):
    config, model = trained
    import copy

    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    file = save_model(tmp_path / "cl.pt", config, cl, MEAN, STD, CLASSES)
    state = torch.load(file, weights_only=True)["state_dict"]
    assert all(t.is_contiguous() for t in state.values())
    classifier, _ = load_model(file)
    images = uint8_batch(4)
    with torch.no_grad():
        assert torch.allclose(classifier(images), reference_logits(model, images), atol=1e-5)


def write_images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):  # 32×32 RGB PNGs
        path = folder / f"small{i}.png"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    jpeg = folder / "photo.jpg"  # another size, JPEG
    Image.fromarray(rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)).save(jpeg, quality=90)
    grey = folder / "grey.png"  # one channel, to be RGB-converted
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(grey)
    rgba = folder / "alpha.PNG"
    Image.fromarray(rng.integers(0, 256, (20, 40, 4), dtype=np.uint8), mode="RGBA").save(rgba)
    return [*paths, jpeg, grey, rgba]


def test_predict_images_returns_sorted_top_k(run_dir, tmp_path):
    classifier, classes = load_model(run_dir)
    paths = write_images(tmp_path)
    results = predict_images(classifier, classes, paths, top=3)
    assert len(results) == len(paths)
    for top in results:
        assert len(top) == 3
        names, probs = zip(*top, strict=True)
        assert set(names) <= set(classes) and len(set(names)) == 3
        assert all(0 <= p <= 1 for p in probs)
        assert list(probs) == sorted(probs, reverse=True)
        assert sum(probs) <= 1 + 1e-6
    everything = predict_images(classifier, classes, paths[:1], top=50)[0]
    assert len(everything) == len(classes)
    assert sum(p for _, p in everything) == pytest.approx(1, abs=1e-5)
    assert predict_images(classifier, classes, []) == []


def test_predict_images_matches_the_classifier_on_a_32x32_png(run_dir, tmp_path, trained):
    """A 32×32 RGB PNG goes in unchanged: the probabilities are softmax(model(pixels))."""
    _, model = trained
    classifier, classes = load_model(run_dir)
    pixels = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    top = predict_images(classifier, classes, [tmp_path / "x.png"], top=1)[0][0]
    logits = reference_logits(model, torch.from_numpy(pixels).permute(2, 0, 1)[None])
    probs = logits.softmax(dim=1)[0]
    assert top == (classes[int(probs.argmax())], pytest.approx(float(probs.max()), abs=1e-6))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_images_raise_nas_error(run_dir, tmp_path):
    classifier, classes = load_model(run_dir)
    good = write_images(tmp_path)[0]
    with pytest.raises(NasError) as err:
        predict_images(classifier, classes, [good, tmp_path / "nope.png"])
    assert "nope.png" in one_line(err) and "no such image file" in one_line(err)

    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n")
    with pytest.raises(NasError) as err:
        predict_images(classifier, classes, [fake])
    assert "notes.png" in one_line(err) and "not an image" in one_line(err)

    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes((tmp_path / "photo.jpg").read_bytes()[:200])
    with pytest.raises(NasError) as err:
        predict_images(classifier, classes, [truncated])
    assert "cut.jpg" in one_line(err)

    with pytest.raises(NasError) as err:
        predict_images(classifier, classes, [tmp_path])
    assert "folder" in one_line(err)


def test_bad_model_sources_raise_nas_error(tmp_path):
    empty = tmp_path / "unfinished-run"
    empty.mkdir()
    with pytest.raises(NasError) as err:
        load_model(empty)
    assert "unfinished-run" in one_line(err) and "model.pt" in one_line(err)

    with pytest.raises(NasError) as err:
        load_model(tmp_path / "missing")
    assert "no such run folder or model file" in one_line(err)

    junk = tmp_path / "model.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(NasError) as err:
        load_model(junk)
    assert "not a readable model file" in one_line(err)

    torch.save({"state_dict": {}}, tmp_path / "partial.pt")
    with pytest.raises(NasError) as err:
        load_model(tmp_path / "partial.pt")
    assert "missing config" in one_line(err)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_model_file_is_one_short_line(run_dir, damage):
    """Not torch's zip-reader message (hundreds of characters): what is wrong, and what to do."""
    file = run_dir / "model.pt"
    data = file.read_bytes()
    file.write_bytes(data[:len(data) // 2] if damage == "truncated" else bytes(range(256)) * 8)
    with pytest.raises(NasError) as err:
        load_model(run_dir)
    message = one_line(err)
    assert message.startswith(f"{file}: not a readable model file (damaged")
    assert "re-run the training" in message and len(message) - len(str(file)) < 120


def test_export_to_an_unwritable_place_is_one_line_and_writes_nothing(run_dir, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from nas.cli.main import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    before = sorted(tmp_path.rglob("*"))
    assert main(["export", str(run_dir), "--out", str(blocker / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: cannot write") and err.count("\n") == 1
    assert "a-file" in err and "--out" in err
    assert sorted(tmp_path.rglob("*")) == before and blocker.read_text() == "not a folder\n"


@pytest.mark.parametrize("kind", ["uint8", "float"])
def test_onnx_export_matches_pytorch(run_dir, tmp_path, kind):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    out = export_onnx(run_dir, tmp_path / "out" / f"model-{kind}.onnx", kind)
    assert out.is_file() and list(out.parent.iterdir()) == [out]  # one self-contained file

    classifier, classes = load_model(run_dir)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert inp.name == "images" and outp.name == "logits"
    assert inp.type == ("tensor(uint8)" if kind == "uint8" else "tensor(float)")
    assert session.get_modelmeta().custom_metadata_map["classes"].split("\n") == list(classes)
    for n in (1, 7):  # a dynamic batch axis: sizes other than the example's
        images = uint8_batch(n, seed=n)
        feed = images if kind == "uint8" else images.float() / 255
        got = session.run(None, {"images": feed.numpy()})[0]
        with torch.no_grad():
            expected = classifier(feed).numpy()
        assert got.shape == (n, len(classes))
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_onnx_export_errors(run_dir, tmp_path, monkeypatch):
    with pytest.raises(NasError) as err:
        export_onnx(run_dir, tmp_path / "m.onnx", "float16")
    assert "uint8 or float" in one_line(err)

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(NasError) as err:
        export_onnx(run_dir, tmp_path / "m.onnx", "uint8")
    assert "onnx" in one_line(err) and "pip install -e '.[export]'" in one_line(err)
