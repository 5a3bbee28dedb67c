"""core.pipeline.cache.ModelCache: one load per preset across threads, errors not cached, LRU embeddings."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from core.pipeline.cache import EMBEDDING_CACHE_SIZE, ModelCache


class FakePredictor:
    def __init__(self) -> None:
        self.features = None
        self.original_size = None
        self.input_size = None
        self.is_image_set = False


class FakeSam:
    """Counts encoder passes like the real backends' ``embed_calls``; the embedding is the image mean."""

    def __init__(self) -> None:
        self.predictor = FakePredictor()
        self._image = None
        self.embed_calls = 0
        self.is_random = True
        self.name = "fake"

    def set_image(self, img: np.ndarray) -> None:
        if (
            self._image is not None
            and self._image.shape == img.shape
            and np.array_equal(self._image, img)
        ):
            return
        self.predictor.features = float(img.mean())
        self.predictor.original_size = img.shape[:2]
        self.predictor.input_size = img.shape[:2]
        self.predictor.is_image_set = True
        self._image = img.copy()
        self.embed_calls += 1


def _seg(preset: str) -> SimpleNamespace:
    return SimpleNamespace(preset=preset, sam=FakeSam(), is_random=True)


def test_concurrent_requests_for_one_preset_load_it_once():
    calls: list[str] = []
    gate = threading.Event()

    def slow_loader(preset, config):
        calls.append(preset)
        gate.wait(2)
        time.sleep(0.05)
        return _seg(preset)

    cache = ModelCache(load_segmenter=slow_loader)
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.segmenter("tiny-random-lisa")))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == ["tiny-random-lisa"]
    assert len(got) == 6 and all(g is got[0] for g in got)
    # another preset is its own load
    other = cache.segmenter("tiny-random-lens")
    assert other is not got[0] and calls == ["tiny-random-lisa", "tiny-random-lens"]


def test_a_failed_load_raises_in_every_caller_and_is_not_cached():
    attempts = []

    def flaky(preset, config):
        attempts.append(preset)
        if len(attempts) == 1:
            raise FileNotFoundError("/models/sam.pth: no such checkpoint")
        return _seg(preset)

    cache = ModelCache(load_segmenter=flaky)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        cache.segmenter("p")
    assert cache.loaded_segmenter("p") is None
    seg = cache.segmenter("p")  # tried again, not the cached error
    assert attempts == ["p", "p"] and cache.segmenter("p") is seg


def test_clicks_share_the_run_sam_once_the_segmenter_is_loaded():
    sam_alone = FakeSam()
    cache = ModelCache(load_segmenter=lambda p, c: _seg(p), load_sam=lambda p, c: sam_alone)
    first, rnd = cache.sam("tiny-random-lisa")
    assert first is sam_alone and rnd is True
    seg = cache.segmenter("tiny-random-lisa")
    assert cache.sam("tiny-random-lisa")[0] is seg.sam
    cache.clear()
    assert cache.loaded_segmenter("tiny-random-lisa") is None


def test_config_is_read_at_load_time():
    seen = []
    cfg = {"presets": {}}
    cache = ModelCache(load_segmenter=lambda p, c: seen.append(c) or _seg(p), config=lambda: cfg)
    cache.segmenter("x")
    assert seen == [cfg]


def test_embeddings_are_reused_and_evicted_least_recently_used_first():
    cache = ModelCache(load_segmenter=lambda p, c: _seg(p), embedding_cache_size=2)
    sam = cache.segmenter("p").sam
    images = {k: np.full((4, 5, 3), v, np.uint8) for k, v in (("a", 10), ("b", 20), ("c", 30))}
    for k in ("a", "b"):
        with cache.sam_lock(sam):
            cache.set_image(sam, k, images[k])
    assert sam.embed_calls == 2 and cache.cached_embeddings() == ["a", "b"]
    with cache.sam_lock(sam):
        cache.set_image(sam, "a", images["a"])  # restored from the cache: no encoder pass
    assert sam.embed_calls == 2 and sam.predictor.features == pytest.approx(10.0)
    assert cache.cached_embeddings() == ["b", "a"]
    cache.set_image(sam, "c", images["c"])  # evicts b, the least recently used
    assert sam.embed_calls == 3 and cache.cached_embeddings() == ["a", "c"]
    cache.set_image(sam, "b", images["b"])
    assert sam.embed_calls == 4 and sam.predictor.features == pytest.approx(20.0)
    assert len(cache.cached_embeddings()) == 2


def test_a_key_whose_image_changed_is_embedded_again():
    cache = ModelCache(load_segmenter=lambda p, c: _seg(p))
    sam = cache.segmenter("p").sam
    cache.set_image(sam, "k", np.zeros((4, 4, 3), np.uint8))
    cache.set_image(sam, "other", np.ones((4, 4, 3), np.uint8))
    cache.set_image(sam, "k", np.full((4, 4, 3), 7, np.uint8))  # same key, new pixels
    assert sam.embed_calls == 3 and sam.predictor.features == pytest.approx(7.0)


def test_embedding_cache_size_is_a_named_setting():
    assert ModelCache().embedding_cache_size == EMBEDDING_CACHE_SIZE > 0
    with pytest.raises(ValueError):
        ModelCache(embedding_cache_size=-1)


@pytest.mark.slow  # builds the tiny random models
def test_the_tiny_random_preset_loads_once_through_the_real_loader(tmp_path, monkeypatch):
    monkeypatch.setenv("REA2SEG_HOME", str(tmp_path))
    monkeypatch.setenv("REA2SEG_CONFIG", str(tmp_path / "config.toml"))
    cache = ModelCache()
    seg = cache.segmenter("tiny-random-lisa")
    assert cache.segmenter("tiny-random-lisa") is seg and seg.is_random
    sam, rnd = cache.sam("tiny-random-lisa")
    assert sam is seg.sam and rnd
    img = (np.arange(32 * 40 * 3) % 251).astype(np.uint8).reshape(32, 40, 3)
    pts, labels = np.array([[10.0, 12.0]], np.float32), np.array([1], np.int32)
    before = sam.embed_calls
    cache.set_image(sam, ("sample", 1), img)
    want = sam.predict_points(pts, labels, None, multimask=False)[0]
    cache.set_image(sam, ("sample", 2), img[::-1].copy())
    cache.set_image(sam, ("sample", 1), img)  # restored, not embedded again
    assert sam.embed_calls == before + 2
    assert np.array_equal(sam.predict_points(pts, labels, None, multimask=False)[0], want)
