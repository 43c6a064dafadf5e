"""`vision eval` with several checkpoints: the mean of the members' distributions, against its definition."""

import json
import shutil

import pytest
import torch
import yaml

from triptych.cli import main
from triptych.vision.predictor import Classifier

from .test_fashion import make_fashion

TRAIN = ["--set", "train.max_steps=30", "--set", "train.warmup_steps=2", "--set", "train.eval_every=15",
         "--set", "train.save_every=15", "--set", "train.log_every=0", "--set", "train.threads=1", "--json"]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two small Fashion-MNIST runs that differ in seed and input size (LeNet-5 at 32 and at 28 pixels)."""
    tmp = tmp_path_factory.mktemp("ensemble")
    root = make_fashion(tmp / "fm", n_train=200, n_test=50)
    runs = []
    for name, extra in (("a32", []), ("b28", ["--set", "model.small_input=true", "--set", "data.image_size=28",
                                              "--set", "seed=7"])):
        assert main(["vision", "train", "configs/vision/lenet5-fashion.yaml", "--out", str(tmp / name),
                     "--set", f"data.root={root}", *TRAIN, *extra]) == 0
        runs.append(tmp / name / "best")
    return tmp, runs


def _eval(capsys, *args):
    capsys.readouterr()
    status = main(["vision", "eval", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_ensemble_is_the_mean_distribution(members, capsys):
    _, (a, b) = members
    status, out, _ = _eval(capsys, "--checkpoint", str(a), "--checkpoint", str(b), "--data", "fashion:test", "--json")
    result = json.loads(out)
    assert status == 0 and result["checkpoints"] == [str(a), str(b)] and result["images"] == 50
    want, labels, accs = 0, None, []
    for ckpt in (a, b):  # the definition, member by member through the public Classifier
        clf = Classifier(ckpt)
        logp, labels = clf.log_probabilities(clf.dataset("fashion:test"))
        accs.append(float((logp.argmax(1) == labels).float().mean()))
        want = want + logp.double().exp() / 2
    assert [m["accuracy"] for m in result["members"]] == pytest.approx(accs)
    assert result["accuracy"] == pytest.approx(float((want.argmax(1) == labels).double().mean()))
    assert result["loss"] == pytest.approx(float(-want.log().gather(1, labels[:, None]).mean()), rel=1e-4)
    assert sum(map(sum, result["confusion"])) == 50


def test_ensemble_of_one_model_twice_is_that_model(members, capsys):
    _, (a, _) = members
    single = json.loads(_eval(capsys, "--checkpoint", str(a), "--data", "fashion:test", "--json")[1])
    twice = json.loads(_eval(capsys, "--checkpoint", str(a), "--checkpoint", str(a), "--data", "fashion:test", "--json")[1])
    assert twice["accuracy"] == single["accuracy"] and twice["confusion"] == single["confusion"]
    assert twice["loss"] == pytest.approx(single["loss"], rel=1e-4)
    status, out, _ = _eval(capsys, "--checkpoint", str(a), "--checkpoint", str(a), "--data", "fashion:test")
    assert status == 0 and "ensemble of 2 (lenet5, lenet5)" in out and out.count("accuracy") == 3


def test_members_must_share_classes_and_images(members, capsys):
    tmp, (a, _) = members
    renamed = tmp / "renamed"
    shutil.copytree(a, renamed, dirs_exist_ok=True)
    (renamed / "classes.json").write_text(json.dumps([f"c{i}" for i in range(10)]))
    status, out, err = _eval(capsys, "--checkpoint", str(a), "--checkpoint", str(renamed), "--data", "fashion:test")
    assert status == 2 and "classes differ" in err and str(renamed) in err and err.count("\n") == 1 and not out
    other_split = tmp / "other-split"
    shutil.copytree(a, other_split, dirs_exist_ok=True)
    cfg = yaml.safe_load((other_split / "config.yaml").read_text())
    cfg["data"]["valid_fraction"] = 0.2
    (other_split / "config.yaml").write_text(yaml.safe_dump(cfg))
    status, _, err = _eval(capsys, "--checkpoint", str(a), "--checkpoint", str(other_split), "--data", "fashion:valid")
    assert status == 2 and "must see the same images" in err and err.count("\n") == 1


def test_log_probabilities_are_normalised(members):
    _, (a, _) = members
    clf = Classifier(a)
    logp, labels = clf.log_probabilities(clf.dataset("fashion:test"))
    assert logp.shape == (50, 10) and labels.shape == (50,)
    assert torch.allclose(logp.exp().sum(1), torch.ones(50), atol=1e-5)
