"""Photos decoded in DataLoader workers: same batches as in place, bad files as one line."""

import pytest
import torch

from triptych.errors import UserError
from triptych.vision.config import DataConfig, VisionConfig
from triptych.vision.task import VisionTask
from .test_finetune import colour_folder


def task_with(root, workers):
    cfg = VisionConfig(model={"name": "lenet5", "small_input": True},
                       data=DataConfig(name="folder", train=str(root), image_size=16, batch_size=4,
                                       valid_fraction=0.25, workers=workers, mean=[0.5] * 3, std=[0.5] * 3))
    return VisionTask(cfg)


def epoch_batches(task, epoch):
    plan = task.batch_plan(epoch)
    return [task.collate(ix, "cpu") for ix in plan]


def test_workers_give_the_same_batches_as_in_place(tmp_path):
    root = colour_folder(tmp_path / "photos")
    in_place, ahead = task_with(root, 0), task_with(root, 2)
    # in place, each batch draws from its own seed too once workers are on; compare two worker counts
    one = task_with(root, 1)
    for epoch in (0, 1):
        a, b = epoch_batches(ahead, epoch), epoch_batches(one, epoch)
        assert len(a) == len(b) >= 4
        for ix, (xa, ya), (xb, yb) in zip(ahead.batch_plan(epoch), a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
            assert ya.tolist() == [ahead.splits.train.labels[i] for i in ix]  # the planned images, in order
    # one stream across the epoch boundary (the engine plans epoch 1 only when it gets there)
    fresh = task_with(root, 2)
    p0, p1 = fresh.batch_plan_pure(0), fresh.batch_plan_pure(1)
    fresh.batch_plan(0)
    got = [fresh.collate(ix, "cpu")[1].tolist() for ix in p0]
    fresh.batch_plan(1)
    got += [fresh.collate(ix, "cpu")[1].tolist() for ix in p1]
    labels = fresh.splits.train.labels
    assert got == [[labels[i] for i in ix] for ix in p0 + p1]
    assert fresh.feeds._prefetchers[(id(fresh.splits.train), True)].starts == 1  # never restarted
    # the augmentation is real: two epochs differ
    assert not torch.equal(epoch_batches(ahead, 0)[0][0], epoch_batches(ahead, 1)[0][0])
    # out-of-order requests (a resume) restart the stream where asked
    plan = ahead.batch_plan(1)
    assert torch.equal(ahead.collate(plan[2], "cpu")[0], epoch_batches(one, 1)[2][0])
    # evaluation walks the set in slices, decoded ahead, equal to the in-place decoding
    from triptych.vision.task import evaluate_set

    assert evaluate_set(ahead, ahead.model, ahead.splits.valid) == evaluate_set(in_place, ahead.model, in_place.splits.valid)


def test_corrupt_photo_in_a_worker_is_one_line(tmp_path):
    root = colour_folder(tmp_path / "photos")
    bad = root / "red" / "3.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[:len(data) * 2 // 3])  # the header survives, the picture does not
    task = task_with(root, 2)
    with pytest.raises(UserError, match=r"3.jpg: corrupt or truncated image") as e:
        for epoch in (0, 1):
            epoch_batches(task, epoch)
            from triptych.vision.task import evaluate_set

            evaluate_set(task, task.model, task.splits.valid)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_large_jpegs_are_decoded_at_a_reduced_scale_with_the_same_result(tmp_path):
    import numpy as np
    from PIL import Image

    from triptych.vision import transforms as T
    from triptych.vision.data import FolderImages

    yy, xx = np.mgrid[0:600, 0:800]
    img = np.stack([(xx * 255 // 800), (yy * 255 // 600), np.full_like(xx, 90)], -1).astype(np.uint8)
    (tmp_path / "a").mkdir()
    Image.fromarray(img).save(tmp_path / "a" / "big.jpg", quality=95)
    plan = T.CropPlan(64, (0.5, 1.0))
    torch.manual_seed(0)
    w, h = plan.draft(800, 600)
    left, top, right, bottom = plan.box
    assert min(right - left, bottom - top) // 2 >= 64 and (w, h) < (800, 600)  # a real reduction
    cfg = DataConfig(name="folder", image_size=64, crop_scale=(0.5, 1.0))
    images = FolderImages(tmp_path, cfg)
    x, _ = images.batch([0], train=False)  # eval: resize to 73 + centre crop, from a 1/8-scale decode
    full = T.to_tensor(T.eval_transform(Image.open(tmp_path / "a" / "big.jpg").convert("RGB"), 64))
    assert x.shape == (1, 3, 64, 64) and (x[0] - full).abs().mean() < 0.02
    torch.manual_seed(1)
    xt, _ = images.batch([0], train=True)
    assert xt.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("size", [(801, 601), (800, 600), (803, 998)])
def test_odd_sized_jpegs_are_decoded_at_a_reduced_scale_too(tmp_path, size):
    """Pillow's draft picks its scale as width // asked: a request rounded up
    would leave every photo with an odd side at full size (half the photos)."""
    import numpy as np
    from PIL import Image

    from triptych.vision import transforms as T
    from triptych.vision.data import open_image

    w, h = size
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(tmp_path / "odd.jpg", quality=90)
    img = open_image(tmp_path / "odd.jpg", 3, draft=lambda w, h: T.eval_draft(w, h, 64))
    assert img.size == (-(-w // 8), -(-h // 8))  # 1/8 scale: the short side >= 73 still
    plan = T.CropPlan(64, (1.0, 1.0))  # the whole image: a crop of >= 600 px, factor >= 9 -> 1/8
    torch.manual_seed(0)
    img = open_image(tmp_path / "odd.jpg", 3, draft=plan.draft)
    assert img.size == (-(-w // 8), -(-h // 8))
    left, top, right, bottom = plan.box_for(img)
    assert min(right - left, bottom - top) >= 64
