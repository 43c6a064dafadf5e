from triptych.video import demo


def test_demo_runs_both_models(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "SPEC", dict(videos=40, valid_videos=12, classes=10, min_frames=4, max_frames=6, seed=0))
    lines = []
    result = demo.run(tmp_path, minutes=0.02, log=lines.append)
    assert set(result["models"]) == {"mean-moe", "gated-netvlad"}
    for r in result["models"].values():
        assert 0 <= r["gap"] <= 1 and r["steps"] >= 1
    assert "NetVLAD + Context Gating" in result["table"] and lines[-1] == result["table"]
