"""The toy data set: deterministic by seed, captions that say what is drawn, masks where it is drawn,
and a tokenizer with a fixed vocabulary."""
import pytest
import torch

from sdcourse.toy import COLORS, MAX_TOKENS, POSITIONS, SHAPES, VOCAB, Tokenizer, make_batch, parse_caption, render, ToyObject


def test_same_seed_same_batch_other_seed_other_batch():
    a, b, c = make_batch(8, seed=3), make_batch(8, seed=3), make_batch(8, seed=4)
    assert torch.equal(a.images, b.images) and a.captions == b.captions and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)


def test_shapes_ranges_and_masks():
    batch = make_batch(16, seed=0, size=32, p_two=0.5)
    assert batch.images.shape == (16, 3, 32, 32) and batch.masks.shape == (16, 2, 32, 32)
    assert batch.images.dtype == torch.float32 and batch.images.min() >= -1 and batch.images.max() <= 1
    for image, masks, objects in zip(batch.images, batch.masks, batch.objects):
        for k, obj in enumerate(objects):
            m = masks[k]
            assert 40 < int(m.sum()) < 200  # an object of radius ~5-6 px
            # the pixels in the mask have the object's colour (antialiased edges aside)
            rgb = (image[:, m] + 1) / 2  # (3, n)
            assert torch.allclose(rgb.median(dim=1).values, torch.tensor(COLORS[obj.color], dtype=torch.float32), atol=0.02)
            # and the mask sits in the quadrant the caption names
            rows, cols = torch.nonzero(m, as_tuple=True)
            top, left = rows.float().mean() < 16, cols.float().mean() < 16
            assert obj.position == ("top" if top else "bottom") + " " + ("left" if left else "right")
        if len(objects) == 1:
            assert not masks[1].any()
        else:
            assert not (masks[0] & masks[1]).any()  # distinct quadrants never overlap
        # outside every mask the image is (nearly) black
        outside = ~(masks[0] | masks[1])
        assert ((image[:, outside] + 1) / 2).max() < 0.5


def test_captions_describe_the_objects():
    batch = make_batch(30, seed=1, p_two=0.5)
    for caption, objects in zip(batch.captions, batch.objects):
        wanted = parse_caption(caption)
        assert len(wanted) == len(objects)
        for w, o in zip(wanted, objects):
            assert w == {"color": o.color, "shape": o.shape, "position": o.position}


def test_word_dropout_leaves_words_out():
    batch = make_batch(200, seed=2, drop_color=0.5, drop_shape=0.5, drop_position=0.5)
    n_color = sum(any(c in cap.split() for c in COLORS) for cap in batch.captions)
    n_shape = sum(any(s in cap.split() for s in SHAPES) for cap in batch.captions)
    assert 60 < n_color < 140 and 60 < n_shape < 140  # about half of them
    assert all(cap.strip() for cap in batch.captions)  # never all three attributes dropped
    for cap, dropped in zip(batch.captions, batch.dropped):
        assert len(dropped) <= 2
        if "color" in dropped:
            assert not any(c in cap.split() for c in COLORS)


def test_tokenizer_round_trip_and_specials():
    tok = Tokenizer()
    ids = tok.encode("red circle top left")
    assert ids.shape == (MAX_TOKENS,) and ids.dtype == torch.long
    assert [VOCAB[i] for i in ids[:6]] == ["<start>", "red", "circle", "top", "left", "<end>"]
    assert all(VOCAB[i] == "<pad>" for i in ids[6:])
    assert tok.decode(ids) == "red circle top left"
    assert [VOCAB[i] for i in tok.encode("")[:3]] == ["<start>", "<end>", "<pad>"]
    longest = "purple triangle bottom right and yellow square top left"
    assert tok([longest, ""]).shape == (2, MAX_TOKENS)


def test_tokenizer_errors_say_what_to_do():
    tok = Tokenizer()
    with pytest.raises(ValueError, match="unknown word"):
        tok.encode("a red circle")
    with pytest.raises(ValueError, match="max_tokens"):
        tok.encode("red circle top left and blue square top right and red circle")
    with pytest.raises(ValueError, match="list of captions"):
        tok("red circle")
    with pytest.raises(ValueError, match="multiple of 8"):
        make_batch(1, seed=0, size=30)


def test_render_draws_distinct_shapes():
    areas = {}
    for shape in SHAPES:
        image, masks = render([ToyObject("red", shape, "top left", (8.3, 8.3), 5.5)], size=32)
        areas[shape] = float((image[0] + 1).sum() / 2 / 0.95)  # antialiased area from the red channel
        assert masks.shape == (1, 32, 32)
        assert abs(int(masks[0].sum()) - areas[shape]) < 12
    # triangle (2.2 r^2) < square (2.89 r^2) < circle (pi r^2)
    assert areas["triangle"] < areas["square"] < areas["circle"]
    assert areas["circle"] == pytest.approx(3.14159 * 5.5 ** 2, rel=0.02)
    assert len(POSITIONS) == 4
