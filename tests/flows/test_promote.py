"""The promote-model flow's request: a reason always, a version to promote."""

import pytest


def test_a_promotion_request_needs_a_reason_and_a_version_to_promote():
    from pydantic import ValidationError

    from flows.promote import PromotionRequest

    with pytest.raises(ValidationError, match="reason"):
        PromotionRequest(version=2, reason=" ")
    with pytest.raises(ValidationError, match="version is required when action is 'promote'"):
        PromotionRequest(reason="better on the new benchmark")
    assert PromotionRequest(action="rollback", reason="v3 regressed").version is None
