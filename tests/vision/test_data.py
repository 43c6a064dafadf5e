import numpy as np
import pytest
import torch
from PIL import Image

from triptych.errors import UserError
from triptych.vision.config import DataConfig
from triptych.vision.data import (
    FolderImages, build_splits, digits_split_indices, measure_normalization, open_image,
)


def test_digits_split_is_fixed_disjoint_and_stratified():
    a, b = digits_split_indices(), digits_split_indices()
    assert {k: len(v) for k, v in a.items()} == {"train": 1259, "valid": 179, "test": 359}
    for k in a:
        assert np.array_equal(a[k], b[k])
    every = np.concatenate(list(a.values()))
    assert len(every) == len(set(every.tolist())) == 1797
    from triptych.vision.data import digits_arrays

    _, labels = digits_arrays()
    assert np.bincount(labels[a["test"]], minlength=10).min() >= 34


def test_digits_resized_and_augmented():
    splits = build_splits(DataConfig(image_size=32))
    x, y = splits.train.batch([0, 1, 2, 3], train=False)
    assert x.shape == (4, 1, 32, 32) and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.long
    torch.manual_seed(0)
    xa, _ = splits.train.batch([0, 1, 2, 3], train=True)
    assert xa.shape == x.shape and not torch.allclose(xa, x)
    mean, std = measure_normalization(splits.train)
    assert len(mean) == 1 and 0.2 < mean[0] < 0.4 and std[0] > 0.1


def write_png(path, size=(12, 10), mode="RGB", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3) if mode == "RGB" else (size[1], size[0]), value, dtype=np.uint8)
    Image.fromarray(arr, mode=mode).save(path)
    return path


def make_folder(root, classes=("cat", "dog"), per_class=3, mode="RGB"):
    for c in classes:
        for i in range(per_class):
            write_png(root / c / f"{i}.png", mode=mode, value=40 * i + (100 if c == "dog" else 0))
    return root


def test_image_folder_scan_and_transforms(tmp_path):
    root = make_folder(tmp_path / "train")
    (root / "cat" / "notes.txt").write_text("not an image, and not named like one: ignored")
    cfg = DataConfig(name="folder", train=str(root), image_size=8)
    images = FolderImages(root, cfg)
    assert images.classes == ["cat", "dog"] and images.labels == [0, 0, 0, 1, 1, 1]
    x, y = images.batch([0, 4], train=True)
    assert x.shape == (2, 3, 8, 8) and y.tolist() == [0, 1]
    splits = build_splits(DataConfig(name="folder", train=str(root), valid_fraction=0.34, image_size=8))
    assert len(splits.train) + len(splits.valid) == 6 and len(splits.valid) == 2


def test_bad_images_are_one_line_errors(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    with pytest.raises(UserError, match=r"fake.png: not an image"):
        open_image(fake, 3)
    grey = write_png(tmp_path / "grey.png", mode="L")
    with pytest.raises(UserError, match=r"grey.png: grayscale image .* takes RGB; use --convert"):
        open_image(grey, 3)
    assert open_image(grey, 3, convert=True).mode == "RGB"
    rgb = write_png(tmp_path / "rgb.png")
    with pytest.raises(UserError, match=r"rgb.png: colour image"):
        open_image(rgb, 1)
    big = write_png(tmp_path / "big.png", size=(300, 200))
    with pytest.raises(UserError, match=r"big.png: image is 300x200 = 60,000 pixels, more than the 50,000"):
        open_image(big, 3, max_pixels=50_000)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(big.read_bytes()[:200])
    with pytest.raises(UserError, match=r"cut.png: corrupt or truncated"):
        open_image(truncated, 3)
    with pytest.raises(UserError, match=r"missing.png: no such image file"):
        open_image(tmp_path / "missing.png", 3)


def test_bad_folders(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match=r"empty/cat: empty class folder"):
        FolderImages(tmp_path / "empty", DataConfig(name="folder"))
    (tmp_path / "bare").mkdir()
    with pytest.raises(UserError, match=r"bare: no images"):  # no class folders at all
        FolderImages(tmp_path / "bare", DataConfig(name="folder"))
    with pytest.raises(UserError, match=r"nowhere: no such directory"):
        FolderImages(tmp_path / "nowhere", DataConfig(name="folder"))
    root = make_folder(tmp_path / "grey", mode="L")
    with pytest.raises(UserError, match=r"grey/cat/0.png: grayscale image"):
        FolderImages(root, DataConfig(name="folder"))
    assert len(FolderImages(root, DataConfig(name="folder", convert=True))) == 6
    with pytest.raises(UserError, match=r"data.name: expected 'digits', 'folder' or 'fashion'"):
        build_splits(DataConfig(name="mnist"))


def test_normalize_in_place_and_on_views_gives_the_standardised_values():
    """The loader normalises photo batches in place and in-memory batches
    (which may be views: Fashion's grey images expanded to 3 channels) into
    a new tensor: both give (x - mean) / std, and the input view is untouched."""
    from triptych.vision.transforms import normalize, normalize_

    grey = torch.rand(4, 1, 6, 6)
    view = grey.expand(-1, 3, -1, -1)  # stride 0 over channels: in-place writes would collide
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    expected = (view.contiguous() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = normalize(view, mean, std)
    assert torch.equal(out, expected)
    assert torch.equal(view[:, 0], grey[:, 0])  # the input is not modified
    fresh = view.contiguous()
    assert normalize_(fresh, mean, std) is fresh
    assert torch.equal(fresh, expected)
