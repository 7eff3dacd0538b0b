from onestop.core import scoping


def test_world_scopes(world):
    assert scoping.visible_customer_ids(world.admin) is None
    assert scoping.visible_customer_ids(world.engineer) == {world.customer_a.pk}
    assert scoping.visible_customer_ids(world.portal_b) == {world.customer_b.pk}
