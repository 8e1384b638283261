"""The choices the kinds offer (``jobs.settings``) are the ones the model code accepts."""

from __future__ import annotations


def test_the_kinds_choices_are_the_model_codes():
    from orienteer.jobs import settings
    from orienteer.jobs.model import cot, images, train, vision_attention

    assert settings.VISION_ATTENTION_MODES == vision_attention.MODES
    assert settings.TRAIN_METHODS == train.METHODS
    assert settings.COT_MODES == cot.MODES
    assert settings.RESIZE_MODES == images.RESIZE_MODES == (images.UPSTREAM, images.BUDGET)
    assert images.frame_sizing(settings.BUDGET) == images.PixelBudget(settings.DEFAULT_MAX_PIXELS)
