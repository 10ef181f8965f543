"""The judge is independent of the model: it must be right on the generator's own images and
wrong when the image does not match the caption."""
import numpy as np
import pytest
import torch

from sdcourse.evaluate import connected_regions, judge_image, localisation_score, match_prompt
from sdcourse.toy import COLORS, SHAPES, ToyObject, make_batch, render


def test_judge_is_right_on_ground_truth():
    batch = make_batch(150, seed=11, p_two=0.4)
    right = total = 0
    for image, caption in zip(batch.images, batch.captions):
        for res in match_prompt(caption, judge_image(image)):
            right += int(res["exact"])
            total += 1
    assert right / total >= 0.99


def test_judge_finds_the_objects_masks():
    batch = make_batch(20, seed=12, p_two=1.0)
    for image, masks, objects in zip(batch.images, batch.masks, batch.objects):
        found = judge_image(image)
        assert len(found) == 2
        for k, obj in enumerate(objects):
            match = [f for f in found if f["position"] == obj.position][0]
            iou = (match["mask"] & masks[k].numpy()).sum() / (match["mask"] | masks[k].numpy()).sum()
            assert iou > 0.8


def test_judge_is_wrong_on_wrong_images():
    obj = ToyObject("red", "square", "top left", (8.0, 8.0), 5.5)
    image, _ = render([obj], size=32)
    assert match_prompt("red square top left", judge_image(image))[0]["exact"]
    wrong_color = match_prompt("blue square top left", judge_image(image))[0]
    wrong_shape = match_prompt("red circle top left", judge_image(image))[0]
    wrong_place = match_prompt("red square bottom right", judge_image(image))[0]
    assert (wrong_color["color"], wrong_color["shape"], wrong_color["position"]) == (False, True, True)
    assert (wrong_shape["color"], wrong_shape["shape"], wrong_shape["position"]) == (True, False, True)
    assert (wrong_place["color"], wrong_place["shape"], wrong_place["position"]) == (True, True, False)
    # an empty image and pure noise satisfy nothing
    black = -torch.ones(3, 32, 32)
    assert not any(match_prompt("red square top left", judge_image(black))[0][a] for a in ("color", "shape", "position"))
    noise = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert not match_prompt("red square top left", judge_image(noise))[0]["exact"]
    # two touching circles merge into one region: not "a circle"
    two, _ = render([ToyObject("red", "circle", "top left", (5.5, 8.0), 5.3),
                     ToyObject("red", "circle", "bottom left", (15.8, 8.0), 5.3)], size=32)
    merged = judge_image(two)
    assert len(merged) == 1 and merged[0]["shape"] == "unclear"
    assert not match_prompt("red circle top left", merged)[0]["shape"]


def test_judge_tells_every_colour_and_shape():
    for color in COLORS:
        for shape in SHAPES:
            image, _ = render([ToyObject(color, shape, "bottom right", (23.5, 24.0), 5.0)], size=32)
            found = judge_image(image)
            assert len(found) == 1 and (found[0]["color"], found[0]["shape"]) == (color, shape)


def test_connected_regions_by_hand():
    mask = np.zeros((6, 6), bool)
    mask[0:2, 0:2] = True  # 4 pixels
    mask[4:6, 3:6] = True  # 6 pixels
    mask[2, 5] = True  # 1 pixel, touches nothing (diagonals do not count)
    regions = connected_regions(mask)
    assert [int(r.sum()) for r in regions] == [6, 4, 1]


def test_localisation_score_by_hand():
    mask = np.zeros((32, 32), bool)
    mask[:16, :16] = True  # a quarter of the image
    inside = torch.zeros(8, 8)
    inside[:4, :4] = 1.0  # all mass in the object's cells
    assert localisation_score(inside, mask) == pytest.approx(4.0)
    assert localisation_score(torch.ones(8, 8), mask) == pytest.approx(1.0)  # spread evenly: chance
    outside = 1.0 - inside
    assert localisation_score(outside, mask) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="empty"):
        localisation_score(inside, np.zeros((32, 32), bool))


def test_attention_maps_of_a_generation_are_distributions():
    from sdcourse.evaluate import LEVELS, generate_with_attention
    from sdcourse.train import TinySD, TrainConfig

    torch.manual_seed(0)
    model = TinySD(TrainConfig(channels=(32, 16, 16))).eval()
    captions = ["red circle top left", "blue square bottom right and green triangle top left"]
    images, maps = generate_with_attention(model, captions, steps=2, levels=list(LEVELS.values()))
    assert images.shape == (2, 3, 24, 24)
    assert maps.shape == (len(LEVELS), 2, 12, 8, 8)  # (levels, captions, tokens, grid, grid)
    # every pixel's attention over the 12 tokens sums to 1, at every level
    assert torch.allclose(maps.sum(dim=2), torch.ones(len(LEVELS), 2, 8, 8), atol=1e-4)
    # each caption got its own maps (the recorder kept one sample per caption)
    assert not torch.allclose(maps[:, 0], maps[:, 1])
