"""Data sets: WaveEq generation/caching, the window sampler (reference bug fixed), on-disk loaders."""

import numpy as np
import pytest

from physics import data


def test_generate_waveeq_vectorised_equals_one_at_a_time_and_is_normalised():
    kw = dict(seed=42, size=16, num_frames=20, subsample=2)
    vec = data.generate_waveeq(3, chunk=2, **kw)  # 2 chunks, last one padded
    one = data.generate_waveeq(3, vectorised=False, **kw)
    np.testing.assert_allclose(vec["video"], one["video"], rtol=1e-5, atol=1e-6)
    v = vec["video"]
    assert v.shape == (3, 10, 16, 16)
    # normalised over all 300 (here 20) frames, before subsampling by 2
    full = data.generate_waveeq(3, seed=42, size=16, num_frames=20, subsample=1)["video"]
    np.testing.assert_allclose(full.reshape(3, -1).max(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(full.reshape(3, -1).min(1), 0.0, atol=1e-6)
    np.testing.assert_array_equal(full[:, ::2], v)
    assert np.all((300 <= vec["c"]) & (vec["c"] < 400)) and np.all(
        (1 <= vec["f0"]) & (vec["f0"] < 30)
    )


def test_load_waveeq_caches_and_splits(tmp_path, monkeypatch):
    kw = dict(num_sequences=5, num_train=4, size=16, num_frames=12)
    first = data.load_waveeq(tmp_path, **kw)
    assert first["train"].shape == (4, 6, 16, 16, 1) and first["test"].shape == (1, 6, 16, 16, 1)
    assert len(list(tmp_path.glob("waveeq_*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(data, "generate_waveeq", boom)
    second = data.load_waveeq(tmp_path, **kw)
    np.testing.assert_array_equal(first["train"], second["train"])
    w100 = data.load_waveeq100(tmp_path, num_pixels=10, **kw)
    idx = data.waveeq100_pixels(16, 10)
    assert w100["train"].shape == (4, 6, 10)
    np.testing.assert_array_equal(w100["train"], first["train"].reshape(4, 6, -1)[:, :, idx])
    np.testing.assert_array_equal(data.waveeq100_pixels(), data.waveeq100_pixels())
    assert len(set(data.waveeq100_pixels().tolist())) == 100


def test_window_sampler_uses_every_training_sequence():
    # The reference took the length from the grid axis (64) instead of time (150).
    seqs = np.zeros((240, 150, 2, 2), np.float32) + np.arange(240)[:, None, None, None]
    seqs = seqs + 1000 * np.arange(150)[None, :, None, None]
    sampler = data.WindowSampler(seqs, length=25, seed=0)
    assert sampler.starts_per_sequence == 126 and len(sampler) == 240 * 126
    seq_ids = np.concatenate([sampler.indices(s, 128)[0] for s in range(40)])
    assert len(np.unique(seq_ids)) == 240
    b = sampler.batch(3, 8)
    assert b.shape == (8, 25, 2, 2)
    np.testing.assert_array_equal(np.diff(b[:, :, 0, 0], axis=1), 1000)  # consecutive frames
    np.testing.assert_array_equal(sampler.batch(3, 8), b)  # deterministic in the step
    assert data.WindowSampler(seqs[:2], 25).fixed_windows(stride=50).shape == (2 * 3, 25, 2, 2)
    with pytest.raises(ValueError, match="exceeds sequence length 150"):
        data.WindowSampler(seqs, 151)


def test_sst_loader_on_synthetic_files(tmp_path):
    root = tmp_path / "sst"
    root.mkdir()
    rng = np.random.default_rng(0)
    for z in range(1, 21):
        np.save(root / f"zone_{z:02d}.npy", rng.normal(10 + z, 2, (12, 8, 8)).astype(np.float32))
    d = data.load_sst(tmp_path, seq_len=10)
    assert d["train"].shape == (16 * 3, 10, 8, 8, 1) and d["test"].shape == (4 * 3, 10, 8, 8, 1)
    assert abs(d["train"].mean()) < 0.1
    (root / "zone_07.npy").unlink()
    with pytest.raises(FileNotFoundError, match="zone_07.npy"):
        data.load_sst(tmp_path)


def test_taxibj_and_chairs_loaders(tmp_path):
    with pytest.raises(FileNotFoundError, match="taxibj/train.npz"):
        data.load_taxibj(tmp_path)
    (tmp_path / "taxibj").mkdir()
    for split, n in (("train", 5), ("test", 2)):
        x = np.random.default_rng(0).uniform(0, 1, (n, 4, 32, 32, 2)).astype(np.float32)
        np.savez(tmp_path / "taxibj" / f"{split}.npz", inputs=x, targets=x + 1)
    d = data.load_taxibj(tmp_path)
    assert d["train"].shape == (5, 8, 32, 32, 2)
    np.testing.assert_allclose(d["test"][:, 4:], d["test"][:, :4] + 1)
    with pytest.raises(FileNotFoundError, match="chairs.npz"):
        data.load_chairs(tmp_path)
    (tmp_path / "chairs").mkdir()
    views = np.random.default_rng(0).integers(0, 255, (10, 31, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "chairs" / "chairs.npz", views=views)
    c = data.load_chairs(tmp_path, seq_len=15)
    assert c["train"].shape == (9 * 31, 15, 8, 8, 3) and c["test"].shape == (31, 15, 8, 8, 3)
    np.testing.assert_allclose(c["train"][30, 1], views[0, 0] / 255.0)  # cyclic wrap


def test_unknown_dataset_names_choices():
    with pytest.raises(ValueError, match="unknown dataset 'foo'.*waveeq"):
        data.load_dataset("foo")


def test_import_does_not_load_heavy_packages():
    import subprocess
    import sys

    code = (
        "import sys, physics, physics.train, physics.main; "
        "print([m for m in ('tensorflow', 'tensorflow_datasets', 'neural_tangents') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
